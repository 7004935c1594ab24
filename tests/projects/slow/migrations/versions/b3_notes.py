"""notes (more DDL with pauses)

Revision ID: b3_notes
Revises: "b2_orders"
"""
import sqlalchemy as sa
from alembic import op

revision = "b3_notes"
down_revision = "b2_orders"
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
    op.add_column("orders", sa.Column("note", sa.String(200)))
    pause()
    op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True), sa.Column("body", sa.String(200)))
    pause()
    op.add_column("accounts", sa.Column("flagged", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("accounts", "flagged")
    op.drop_table("notes")
    op.drop_column("orders", "note")
