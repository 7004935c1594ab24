"""The promise itself, tested differentially: on generated projects and database states, a deploy
with alembic-deploy ends no worse than the same deploy with plain alembic (same exit class, same
version table, same tables; a non-zero exit where alembic succeeds only as a documented refusal),
and the fast path always answers as the full path does (:mod:`differential`)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given, reject

from conftest import _admin
from differential import (
    Failure,
    MariaDBStates,
    PostgresStates,
    Revision,
    Scenario,
    SQLiteStates,
    Step,
    examples,
    graph_error,
    play,
    problems,
    scenarios,
    slow_examples,
    write_project,
)
from servers import MYSQL_ADMIN, PG_ADMIN


def check(scenario: Scenario, states_for) -> None:
    with tempfile.TemporaryDirectory(prefix="ad-diff-") as tmp:
        root = Path(tmp)
        if graph_error(write_project(scenario, root / "probe")):
            reject()  # a graph alembic itself refuses is not a deploy to compare
        played = play(scenario, states_for(root), root)
        found = problems(played)
        assert not found, "\n".join(["alembic-deploy ended worse than plain alembic:", *found, "", played.report()])


@pytest.fixture
def pg_states() -> Iterator[PostgresStates]:
    _admin(PG_ADMIN).dispose()  # fails loudly (or skips, as configured) when the server is down
    states = PostgresStates(PG_ADMIN)
    try:
        yield states
    finally:
        states.close()


@pytest.fixture
def mariadb_states() -> Iterator[MariaDBStates]:
    _admin(MYSQL_ADMIN).dispose()
    states = MariaDBStates(MYSQL_ADMIN)
    try:
        yield states
    finally:
        states.close()


# The instances this test found on the first release it ran against, run every time.
ROLLBACK_AFTER_PARTIAL = Scenario(  # the previous release deployed after its successor died halfway
    "generic", 1, (Revision("r0", ()), Revision("r1", ("r0",))), (Step("alembic-deploy", "upgrade", ("r0",)),),
    Failure("r1", "raise-after", "previous-release"), "heads")
DEPENDS_ON_HEADS = Scenario(  # exit 7 "the database is at c1 but the target was c1, x1"
    "database_url", 1, (Revision("a1", ()), Revision("b1", ("a1",)), Revision("x1", (), ("lx",)),
                        Revision("c1", ("b1",), depends=("x1",))), (), None, "heads")
TARGET_BEHIND = Scenario(  # exit 7 where plain alembic does nothing
    "generic", 2, (Revision("r0", ()), Revision("r1", ("r0",), location=1), Revision("r2", ("r1",))),
    (Step("alembic-deploy", "upgrade", ("heads",)),), None, "r0")


# The default suite runs the pinned instances only; the generated ones are the slow suite's
# (test_deploy_ends_as_plain_alembic_on_sqlite_long, 150 of them).
@pytest.mark.timeout(900)
@examples(default=0, slow=150)
@example(scenario=ROLLBACK_AFTER_PARTIAL)
@example(scenario=DEPENDS_ON_HEADS)
@example(scenario=TARGET_BEHIND)
@given(scenario=scenarios())
def test_deploy_ends_as_plain_alembic_on_sqlite(scenario):
    check(scenario, SQLiteStates)


@pytest.mark.slow  # generated instances only: a parity series
@pytest.mark.timeout(900)
@examples(default=3, slow=60)
@given(scenario=scenarios(max_revisions=6))
def test_deploy_ends_as_plain_alembic_on_postgresql(pg_states, scenario):
    check(scenario, lambda root: pg_states)


@pytest.mark.slow
@pytest.mark.timeout(7200)
@slow_examples(150)
@given(scenario=scenarios())
def test_deploy_ends_as_plain_alembic_on_sqlite_long(scenario):
    check(scenario, SQLiteStates)


@pytest.mark.slow
@pytest.mark.timeout(7200)
@slow_examples(60)
@given(scenario=scenarios())
def test_deploy_ends_as_plain_alembic_on_postgresql_long(pg_states, scenario):
    check(scenario, lambda root: pg_states)


@pytest.mark.slow
@pytest.mark.timeout(7200)
@slow_examples(40)
@given(scenario=scenarios(max_revisions=6))
def test_deploy_ends_as_plain_alembic_on_mariadb_long(mariadb_states, scenario):
    check(scenario, lambda root: mariadb_states)
