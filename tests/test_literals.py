"""What the journal keeps of a statement holds none of its literals: a password in a migration
(``CREATE USER ... IDENTIFIED BY '...'``, ``PASSWORD('...')``, ``$$...$$``, ``E'...'``) is masked
in the stored excerpt, which ``history --json`` prints, and the fingerprint that matches statements
is a hash of the statement with its literals masked plus a short one of the literals."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from alembic_deploy.masking import SQLLiterals, mask_literals
from alembic_deploy.progress.record import Progress, RevisionRecord, record
from alembic_deploy.progress.sql_text import fingerprint, literal_syntax
from helpers import Database, invoke_cli
from test_partial import make_partial
from test_repair_safety import write_revision

MYSQL, POSTGRESQL, SQLITE = (literal_syntax(b) for b in ("mysql", "postgresql", "sqlite"))


# -- the class: any secret, in any literal syntax the dialect has -----------------------------------
def _single(secret: str, backslash: bool) -> str:
    body = secret.replace("\\", "\\\\").replace("'", "\\'") if backslash else secret.replace("'", "''")
    return f"'{body}'"


def _double(secret: str, backslash: bool) -> str:
    body = secret.replace("\\", "\\\\").replace('"', '\\"') if backslash else secret.replace('"', '""')
    return f'"{body}"'


def _dollar(secret: str, tag: str) -> str | None:
    return None if f"${tag}$" in f"{secret}$" else f"${tag}${secret}${tag}$"


def _e_string(secret: str) -> str:
    return "E'" + secret.replace("\\", "\\\\").replace("'", "\\'") + "'"


#: Each dialect's ways of writing a string literal (as that dialect reads it by default).
LITERAL_FORMS = {
    "mysql": [lambda s: _single(s, True), lambda s: _single(s, False), lambda s: _double(s, True),
              lambda s: _double(s, False), lambda s: "_utf8mb4" + _single(s, True),
              lambda s: "X'" + s.encode().hex() + "'", lambda s: "0x" + s.encode().hex()],
    "postgresql": [lambda s: _single(s, False), _e_string, lambda s: _dollar(s, ""), lambda s: _dollar(s, "body"),
                   lambda s: "U&" + _single(s, False)],
    "sqlite": [lambda s: _single(s, False), lambda s: _double(s, False), lambda s: "x'" + s.encode().hex() + "'"],
}
SYNTAX = {"mysql": MYSQL, "postgresql": POSTGRESQL, "sqlite": SQLITE}
TEMPLATES = [
    "CREATE USER app IDENTIFIED BY {lit}",
    "CREATE USER 'app'@'%' IDENTIFIED VIA ed25519 USING PASSWORD({lit})",
    "ALTER USER app IDENTIFIED WITH mysql_native_password BY {lit}",
    "SET PASSWORD FOR app = PASSWORD({lit})",
    "ALTER ROLE app WITH LOGIN PASSWORD {lit}",
    "INSERT INTO api_keys (name, token) VALUES ('ci', {lit}) -- it's the token",
    "UPDATE settings SET value = {lit} WHERE key = \"smtp\" /* don't log */",
    "DO $$BEGIN PERFORM set_config('app.key', {lit}, false); END$$",
    "CREATE TABLE t (\n\tc VARCHAR(20) DEFAULT {lit},\n\t`it's` INTEGER\n)",
]
secrets = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=8, max_size=40).filter(
    lambda s: sum(c.isalnum() for c in s) >= 4)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data(), secret=secrets)
def test_no_secret_in_any_literal_syntax_reaches_the_stored_text(data, secret):
    dialect = data.draw(st.sampled_from(sorted(LITERAL_FORMS)))
    form = data.draw(st.sampled_from(LITERAL_FORMS[dialect]))
    template = data.draw(st.sampled_from(TEMPLATES))
    literal, other = form(secret), form("zzzzzzzz")
    if literal is None or ("$$" in template and literal.startswith("$$")):
        return  # a $$ literal inside a $$ body is no literal for PostgreSQL either
    hexed = secret.encode().hex()
    # A secret that is part of the record's own text whatever the literal holds ("statemen" in
    # the key "statements") proves nothing either way.
    fixed = record(1, template.replace("{lit}", other), may_commit=True, syntax=SYNTAX[dialect])
    fixed_state = Progress(dialect, revisions=[RevisionRecord("r1", [fixed])]).to_json()
    assume(secret not in fixed_state and hexed not in fixed_state.lower())
    stored = record(1, template.replace("{lit}", literal), may_commit=True, syntax=SYNTAX[dialect])
    state = Progress(dialect, revisions=[RevisionRecord("r1", [stored])]).to_json()
    for text in (stored.sql, state, json.loads(state)["revisions"][0]["statements"][0]["sql"]):
        assert secret not in text and hexed not in text.lower()
    # Nothing of the secret at all: the stored text is the same whatever the secret was (a
    # backslash may make more than the literal masked: the text is read with and without escapes).
    if "\\" not in literal:
        assert stored.sql == fixed.sql


@pytest.mark.parametrize(
    ("sql", "syntax", "masked"),
    [
        ("SET PASSWORD = \"hunter2\"", MYSQL, 'SET PASSWORD = "***"'),
        ("ALTER ROLE a PASSWORD E'hun\\'ter2'", POSTGRESQL, "ALTER ROLE a PASSWORD E'***'"),
        ("DO $x$ BEGIN PERFORM 'hunter2'; END $x$", POSTGRESQL, "DO $x$***$x$"),
        ('CREATE TABLE "it\'s" (a INT DEFAULT 5)', POSTGRESQL, 'CREATE TABLE "it\'s" (a INT DEFAULT 5)'),
        ("INSERT INTO `it's` VALUES ('a', 0x6869, b'01', 12)", MYSQL,
         "INSERT INTO `it's` VALUES ('***', 0x***, b'***', 12)"),
        # PostgreSQL's standard strings keep a backslash; read the other way too, both are masked.
        ("SELECT 'C:\\', 'hunter2'", POSTGRESQL, "SELECT '***'"),
        ("SELECT 'never closed hunter2", SQLITE, "SELECT '***'"),
    ],
)
def test_literals_are_masked_and_names_and_numbers_kept(sql, syntax, masked):
    assert mask_literals(sql, syntax).text == masked


def test_fingerprints_tell_literals_apart_without_holding_them():
    base = "ALTER TABLE t ADD COLUMN c VARCHAR(10) DEFAULT 'a'"
    assert fingerprint(base) == fingerprint(base.replace("'a'", "'a'").replace("ADD", "ADD\n\t"))
    assert fingerprint(base) != fingerprint(base.replace("'a'", "'b'"))
    assert fingerprint(base)[:12] == fingerprint(base.replace("'a'", "'b'"))[:12]  # same statement, other value
    assert fingerprint(base) != fingerprint(base.replace("10", "11"))


def test_a_dialect_we_do_not_know_masks_whatever_may_be_a_literal():
    unknown = literal_syntax("oracle")
    assert unknown == SQLLiterals()
    assert mask_literals('SELECT "s3cret!" FROM dual', unknown).text == 'SELECT "***" FROM dual'


# -- the instances: real migrations, the journal row and history --json ------------------------------
def assert_secrets_absent(project: Path, db: Database, *secrets: str) -> None:
    """Neither the raw journal rows nor ``history --json`` nor the exit-8 message holds them."""
    raw = json.dumps([{k: str(v) for k, v in row.items()} for row in db.journal()])
    assert ("c1_users" in raw and "'***'" in raw) or "$$***$$" in raw
    history = invoke_cli(project, "history", "--json", url=db.url)
    assert history.returncode == 0, history.output
    refused = invoke_cli(project, "upgrade", url=db.url)
    assert refused.returncode == 8, refused.output
    for secret in secrets:
        assert secret not in raw
        assert secret not in history.output
        assert secret not in refused.output


def _mariadb_users(tag: str, secrets: list[str]) -> tuple[str, list[str]]:
    users = [f"ad_{tag}_{i}" for i in range(3)]
    return f'''\
        op.execute("CREATE USER '{users[0]}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('{secrets[0]}')")
        op.execute("CREATE USER '{users[1]}'@'%'")
        op.execute("SET PASSWORD FOR '{users[1]}'@'%' = PASSWORD('{secrets[1]}')")
        # MariaDB has no IDENTIFIED WITH ... BY: its syntax error quotes the statement, password included.
        op.execute("CREATE USER '{users[2]}'@'%' IDENTIFIED WITH mysql_native_password BY '{secrets[2]}'")
        op.execute("SELECT no_such_function_ad()")
    ''', [f"DROP USER IF EXISTS '{user}'@'%%'" for user in users]


def _postgresql_roles(tag: str, secrets: list[str]) -> tuple[str, list[str]]:
    """Only statements outside the revision's transaction are journaled on PostgreSQL (an
    autocommit block): they are what a failure leaves behind."""
    roles = [f"ad_{tag}_{i}" for i in range(2)]
    return f'''\
        with op.get_context().autocommit_block():
            op.execute("CREATE ROLE {roles[0]} LOGIN PASSWORD E'{secrets[0]}\\\\'s'")
            op.execute("DO $$BEGIN CREATE ROLE {roles[1]} LOGIN PASSWORD '{secrets[1]}'; END$$")
        op.execute("SELECT no_such_function_ad()")
    ''', [f"DROP ROLE IF EXISTS {role}" for role in roles]


@pytest.mark.parametrize("backend", ["mysql", "postgresql"])
def test_passwords_in_a_migration_are_never_stored(request, make_project, backend):
    """MariaDB: IDENTIFIED VIA ... USING PASSWORD('...'), SET PASSWORD, IDENTIFIED WITH ... BY
    '...'; PostgreSQL: E'...' and a $$ body. Each run, then read back from the raw journal rows,
    ``history --json`` and the exit-8 message."""
    db = request.getfixturevalue("mysql_db" if backend == "mysql" else "pg_db")
    tag = uuid.uuid4().hex[:8]
    secrets = [f"Pw{tag}{kind}" for kind in ("One", "Two", "Three")]
    upgrade, cleanup = (_mariadb_users if backend == "mysql" else _postgresql_roles)(tag, secrets)
    project = make_project("sync")
    write_revision(project, upgrade, revision="c1_users")
    try:
        assert invoke_cli(project, "upgrade", "a3_seed", url=db.url).returncode == 0
        failed = invoke_cli(project, "upgrade", url=db.url)
        assert failed.returncode == 7, failed.output
        assert_secrets_absent(project, db, *secrets)
        if backend == "mysql":
            progress = json.loads(db.journal()[-2]["progress"])
            stored = progress["revisions"][0]["statements"][0]["sql"]
            assert stored == "CREATE USER '***'@'***' IDENTIFIED VIA mysql_native_password USING PASSWORD('***')"
    finally:
        with db.engine().begin() as conn:
            for sql in cleanup:
                conn.exec_driver_sql(sql)


# -- the statement text the tracker records ---------------------------------------------------------
REFLECTING = '''\
    import sqlalchemy as sa
    inspector = sa.inspect(op.get_bind())
    if "users" in inspector.get_table_names():
        op.add_column("users", sa.Column("nickname", sa.String(20)))
    inspector.get_columns("users")
    op.execute(sa.text("UPDATE users SET nickname = 'x' WHERE id = :i").bindparams(i=1))
'''


def test_a_migration_that_reflects_on_postgresql_prints_no_sqlalchemy_warning(pg_db, make_project):
    """SQLAlchemy's reflection queries take ``filter_names`` at execute time; the tracker rendered
    them with their bound values inline, which printed "SAWarning: Bound parameter 'filter_names'
    rendering literal NULL" from alembic-deploy's own code, where plain alembic prints nothing."""
    project = make_project("sync")
    write_revision(project, REFLECTING, revision="c1_reflect")
    warn = {"PYTHONWARNINGS": "always"}
    done = invoke_cli(project, "upgrade", url=pg_db.url, env=warn)
    assert done.returncode == 0, done.output
    history = invoke_cli(project, "history", "--json", url=pg_db.url, env=warn)
    assert history.returncode == 0, history.output
    assert "Warning" not in done.output + history.output, done.output + history.output


def test_each_recorded_statement_carries_its_own_values_not_those_of_a_cached_one(sqlite_db):
    """SQLAlchemy compiles a statement shape once and caches it: the cached form holds the values of
    the first statement of that shape, so rendering it gave every later one the first one's
    values (and their fingerprint)."""
    import sqlalchemy as sa

    from alembic_deploy.backends import for_dialect
    from alembic_deploy.progress.tracker import ProgressTracker

    tracker = ProgressTracker(for_dialect("sqlite"))
    table = sa.table("notes", sa.column("body", sa.String))
    engine = sa.create_engine(sqlite_db.url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE TABLE notes (body VARCHAR(20))")
            tracker.attach(conn)
            tracker.revision_started("r1")
            for body in ("first", "second"):
                conn.execute(table.insert().values(body=body))
            conn.execute(sa.select(table).where(table.c.body == sa.bindparam("b")), {"b": "third"})
            tracker.detach()
    finally:
        engine.dispose()
    first, second, third = tracker.progress.revisions[0].statements
    assert (first.fp, second.fp) == (fingerprint("INSERT INTO notes (body) VALUES ('first')"),
                                    fingerprint("INSERT INTO notes (body) VALUES ('second')"))
    assert third.sql == "SELECT notes.body FROM notes WHERE notes.body = ?"  # the value came at execute time


def test_rows_an_earlier_release_wrote_with_literals_are_shown_masked(sqlite_db, make_project):
    """Earlier releases masked only IDENTIFIED BY '...' and PASSWORD '...' in what they journaled:
    any other literal stayed, and history --json and status --json printed it."""
    project = make_project("partial")
    assert make_partial(project, sqlite_db).returncode == 7
    secret = f"Pw{uuid.uuid4().hex[:8]}"
    (row_id,) = [r["id"] for r in sqlite_db.journal() if r["outcome"] == "failed"]
    progress = json.loads(sqlite_db.scalar("SELECT progress FROM alembic_deploy_history WHERE id = :i", i=row_id))
    progress["revisions"][0]["statements"][0]["sql"] = f"INSERT INTO api_keys VALUES ('ci', '{secret}')"
    with sqlite_db.engine().begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_deploy_history SET progress = ? WHERE id = ?",
                             (json.dumps(progress), row_id))
    for command in ("history", "status"):
        shown = invoke_cli(project, command, "--json", url=sqlite_db.url)
        assert secret not in shown.output, shown.output
        assert "INSERT INTO api_keys VALUES ('***', '***')" in shown.stdout
