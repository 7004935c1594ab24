"""triggers drop-schema-or-database"""
from alembic import op

revision = "drop_schema_or_database_bad"
down_revision = None


def upgrade():
    op.execute("DROP SCHEMA archive")


def downgrade():
    op.execute("SELECT 1")
