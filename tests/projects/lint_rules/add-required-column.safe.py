"""the safe counterpart of add-required-column"""
import sqlalchemy as sa
from alembic import op

revision = "add_required_column_safe"
down_revision = None


def upgrade():
    op.add_column("users", sa.Column("score", sa.Integer, nullable=False, server_default="0"))


def downgrade():
    op.execute("SELECT 1")
