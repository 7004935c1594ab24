"""triggers add-primary-key"""
from alembic import op

revision = "add_primary_key_bad"
down_revision = None


def upgrade():
    op.create_primary_key("pk_events", "events", ["id"])


def downgrade():
    op.execute("SELECT 1")
