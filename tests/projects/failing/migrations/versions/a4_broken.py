"""add a column then fail

Revision ID: a4_broken
Revises: "a3_seed"
"""
import sqlalchemy as sa
from alembic import op

revision = "a4_broken"
down_revision = "a3_seed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("nickname", sa.String(50)))
    op.execute("SELECT * FROM table_that_does_not_exist")


def downgrade() -> None:
    op.drop_column("users", "nickname")
