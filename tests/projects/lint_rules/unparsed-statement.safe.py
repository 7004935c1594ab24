"""the safe counterpart of unparsed-statement"""
from alembic import op

revision = "unparsed_statement_safe"
down_revision = None


def upgrade():
    op.execute("SELECT 1")


def downgrade():
    op.execute("SELECT 1")
