"""seed a user (data migration)

Revision ID: a3_seed
Revises: "a2_users_email_index"
"""
import sqlalchemy as sa
from alembic import op

revision = "a3_seed"
down_revision = "a2_users_email_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("INSERT INTO users (id, email) VALUES (1, 'seed@example.com')")


def downgrade() -> None:
    op.execute("DELETE FROM users WHERE id = 1")
