"""the safe counterpart of check-not-valid"""
from alembic import op

revision = "check_not_valid_safe"
down_revision = None


def upgrade():
    op.execute("ALTER TABLE users ADD CONSTRAINT ck_users_age CHECK (age >= 0) NOT VALID")


def downgrade():
    op.execute("SELECT 1")
