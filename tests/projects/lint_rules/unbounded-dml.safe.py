"""the safe counterpart of unbounded-dml"""
from alembic import op

revision = "unbounded_dml_safe"
down_revision = None


def upgrade():
    op.execute("UPDATE users SET active = TRUE WHERE id BETWEEN 1 AND 1000")


def downgrade():
    op.execute("SELECT 1")
