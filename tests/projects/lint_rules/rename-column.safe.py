"""the safe counterpart of rename-column"""
import sqlalchemy as sa
from alembic import op

revision = "rename_column_safe"
down_revision = None


def upgrade():
    op.add_column("users", sa.Column("full_name", sa.String(50), nullable=True))


def downgrade():
    op.execute("SELECT 1")
