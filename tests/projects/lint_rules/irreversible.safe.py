"""the safe counterpart of irreversible"""
import sqlalchemy as sa
from alembic import op

revision = "irreversible_safe"
down_revision = None


def upgrade():
    op.add_column("users", sa.Column("nickname", sa.String(50), nullable=True))


def downgrade():
    op.drop_column("users", "nickname")
