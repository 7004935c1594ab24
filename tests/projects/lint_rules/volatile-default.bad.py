"""triggers volatile-default"""
import sqlalchemy as sa
from alembic import op

revision = "volatile_default_bad"
down_revision = None


def upgrade():
    op.add_column("users", sa.Column("token", sa.String(36), server_default=sa.text("gen_random_uuid()")))


def downgrade():
    op.execute("SELECT 1")
