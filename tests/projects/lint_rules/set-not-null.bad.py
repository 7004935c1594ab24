"""triggers set-not-null"""
import sqlalchemy as sa
from alembic import op

revision = "set_not_null_bad"
down_revision = None


def upgrade():
    op.alter_column("users", "name", existing_type=sa.String(50), nullable=False)


def downgrade():
    op.execute("SELECT 1")
