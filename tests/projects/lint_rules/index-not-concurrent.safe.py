"""the safe counterpart of index-not-concurrent"""
from alembic import op

revision = "index_not_concurrent_safe"
down_revision = None


def upgrade():
    with op.get_context().autocommit_block():
        op.drop_index("ix_users_name", table_name="users", postgresql_concurrently=True)


def downgrade():
    op.execute("SELECT 1")
