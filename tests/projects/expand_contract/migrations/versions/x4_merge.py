"""merge the nickname and index branches (changes nothing)

Revision ID: x4_merge
Revises: x3a_nickname, x3b_name_index
"""
revision = "x4_merge"
down_revision = ("x3a_nickname", "x3b_name_index")
branch_labels = None
depends_on = None

alembic_deploy = {"expand_only": True}


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
