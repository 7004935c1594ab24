"""triggers truncate"""
from alembic import op

revision = "truncate_bad"
down_revision = None


def upgrade():
    op.execute("TRUNCATE TABLE audit")


def downgrade():
    op.execute("SELECT 1")
