"""the safe counterpart of validate-same-transaction"""
from alembic import op

revision = "validate_same_transaction_safe"
down_revision = None


def upgrade():
    op.execute("ALTER TABLE users ADD CONSTRAINT ck_users_age CHECK (age >= 0) NOT VALID")
    with op.get_context().autocommit_block():
        op.execute("ALTER TABLE users VALIDATE CONSTRAINT ck_users_age")


def downgrade():
    op.execute("SELECT 1")
