"""the safe counterpart of fk-not-valid"""
from alembic import op

revision = "fk_not_valid_safe"
down_revision = None


def upgrade():
    op.execute("ALTER TABLE orders ADD CONSTRAINT fk_orders_user FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID")


def downgrade():
    op.execute("SELECT 1")
