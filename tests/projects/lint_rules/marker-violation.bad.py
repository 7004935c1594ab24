"""triggers marker-violation"""
from alembic import op

revision = "marker_violation_bad"
down_revision = None
alembic_deploy = {"expand_only": True}


def upgrade():
    op.drop_column("users", "nickname")


def downgrade():
    op.execute("SELECT 1")
