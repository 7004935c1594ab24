"""triggers unparsed-statement"""
from alembic import op

revision = "unparsed_statement_bad"
down_revision = None


def upgrade():
    op.execute("THIS IS NOT SQL AT ALL")


def downgrade():
    op.execute("SELECT 1")
