"""nickname + profiles (four DDL statements; the third fails while a stray `profiles` table exists)

Revision ID: a4_profiles
Revises: "a3_seed"
"""
import sqlalchemy as sa
from alembic import op

revision = "a4_profiles"
down_revision = "a3_seed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("nickname", sa.String(50)))
    op.create_index("ix_users_nickname", "users", ["nickname"])
    op.create_table(
        "profiles",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("bio", sa.String(200)),
    )
    op.create_index("ix_profiles_user_id", "profiles", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_profiles_user_id", table_name="profiles")
    op.drop_table("profiles")
    op.drop_index("ix_users_nickname", table_name="users")
    op.drop_column("users", "nickname")
