"""orders and a seed row (DDL, then DML inside the revision's transaction)

Revision ID: b2_orders
Revises: "b1_accounts"
"""
import sqlalchemy as sa
from alembic import op

revision = "b2_orders"
down_revision = "b1_accounts"
branch_labels = None
depends_on = None


def pause() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("SELECT pg_sleep(0.2)")
    elif dialect in ("mysql", "mariadb"):
        op.execute("SELECT SLEEP(0.2)")
    else:  # SQLite has no sleep function: a recursive count of about the same length
        op.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) SELECT COUNT(*) FROM c")


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer, nullable=False, server_default="0"),
    )
    pause()
    op.create_index("ix_orders_account_id", "orders", ["account_id"])
    pause()
    op.execute("INSERT INTO accounts (id, name, email) VALUES (1, 'seed', 'seed@example.com')")
    pause()


def downgrade() -> None:
    op.execute("DELETE FROM accounts WHERE id = 1")
    op.drop_index("ix_orders_account_id", table_name="orders")
    op.drop_table("orders")
