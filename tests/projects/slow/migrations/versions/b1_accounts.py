"""accounts (DDL with pauses: kill -9 trials land between committed statements)

Revision ID: b1_accounts
Revises: None
"""
import sqlalchemy as sa
from alembic import op

revision = "b1_accounts"
down_revision = None
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
    op.create_table("accounts", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50)))
    pause()
    op.add_column("accounts", sa.Column("email", sa.String(100)))
    pause()
    op.create_index("ix_accounts_email", "accounts", ["email"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_accounts_email", table_name="accounts")
    op.drop_column("accounts", "email")
    op.drop_table("accounts")
