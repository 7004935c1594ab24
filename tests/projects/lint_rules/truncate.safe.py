"""the safe counterpart of truncate"""
from alembic import op

revision = "truncate_safe"
down_revision = None


def upgrade():
    op.execute("DELETE FROM audit WHERE created_at < '2020-01-01'")


def downgrade():
    op.execute("SELECT 1")
