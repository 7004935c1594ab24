"""create users

Revision ID: a1_users
Revises: None
"""
import sqlalchemy as sa
from alembic import op

revision = "a1_users"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True), sa.Column("email", sa.String(255), nullable=False))


def downgrade() -> None:
    op.drop_table("users")
