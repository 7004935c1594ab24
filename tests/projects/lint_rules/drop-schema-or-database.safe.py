"""the safe counterpart of drop-schema-or-database"""
from alembic import op

revision = "drop_schema_or_database_safe"
down_revision = None


def upgrade():
    op.execute("CREATE SCHEMA archive")


def downgrade():
    op.execute("SELECT 1")
