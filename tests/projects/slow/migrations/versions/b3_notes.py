"""notes (more DDL with pauses)

Revision ID: b3_notes
Revises: "b2_orders"
"""
import os
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import context, op

revision = "b3_notes"
down_revision = "b2_orders"
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
    op.add_column("orders", sa.Column("note", sa.String(200)))
    pause()
    op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True), sa.Column("body", sa.String(200)))
    pause()
    op.add_column("accounts", sa.Column("flagged", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("accounts", "flagged")
    op.drop_table("notes")
    op.drop_column("orders", "note")
