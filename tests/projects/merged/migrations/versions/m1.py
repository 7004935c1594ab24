"""merge the users and audit branches

Revision ID: m1
Revises: ("a3_seed", "b2_audit")
"""

revision = "m1"
down_revision = ("a3_seed", "b2_audit")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
