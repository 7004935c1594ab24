"""concurrent index (autocommit_block)

Revision ID: a4_concurrent_index
Revises: "a3_seed"
"""
import sqlalchemy as sa
from alembic import op

revision = "a4_concurrent_index"
down_revision = "a3_seed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index("ix_users_id_email", "users", ["id", "email"], postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_users_id_email", table_name="users", postgresql_concurrently=True)
