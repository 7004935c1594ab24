"""index users.email

Revision ID: a2_users_email_index
Revises: "a1_users"
"""
import sqlalchemy as sa
from alembic import op

revision = "a2_users_email_index"
down_revision = "a1_users"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_users_email", "users", ["email"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_users_email", table_name="users")
