"""triggers rename-table"""
from alembic import op

revision = "rename_table_bad"
down_revision = None


def upgrade():
    op.rename_table("users", "people")


def downgrade():
    op.execute("SELECT 1")
