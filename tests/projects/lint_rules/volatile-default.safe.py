"""the safe counterpart of volatile-default"""
import sqlalchemy as sa
from alembic import op

revision = "volatile_default_safe"
down_revision = None


def upgrade():
    op.add_column("users", sa.Column("created_at", sa.DateTime, server_default=sa.text("now()")))


def downgrade():
    op.execute("SELECT 1")
