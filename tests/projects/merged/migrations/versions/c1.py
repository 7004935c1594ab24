"""after the merge

Revision ID: c1
Revises: "m1"
"""
import sqlalchemy as sa
from alembic import op

revision = "c1"
down_revision = "m1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("t_c1", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("t_c1")
