"""the safe counterpart of add-primary-key"""
import sqlalchemy as sa
from alembic import op

revision = "add_primary_key_safe"
down_revision = None


def upgrade():
    op.create_table("tickets", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.execute("SELECT 1")
