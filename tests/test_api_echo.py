"""A library caller's ``echo`` that cannot write (a closed file, a failing handler) never fails the
work it reports: the migration, its journal row and the other verbs go on as without it."""

from __future__ import annotations

import pytest

from alembic_deploy import api
from alembic_deploy.settings import Settings


class ClosedLog:
    """An echo writing to a file that was closed: each call raises ValueError, as such a write does."""

    def __init__(self, tmp_path) -> None:
        self.file = (tmp_path / "deploy.log").open("w")
        self.file.close()
        self.calls = 0

    def __call__(self, msg: str) -> None:
        self.calls += 1
        print(msg, file=self.file)


def test_an_echo_that_raises_does_not_fail_the_migration(db, make_project, tmp_path):
    project = make_project("sync")
    echo = ClosedLog(tmp_path)
    report = api.upgrade(Settings(config=str(project / "alembic.ini"), database_url=db.url), echo=echo)
    assert report.outcome == "applied" and echo.calls >= 2  # "Applying ..." and one line per revision
    assert db.versions() == ["a3_seed"]
    assert [row["outcome"] for row in db.journal()] == ["applied"]


@pytest.mark.parametrize("verb", ["upgrade", "repair"])
def test_an_echo_that_raises_does_not_fail_the_other_verbs(sqlite_db, make_project, tmp_path, verb):
    """Every verb's lines go through the same guard: the warning about a run that died (what a
    kill -9 leaves: its row ``running``) is echoed under the lock, by upgrade and repair alike."""
    from datetime import datetime, timezone

    from alembic_deploy.journal import journal_table

    project = make_project("sync")
    settings = Settings(config=str(project / "alembic.ini"), database_url=sqlite_db.url)
    api.upgrade(settings)
    with sqlite_db.engine().begin() as conn:
        conn.execute(journal_table(settings.journal_table).insert().values(
            started_at=datetime.now(timezone.utc), command="upgrade", outcome="running", host="gone", pid=1))
    echo = ClosedLog(tmp_path)
    call = api.upgrade if verb == "upgrade" else api.repair
    result = call(settings.replace(fast_path=False), echo=echo)
    assert result.outcome == "noop" and echo.calls >= 1
    assert [row["outcome"] for row in sqlite_db.journal()] == ["applied", "crashed", "noop"]
