"""index accounts.name (expand, branch b)

Revision ID: x3b_name_index
Revises: x2_accounts_status
"""
import sqlalchemy as sa
from alembic import op

revision = "x3b_name_index"
down_revision = "x2_accounts_status"
branch_labels = None
depends_on = None

alembic_deploy = {"expand_only": True}


def upgrade() -> None:
    op.create_index("ix_accounts_name", "accounts", ["name"])


def downgrade() -> None:
    op.drop_index("ix_accounts_name", table_name="accounts")
