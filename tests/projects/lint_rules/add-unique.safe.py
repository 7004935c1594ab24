"""the safe counterpart of add-unique"""
from alembic import op

revision = "add_unique_safe"
down_revision = None


def upgrade():
    with op.get_context().autocommit_block():
        op.create_index("uq_users_email", "users", ["email"], unique=True, postgresql_concurrently=True)
    op.execute("ALTER TABLE users ADD CONSTRAINT uq_users_email UNIQUE USING INDEX uq_users_email")


def downgrade():
    op.execute("SELECT 1")
