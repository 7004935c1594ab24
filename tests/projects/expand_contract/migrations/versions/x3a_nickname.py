"""accounts.nickname, nullable and not yet read by the code (expand, branch a)

Revision ID: x3a_nickname
Revises: x2_accounts_status
"""
import sqlalchemy as sa
from alembic import op

revision = "x3a_nickname"
down_revision = "x2_accounts_status"
branch_labels = None
depends_on = None

alembic_deploy = {"expand_only": True}


def upgrade() -> None:
    op.add_column("accounts", sa.Column("nickname", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("nickname")
