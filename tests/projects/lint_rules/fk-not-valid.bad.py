"""triggers fk-not-valid"""
from alembic import op

revision = "fk_not_valid_bad"
down_revision = None


def upgrade():
    op.create_foreign_key("fk_orders_user", "orders", "users", ["user_id"], ["id"])


def downgrade():
    op.execute("SELECT 1")
