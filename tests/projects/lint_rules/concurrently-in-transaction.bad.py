"""triggers concurrently-in-transaction"""
from alembic import op

revision = "concurrently_in_transaction_bad"
down_revision = None


def upgrade():
    op.create_index("ix_users_email", "users", ["email"], postgresql_concurrently=True)


def downgrade():
    op.execute("SELECT 1")
