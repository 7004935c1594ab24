"""notes, kept through the destructive revision

Revision ID: b4_notes
Revises: a3_seed
"""
import sqlalchemy as sa
from alembic import op

revision = "b4_notes"
down_revision = "a3_seed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True), sa.Column("body", sa.String(100)))


def downgrade() -> None:
    op.drop_table("notes")
