"""kill -9 in the middle of a rollback on MariaDB and SQLite, where each DDL statement commits on its own: the
revision is left partly rolled back, the next run exits 8, and ``repair --resume`` completes it."""

from __future__ import annotations

import os
import signal
import time

import pytest
import sqlalchemy as sa

from helpers import Database, run_cli, spawn_cli

#: The slow project's b1_accounts, its downgrade held in a pause (``TEST_PAUSE_GATES``) after each
#: self-committing statement.
DOWNGRADE = '''def downgrade() -> None:
    op.drop_index("ix_accounts_email", table_name="accounts")
    pause()
    op.drop_column("accounts", "email")
    pause()
    op.drop_table("accounts")
'''


def _indexes(db: Database, table: str) -> set[str]:
    engine = sa.create_engine(db.url, poolclass=sa.pool.NullPool)
    try:
        return {str(ix["name"]) for ix in sa.inspect(engine).get_indexes(table)}
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["mysql", "sqlite"])
def test_a_rollback_killed_after_a_committed_statement_is_resumed_by_repair(request, make_project, tmp_path, backend):
    db: Database = request.getfixturevalue(f"{backend}_db")
    project = make_project("slow")
    path = project / "migrations" / "versions" / "b1_accounts.py"
    source = path.read_text()
    start = source.index("def downgrade() -> None:")
    path.write_text(source[:start] + DOWNGRADE)
    r = run_cli(project, "upgrade", "b1_accounts", url=db.url)
    assert r.returncode == 0, r.output
    assert "ix_accounts_email" in _indexes(db, "accounts")

    gates = tmp_path / "gates"
    gates.mkdir()  # no gate opened: the downgrade is held in its first pause, after DROP INDEX
    proc = spawn_cli(project, "rollback", "--to", "base", "--force", "--yes", url=db.url,
                     env={"TEST_PAUSE_GATES": str(gates)})
    deadline = time.monotonic() + 300
    while "ix_accounts_email" in _indexes(db, "accounts"):  # the schema change: DROP INDEX has committed
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the rollback never dropped the index"
        time.sleep(0.01)  # polling the schema, not a guess at a duration
    while not (gates / "b1_accounts.1.entered").exists():  # and the run is held in the pause after it
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the rollback never reached the pause after DROP INDEX"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert db.versions() == ["b1_accounts"] and db.has_table("accounts")

    for command in (("upgrade",), ("rollback", "--to", "base", "--force", "--yes")):
        refused = run_cli(project, *command, url=db.url)
        assert refused.returncode == 8, refused.output
        assert "Revision b1_accounts is partly rolled back" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.output
    assert db.versions() == ["b1_accounts"] and db.has_table("accounts")

    resumed = run_cli(project, "repair", "--resume", url=db.url)
    assert resumed.returncode == 0, resumed.output
    assert "recorded it as rolled back" in resumed.stderr, resumed.stderr
    assert db.versions() == [] and not db.has_table("accounts")
    # The killed run's row is found crashed by the next run; the refusals and the repair are journaled.
    assert [(row["command"], row["outcome"]) for row in db.journal()] == [
        ("upgrade", "applied"), ("rollback", "crashed"), ("upgrade", "refused"), ("rollback", "refused"),
        ("repair", "rolled-back")]
    # Settled: the deploy runs again.
    again = run_cli(project, "upgrade", "b1_accounts", url=db.url)
    assert again.returncode == 0, again.output
    assert db.versions() == ["b1_accounts"] and "ix_accounts_email" in _indexes(db, "accounts")
