"""add users.nickname (needs an exclusive lock on users)

Revision ID: a4_users_nickname
Revises: "a3_seed"
"""
import sqlalchemy as sa
from alembic import op

revision = "a4_users_nickname"
down_revision = "a3_seed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("nickname", sa.String(50)))


def downgrade() -> None:
    op.drop_column("users", "nickname")
