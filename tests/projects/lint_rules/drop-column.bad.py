"""triggers drop-column"""
from alembic import op

revision = "drop_column_bad"
down_revision = None


def upgrade():
    op.drop_column("users", "nickname")


def downgrade():
    op.execute("SELECT 1")
