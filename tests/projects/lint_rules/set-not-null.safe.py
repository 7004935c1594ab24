"""the safe counterpart of set-not-null"""
import sqlalchemy as sa
from alembic import op

revision = "set_not_null_safe"
down_revision = None


def upgrade():
    op.alter_column("users", "name", existing_type=sa.String(50), nullable=True)


def downgrade():
    op.execute("SELECT 1")
