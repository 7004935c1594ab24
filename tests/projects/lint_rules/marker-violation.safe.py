"""the safe counterpart of marker-violation"""
import sqlalchemy as sa
from alembic import op

revision = "marker_violation_safe"
down_revision = None
alembic_deploy = {"expand_only": True}


def upgrade():
    op.add_column("users", sa.Column("nickname", sa.String(50), nullable=True))


def downgrade():
    op.execute("SELECT 1")
