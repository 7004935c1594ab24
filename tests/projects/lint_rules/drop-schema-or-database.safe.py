"""the safe counterpart of drop-schema-or-database"""
import sqlalchemy as sa
from alembic import op

revision = "drop_schema_or_database_safe"
down_revision = None


def upgrade():
    op.create_table("archive_items", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.execute("SELECT 1")
