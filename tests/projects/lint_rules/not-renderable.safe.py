"""the safe counterpart of not-renderable"""
from alembic import op

revision = "not_renderable_safe"
down_revision = None


def upgrade():
    op.execute("SELECT 1")


def downgrade():
    op.execute("SELECT 1")
