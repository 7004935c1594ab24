"""triggers change-column-type"""
import sqlalchemy as sa
from alembic import op

revision = "change_column_type_bad"
down_revision = None


def upgrade():
    op.alter_column("users", "name", existing_type=sa.String(50), type_=sa.Text())


def downgrade():
    op.execute("SELECT 1")
