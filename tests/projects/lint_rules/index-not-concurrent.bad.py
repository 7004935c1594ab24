"""triggers index-not-concurrent"""
from alembic import op

revision = "index_not_concurrent_bad"
down_revision = None


def upgrade():
    op.create_index("ix_users_name", "users", ["name"])


def downgrade():
    op.execute("SELECT 1")
