"""first revision of the main branch

Revision ID: a1
Revises: None
"""
import sqlalchemy as sa
from alembic import op

revision = "a1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("t_a1", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("t_a1")
