"""the safe counterpart of change-column-type"""
import sqlalchemy as sa
from alembic import op

revision = "change_column_type_safe"
down_revision = None


def upgrade():
    op.alter_column("users", "name", existing_type=sa.String(50), server_default="x")


def downgrade():
    op.execute("SELECT 1")
