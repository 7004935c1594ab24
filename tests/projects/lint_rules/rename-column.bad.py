"""triggers rename-column"""
import sqlalchemy as sa
from alembic import op

revision = "rename_column_bad"
down_revision = None


def upgrade():
    op.alter_column("users", "name", new_column_name="full_name", existing_type=sa.String(50))


def downgrade():
    op.execute("SELECT 1")
