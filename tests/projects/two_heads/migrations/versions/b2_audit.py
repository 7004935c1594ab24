"""audit table on a second branch

Revision ID: b2_audit
Revises: "a1_users"
"""
import sqlalchemy as sa
from alembic import op

revision = "b2_audit"
down_revision = "a1_users"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("audit", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("audit")
