"""triggers check-not-valid"""
from alembic import op

revision = "check_not_valid_bad"
down_revision = None


def upgrade():
    op.create_check_constraint("ck_users_age", "users", "age >= 0")


def downgrade():
    op.execute("SELECT 1")
