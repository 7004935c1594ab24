"""tags (a later revision: repair must leave it to the next upgrade)

Revision ID: a5_tags
Revises: "a4_profiles"
"""
import sqlalchemy as sa
from alembic import op

revision = "a5_tags"
down_revision = "a4_profiles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("tags", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(40)))


def downgrade() -> None:
    op.drop_table("tags")
