"""needs x1, by its branch label, without merging it

Revision ID: b1
Revises: "a1"
"""
import sqlalchemy as sa
from alembic import op

revision = "b1"
down_revision = "a1"
branch_labels = None
depends_on = "extra"


def upgrade() -> None:
    op.create_table("t_b1", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("t_b1")
