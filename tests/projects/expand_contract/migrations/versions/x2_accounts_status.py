"""accounts.status, which the code reads from this release on (not marked: code needs it)

Revision ID: x2_accounts_status
Revises: x1_accounts
"""
import sqlalchemy as sa
from alembic import op

revision = "x2_accounts_status"
down_revision = "x1_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("status", sa.String(20), nullable=False, server_default="active"))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("status")
