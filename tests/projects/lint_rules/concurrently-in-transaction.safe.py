"""the safe counterpart of concurrently-in-transaction"""
from alembic import op

revision = "concurrently_in_transaction_safe"
down_revision = None


def upgrade():
    with op.get_context().autocommit_block():
        op.create_index("ix_users_email", "users", ["email"], postgresql_concurrently=True)


def downgrade():
    op.execute("SELECT 1")
