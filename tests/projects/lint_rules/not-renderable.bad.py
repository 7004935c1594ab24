"""triggers not-renderable"""
import sqlalchemy as sa
from alembic import op

revision = "not_renderable_bad"
down_revision = None


def upgrade():
    op.get_bind().execute(sa.text("SELECT 1")).fetchall()


def downgrade():
    op.execute("SELECT 1")
