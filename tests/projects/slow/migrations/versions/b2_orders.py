"""orders and a seed row (DDL, then DML inside the revision's transaction)

Revision ID: b2_orders
Revises: "b1_accounts"
"""
import os
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import context, op

revision = "b2_orders"
down_revision = "b1_accounts"
branch_labels = None
depends_on = None
_pauses: list[int] = []


def pause() -> None:
    seconds = float(os.environ.get("TEST_PAUSE_SECONDS", "0.2"))  # longer where a test must land a kill in it
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(f"SELECT pg_sleep({seconds})")
    elif dialect in ("mysql", "mariadb"):
        op.execute(f"SELECT SLEEP({seconds})")
    else:  # SQLite has no sleep function: a recursive count of about the same length
        count = int(1_000_000 * seconds / 0.2)
        op.execute(f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {count}) SELECT COUNT(*) FROM c")
    gates = os.environ.get("TEST_PAUSE_GATES")
    if gates and not context.is_offline_mode():
        # A test that kills inside pause k holds the run here: <revision>.<k>.entered, then waits for <revision>.<k>.
        _pauses.append(len(_pauses) + 1)
        gate = Path(gates) / f"{revision}.{_pauses[-1]}"
        Path(f"{gate}.entered").touch()
        deadline = time.monotonic() + 120
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.01)


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
