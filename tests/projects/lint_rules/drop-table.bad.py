"""triggers drop-table"""
from alembic import op

revision = "drop_table_bad"
down_revision = None


def upgrade():
    op.drop_table("audit")


def downgrade():
    op.execute("SELECT 1")
