"""create accounts (with a legacy column a later release drops)

Revision ID: x1_accounts
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "x1_accounts"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("legacy", sa.String(100), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("accounts")
