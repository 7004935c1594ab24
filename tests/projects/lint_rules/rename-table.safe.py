"""the safe counterpart of rename-table"""
import sqlalchemy as sa
from alembic import op

revision = "rename_table_safe"
down_revision = None


def upgrade():
    op.create_table("people", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.execute("SELECT 1")
