"""the safe counterpart of mysql-table-copy"""
import sqlalchemy as sa
from alembic import op

revision = "mysql_table_copy_safe"
down_revision = None


def upgrade():
    op.add_column("events", sa.Column("note", sa.String(50), nullable=True))


def downgrade():
    op.execute("SELECT 1")
