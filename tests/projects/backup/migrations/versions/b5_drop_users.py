"""drop users and its rows (destructive; asks for a backup under the major policy)

Revision ID: b5_drop_users
Revises: b4_notes
"""
import sqlalchemy as sa
from alembic import op

revision = "b5_drop_users"
down_revision = "b4_notes"
branch_labels = None
depends_on = None

alembic_deploy = {"backup": True}


def upgrade() -> None:
    op.drop_table("users")


def downgrade() -> None:
    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True), sa.Column("email", sa.String(255), nullable=False))
