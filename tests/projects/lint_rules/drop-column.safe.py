"""the safe counterpart of drop-column"""
import sqlalchemy as sa
from alembic import op

revision = "drop_column_safe"
down_revision = None


def upgrade():
    op.add_column("users", sa.Column("nickname", sa.String(50), nullable=True))


def downgrade():
    op.execute("SELECT 1")
