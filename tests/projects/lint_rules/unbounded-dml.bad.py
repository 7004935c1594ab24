"""triggers unbounded-dml"""
from alembic import op

revision = "unbounded_dml_bad"
down_revision = None


def upgrade():
    op.execute("UPDATE users SET active = TRUE")


def downgrade():
    op.execute("SELECT 1")
