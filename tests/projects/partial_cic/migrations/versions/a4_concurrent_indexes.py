"""two concurrent indexes in an autocommit block (PostgreSQL commits each on its own; the second
fails while a stray relation holds its name)

Revision ID: a4_concurrent_indexes
Revises: "a3_seed"
"""
from alembic import op

revision = "a4_concurrent_indexes"
down_revision = "a3_seed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index("ix_users_email_id", "users", ["email", "id"], postgresql_concurrently=True)
        op.create_index("ix_users_id_email", "users", ["id", "email"], postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_users_id_email", table_name="users", postgresql_concurrently=True)
        op.drop_index("ix_users_email_id", table_name="users", postgresql_concurrently=True)
