"""``alembic-deploy demo``: a sample Alembic project on SQLite, deployed end to end.

The project is made by ``alembic init`` (the generic template, unmodified) plus four revisions:
two tables, an index, a data migration and an added column. The pipeline runs twice (the second
run is the common no-op deploy), then ``status`` and ``history`` are shown.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import click

REVISIONS = {
    "0001_users": ('None', "create users", '''
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(255), nullable=False, unique=True),
    )''', 'op.drop_table("users")'),
    "0002_orders": ('"0001_users"', "create orders with an index", '''
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("total_cents", sa.Integer, nullable=False),
    )
    op.create_index("ix_orders_user_id", "orders", ["user_id"])''', 'op.drop_table("orders")'),
    "0003_seed": ('"0002_orders"', "seed the first user (data migration)", '''
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("email", sa.String))
    op.bulk_insert(users, [{"id": 1, "email": "founder@example.com"}])''',
     'op.execute("DELETE FROM users WHERE id = 1")'),
    "0004_users_name": ('"0003_seed"', "add users.display_name", '''
    op.add_column("users", sa.Column("display_name", sa.String(100), nullable=True))''',
     'op.drop_column("users", "display_name")'),
}

TEMPLATE = '''"""{doc}

Revision ID: {rev}
Revises: {down}
"""
import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = {down}
branch_labels = None
depends_on = None


def upgrade() -> None:{up}


def downgrade() -> None:
    {down_body}
'''


def create_project(folder: Path) -> Path:
    """Create the sample project in ``folder`` (must be empty or missing); returns alembic.ini."""
    from alembic import command
    from alembic.config import Config

    folder.mkdir(parents=True, exist_ok=True)
    ini = folder / "alembic.ini"
    config = Config(str(ini))
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        command.init(config, str(folder / "migrations"), template="generic")
    text = ini.read_text()
    text = text.replace("driver://user:pass@localhost/dbname", "sqlite:///%(here)s/demo.db")
    ini.write_text(text)
    versions = folder / "migrations" / "versions"
    for rev, (down, doc, up, down_body) in REVISIONS.items():
        (versions / f"{rev}.py").write_text(
            TEMPLATE.format(rev=rev, down=down, doc=doc, up=up, down_body=down_body)
        )
    return ini


def run_demo(keep: str | None) -> int:
    """Create the sample project (in ``keep``, kept; else in a temporary folder, removed), deploy it
    twice and show status and history; returns the exit code, 0. A step that fails raises its
    :class:`~alembic_deploy.errors.AlembicDeployError` for the CLI to report."""
    from . import api
    from .cli import out
    from .errors import EXIT_OK
    from .report import history_table
    from .settings import Settings

    folder = Path(keep).absolute() if keep else Path(tempfile.mkdtemp(prefix="alembic-deploy-demo-"))
    if keep and folder.exists() and any(folder.iterdir()):
        from .errors import ConfigError

        raise ConfigError(f"--keep {folder} is not empty; give a new or empty folder.")
    say = out  # a reader that goes away (`demo | head`) must not fail the demo's migrations
    try:
        ini = create_project(folder)
        settings = Settings.resolve({"config": str(ini), "env": "demo"}, environ={})
        say(click.style(f"Sample Alembic project: {folder} ({len(REVISIONS)} revisions, SQLite)", bold=True))
        say(click.style("\n$ alembic-deploy upgrade", bold=True))
        report = api.upgrade(settings, echo=say)
        say(click.style("\n$ alembic-deploy upgrade   # a second deploy: nothing to do", bold=True))
        report = api.upgrade(settings, echo=say)
        say(report.render_text() + (" [fast path: proven without loading Alembic]" if report.fast_path else ""))
        say(click.style("\n$ alembic-deploy status", bold=True))
        st = api.status(settings)
        say(f"current: {', '.join(st.current)}  heads: {', '.join(st.heads)}  pending: {len(st.pending)}")
        say(click.style("\n$ alembic-deploy history", bold=True))
        say(history_table(api.history(settings)))
        if keep:
            say(f"\nKept in {folder}: cd there and run `alembic-deploy status`.")
        return EXIT_OK
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
