"""Backups before migrating, and restoring them: on real PostgreSQL, MariaDB and SQLite, with real
dump programs; S3 and RDS through moto's local server (the ``aws`` fixture).

The scenario ``backup`` is ``sync`` (a1 users, a2 index, a3 seed row) plus b4 (creates notes) and
b5 (drops users: destructive, and marked ``alembic_deploy = {"backup": True}``).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from helpers import Database, assert_failed_cleanly, invoke_cli, run_cli, schema_snapshot

HISTORY = "alembic_deploy_history"
BACKUPS = "alembic_deploy_history_backups"
EXTRA_USERS = 40


def _seed(project: Path, db: Database) -> None:
    """The database at a3_seed with the seed row and EXTRA_USERS more: the rows b5 would lose."""
    r = run_cli(project, "upgrade", "a3_seed", url=db.url)
    assert r.returncode == 0, r.output
    with db.engine().begin() as conn:
        from sqlalchemy import text

        for i in range(2, EXTRA_USERS + 2):
            conn.execute(text("INSERT INTO users (id, email) VALUES (:i, :e)"), {"i": i, "e": f"u{i}@example.com"})


def _valid(stdout: str) -> dict[str, Any]:
    """The --json document, checked against the schema shipped in the package."""
    from importlib.resources import files

    import jsonschema

    doc: dict[str, Any] = json.loads(stdout)
    schema = json.loads((files("alembic_deploy") / "schema" / "output.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(doc)
    return doc


def _schema(db: Database) -> object:
    """The application's schema (the journal's own tables left out)."""
    return schema_snapshot(db.url, exclude=(HISTORY, f"{HISTORY}_progress", BACKUPS))


def _backups(db: Database) -> list[dict[str, object]]:
    return db.journal(BACKUPS)


def _deploy(project: Path, db: Database, *args: str, env: dict[str, str] | None = None) -> object:
    return run_cli(project, "upgrade", "--backup-destination", str(project / "backups"), *args, url=db.url, env=env)


def test_backup_then_restore_recovers_the_rows_a_destructive_revision_deleted(db, make_project):
    project = make_project("backup")
    _seed(project, db)
    r = _deploy(project, db, "--backup", "destructive")
    assert r.returncode == 0, r.output
    assert not db.has_table("users")
    [backup] = _backups(db)
    run = db.journal()[-1]
    assert backup["outcome"] == "ok" and backup["journal_id"] == run["id"]
    assert backup["revisions"] == "a3_seed" and backup["size_bytes"] > 0
    assert backup["method"] in ("pg_dump", "mysqldump", "mariadb-dump", "sqlite-backup")
    assert Path(str(backup["location"])).is_file()
    assert str(backup["location"]).startswith(str(project / "backups" / "default-"))
    assert f"Backed up to {backup['location']}" in r.stderr

    r = run_cli(project, "restore", str(backup["id"]), "--force", "--yes", "--json", url=db.url)
    assert r.returncode == 0, r.output
    assert _valid(r.stdout)["replaced_tables"] == ["alembic_version", "notes"]
    assert db.scalar("SELECT COUNT(*) FROM users") == EXTRA_USERS + 1
    assert db.versions() == ["a3_seed"]
    assert not db.has_table("notes")  # the schema is the backup's: made after it, dropped
    journal = db.journal()
    assert [row["command"] for row in journal] == ["upgrade", "upgrade", "restore"]  # history kept, not rewound
    assert journal[-1]["outcome"] == "applied" and journal[-1]["from_revisions"] == "b5_drop_users"
    assert journal[-1]["to_revisions"] == "a3_seed"
    # ... and the deploy runs again from there.
    r = run_cli(project, "upgrade", url=db.url)
    assert r.returncode == 0, r.output
    assert db.versions() == ["b5_drop_users"]


@pytest.mark.parametrize("failure", ["unwritable-folder", "missing-program"])
def test_a_failed_backup_stops_the_deploy_before_any_change(db, make_project, tmp_path, failure):
    if failure == "missing-program" and db.backend == "sqlite":
        pytest.skip("SQLite backs up through its own API: no program to miss")
    project = make_project("backup")
    _seed(project, db)
    before = _schema(db)
    env = None
    destination = project / "backups"
    if failure == "unwritable-folder":
        (tmp_path / "a-file").write_text("not a folder")
        destination = tmp_path / "a-file" / "backups"
    else:
        empty = tmp_path / "bin"
        empty.mkdir()
        env = {"PATH": str(empty)}  # no pg_dump, no mariadb-dump / mysqldump
    r = run_cli(project, "upgrade", "--backup", "always", "--backup-destination", str(destination), url=db.url,
                env=env)
    message = assert_failed_cleanly(r, 11)
    assert "nothing was migrated" in message.lower() and "--backup-on-failure continue" in message
    if failure == "missing-program":
        assert "not found on PATH" in message
    assert db.versions() == ["a3_seed"]
    assert _schema(db) == before
    assert db.scalar("SELECT COUNT(*) FROM users") == EXTRA_USERS + 1
    run = db.journal()[-1]
    assert run["outcome"] == "failed" and "backup" in run["error"].lower()
    [backup] = _backups(db)
    assert backup["outcome"] == "failed" and backup["journal_id"] == run["id"] and backup["error"]
    assert not list(project.glob("backups/*.partial"))


def test_backup_on_failure_continue_migrates_with_a_warning(sqlite_db, make_project, tmp_path):
    project = make_project("backup")
    _seed(project, sqlite_db)
    (tmp_path / "a-file").write_text("")
    r = run_cli(project, "upgrade", "--backup", "always", "--backup-on-failure", "continue", "--backup-destination",
                str(tmp_path / "a-file" / "x"), url=sqlite_db.url)
    assert r.returncode == 0, r.output
    assert "warning: The backup before migrating failed" in r.stderr
    assert sqlite_db.versions() == ["b5_drop_users"]
    assert [b["outcome"] for b in _backups(sqlite_db)] == ["failed"]


def _decisions(project: Path, db: Database, steps: list[tuple[str, list[str]]]) -> list[bool]:
    """Deploy each (target, options) in turn; whether each took a backup."""
    taken = []
    for target, options in steps:
        count = len(_backups(db)) if db.has_table(BACKUPS) else 0
        r = invoke_cli(project, "upgrade", target, "--backup-destination", str(project / "backups"), *options,
                       url=db.url)
        assert r.returncode == 0, r.output
        taken.append((len(_backups(db)) if db.has_table(BACKUPS) else 0) > count)
    return taken


@pytest.mark.parametrize(("options", "expected"), [
    ([], [False, False, False]),
    (["--backup", "never"], [False, False, False]),
    (["--backup", "always"], [True, True, False]),  # nothing pending: no backup
    (["--backup", "destructive"], [False, True, False]),  # a1..a3 add; b5 drops users
    (["--backup", "major"], [False, True, False]),  # 3 revisions <= 5; b5 asks for one
    (["--backup", "major", "--backup-major-revisions", "2"], [True, True, False]),
])
def test_the_policy_decides_when_to_back_up(pg_db, make_project, options, expected):
    project = make_project("backup")
    steps = [("a3_seed", options), ("head", options), ("head", [*options, "--no-fast-path"])]
    assert _decisions(project, pg_db, steps) == expected


@pytest.mark.parametrize(("policy", "expected"), [
    ('backup = "destructive"', [False, True]),
    ('backup-before = ["drop-table"]', [False, True]),  # the key releases before backups wrote
    ('backup-before = ["contract"]', [False, True]),  # a compatibility class: b5 only removes
    ('backup = "always"', [True, True]),
])
def test_the_environment_policy_sets_the_backup_policy(pg_db, make_project, policy, expected):
    project = make_project("backup")
    (project / "pyproject.toml").write_text(
        f'[tool.alembic-deploy.env.production]\nallow = ["index-not-concurrent", "drop-table"]\n{policy}\n')
    steps = [("a3_seed", ["--env", "production"]), ("head", ["--env", "production"])]
    assert _decisions(project, pg_db, steps) == expected


def test_the_flag_wins_over_the_environment_policy(pg_db, make_project):
    project = make_project("backup")
    (project / "pyproject.toml").write_text(
        '[tool.alembic-deploy.env.production]\nallow = ["index-not-concurrent", "drop-table"]\nbackup = "always"\n')
    assert _decisions(project, pg_db, [("a3_seed", ["--env", "production", "--backup", "never"])]) == [False]


def test_sqlite_counts_every_revision_as_destructive_since_the_lint_cannot_read_it(sqlite_db, make_project):
    project = make_project("backup")
    r = run_cli(project, "upgrade", "a3_seed", "--backup", "destructive", "--backup-destination",
                str(project / "backups"), url=sqlite_db.url)
    assert r.returncode == 0, r.output
    assert "not linted (the lint does not read sqlite SQL): taken as destructive" in r.stderr
    assert len(_backups(sqlite_db)) == 1


def test_backup_tables_auto_dumps_only_the_tables_the_revisions_touch(pg_db, make_project, tmp_path):
    project = make_project("backup")
    _seed(project, pg_db)
    r = _deploy(project, pg_db, "--backup", "destructive", "--backup-tables", "auto")
    assert r.returncode == 0, r.output
    [backup] = _backups(pg_db)
    assert backup["tables"] == "users,alembic_version"  # b4 creates notes: not there yet
    # Restored into another, empty database: the rows and the revision come back.
    target = Database(pg_db.url.rsplit("/", 1)[0] + "/" + make_url(pg_db.url).database + "_restored", "postgresql")
    from servers import databases

    with databases("postgresql") as dbs:
        target = Database(dbs.create(), "postgresql")
        r = run_cli(project, "restore", str(backup["location"]), "--database-url", target.url, url=pg_db.url)
        assert r.returncode == 0, r.output
        assert target.scalar("SELECT COUNT(*) FROM users") == EXTRA_USERS + 1
        assert target.versions() == ["a3_seed"]


def test_retention_keeps_the_newest_backups(sqlite_db, make_project):
    project = make_project("backup")
    for target in ("a1_users", "a2_users_email_index", "a3_seed"):
        r = _deploy(project, sqlite_db, target, "--backup", "always", "--backup-retention", "2")
        assert r.returncode == 0, r.output
    kept = sorted(p.name for p in (project / "backups").iterdir())
    assert len(kept) == 2 and kept[0].startswith("default-app-a1_users-") and kept[1].startswith("default-app-a2_")
    assert "retention: deleted" in r.stderr


def test_restore_refuses_a_database_that_holds_tables_unless_forced(sqlite_db, make_project, tmp_path):
    project = make_project("backup")
    _seed(project, sqlite_db)
    assert _deploy(project, sqlite_db, "--backup", "always").returncode == 0
    [backup] = _backups(sqlite_db)
    r = run_cli(project, "restore", str(backup["id"]), url=sqlite_db.url)
    message = assert_failed_cleanly(r, 5)
    assert "not empty" in message and "--force" in message
    r = run_cli(project, "restore", str(backup["id"]), "--force", url=sqlite_db.url)  # no terminal, no --yes
    assert "not confirmed" in assert_failed_cleanly(r, 5)
    assert sqlite_db.versions() == ["b5_drop_users"]
    # Into another (new) database, no question of replacing anything.
    other = f"sqlite:///{tmp_path / 'other.db'}"
    r = run_cli(project, "restore", str(backup["location"]), "--database-url", other, url=sqlite_db.url)
    assert r.returncode == 0, r.output
    assert Database(other, "sqlite").scalar("SELECT COUNT(*) FROM users") == EXTRA_USERS + 1


def test_backups_lists_every_backup_as_text_and_json(sqlite_db, make_project, tmp_path):
    project = make_project("backup")
    r = run_cli(project, "backups", url=sqlite_db.url)
    assert r.returncode == 0 and "No backups recorded yet." in r.stdout
    assert _deploy(project, sqlite_db, "a3_seed", "--backup", "always").returncode == 0
    (tmp_path / "f").write_text("")
    assert run_cli(project, "upgrade", "--backup", "always", "--backup-destination", str(tmp_path / "f" / "x"),
                   url=sqlite_db.url).returncode == 11
    r = run_cli(project, "backups", url=sqlite_db.url)
    assert r.returncode == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["id", "started", "outcome", "method"]
    assert " failed " in lines[1] and " ok " in lines[2] and "sqlite-backup" in lines[2]
    doc = _valid(run_cli(project, "backups", "--json", url=sqlite_db.url).stdout)
    assert doc["command"] == "backups" and doc["exit_code"] == 0
    assert [b["outcome"] for b in doc["backups"]] == ["failed", "ok"]
    ok = doc["backups"][1]
    assert ok["revisions"] == [] and ok["tables"] is None and ok["started_at"].endswith("Z")


def test_upgrade_json_carries_the_backup(sqlite_db, make_project):
    project = make_project("backup")
    r = _deploy(project, sqlite_db, "a1_users", "--backup", "always", "--json")
    assert r.returncode == 0, r.output
    doc = _valid(r.stdout)
    assert doc["backup"]["outcome"] == "ok" and doc["backup"]["method"] == "sqlite-backup"
    assert any(step["name"] == "backup" for step in doc["steps"])


# -- passwords --------------------------------------------------------------------------------------
_SPY = """#!/bin/sh
# Records how this process was started (its own /proc cmdline, as ps shows it), then runs the real one.
tr '\\0' ' ' < /proc/$$/cmdline >> "{log}"
echo >> "{log}"
[ -n "$PGPASSWORD" ] && echo "PGPASSWORD set" >> "{log}"
exec "{real}" "$@"
"""


def test_the_password_is_never_in_the_dump_programs_arguments_or_any_output(password_db, make_project, tmp_path):
    import shutil

    db = password_db
    project = make_project("backup")
    _seed(project, db)
    spies = tmp_path / "spies"
    spies.mkdir()
    log = tmp_path / "cmdlines"
    for name in ("pg_dump", "mysqldump", "mariadb-dump"):
        real = shutil.which(name)
        assert real is not None
        spy = spies / name
        spy.write_text(_SPY.format(log=log, real=real))
        spy.chmod(0o755)
    env = {"PATH": f"{spies}{os.pathsep}{os.environ['PATH']}"}
    r = _deploy(project, db, "--backup", "always", env=env)
    assert r.returncode == 0, r.output
    cmdlines = log.read_text()
    assert ("pg_dump" in cmdlines) or ("dump" in cmdlines)
    password = db.password
    assert password
    from urllib.parse import quote

    for form in (password, quote(password, safe="")):
        assert form not in cmdlines
        assert form not in r.output
        assert form not in json.dumps(_backups(db), default=str) + json.dumps(db.journal(), default=str)
    if db.backend == "postgresql":
        assert "PGPASSWORD set" in cmdlines
    else:
        assert "--defaults-extra-file=" in cmdlines  # the password is in a 0600 file, gone with its folder
    r = run_cli(project, "restore", str(_backups(db)[0]["id"]), "--force", "--yes", url=db.url, env=env)
    assert r.returncode == 0, r.output
    assert db.scalar("SELECT COUNT(*) FROM users") == EXTRA_USERS + 1
    assert password not in r.output


def test_the_mysql_password_file_is_private(tmp_path):
    from alembic_deploy.backends import for_dialect

    url = make_url("mysql+pymysql://app:p%40ss%22w\\rd@db.example:3307/shop")
    command = for_dialect("mysql").dump_command(url, ["users"], ["alembic_deploy_history"], tmp_path)
    assert 'p@ss"w\\rd' not in " ".join(command.argv) and not command.env
    [option_file] = [a.split("=", 1)[1] for a in command.argv if a.startswith("--defaults-extra-file=")]
    assert command.argv[1].startswith("--defaults-extra-file=")  # the clients read it only when first
    assert stat.S_IMODE(os.stat(option_file).st_mode) == 0o600
    assert Path(option_file).read_text() == '[client]\npassword="p@ss\\"w\\\\rd"\n'
    assert "--ignore-table=shop.alembic_deploy_history" in command.argv and command.argv[-2:] == ("shop", "users")


# -- AWS: S3 and RDS through moto's local server ----------------------------------------------------
def test_backup_streams_to_s3_and_restores_from_it(pg_db, make_project, aws):
    aws.client("s3").create_bucket(Bucket="deploy-backups")
    project = make_project("backup")
    _seed(project, pg_db)
    r = run_cli(project, "upgrade", "--env", "production", "--backup", "destructive", "--backup-destination",
                "s3://deploy-backups/app/", url=pg_db.url, env=aws.env)
    assert r.returncode == 0, r.output
    [backup] = _backups(pg_db)
    database = make_url(pg_db.url).database
    assert str(backup["location"]).startswith(f"s3://deploy-backups/app/production-{database}-a3_seed-")
    objects = aws.client("s3").list_objects_v2(Bucket="deploy-backups")["Contents"]
    assert [o["Size"] for o in objects] == [backup["size_bytes"]]
    r = run_cli(project, "restore", str(backup["id"]), "--force", "--yes", url=pg_db.url, env=aws.env)
    assert r.returncode == 0, r.output
    assert pg_db.scalar("SELECT COUNT(*) FROM users") == EXTRA_USERS + 1


@pytest.mark.parametrize("method", ["rds-snapshot", "aurora-snapshot"])
def test_snapshot_backup_waits_for_the_snapshot_and_restore_prints_the_aws_steps(pg_db, make_project, aws, method):
    rds = aws.client("rds")
    if method == "rds-snapshot":
        rds.create_db_instance(DBInstanceIdentifier="shop-db", Engine="postgres", DBInstanceClass="db.t3.micro",
                               AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="not-used-1234")
    else:
        rds.create_db_cluster(DBClusterIdentifier="shop-cluster", Engine="aurora-postgresql",
                              MasterUsername="admin", MasterUserPassword="not-used-1234")
    identifier = "shop-db" if method == "rds-snapshot" else "shop-cluster"
    project = make_project("backup")
    for target in ("a3_seed", "head"):
        r = run_cli(project, "upgrade", target, "--env", "production", "--backup", "always", "--backup-method", method,
                    "--backup-rds-identifier", identifier, "--backup-retention", "1", url=pg_db.url, env=aws.env)
        assert r.returncode == 0, r.output
    backups = _backups(pg_db)
    assert [b["method"] for b in backups] == [method, method] and all(b["outcome"] == "ok" for b in backups)
    if method == "rds-snapshot":
        snaps = [s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots(
            DBInstanceIdentifier=identifier, SnapshotType="manual")["DBSnapshots"]]
    else:
        snaps = [s["DBClusterSnapshotIdentifier"] for s in rds.describe_db_cluster_snapshots(
            DBClusterIdentifier=identifier, SnapshotType="manual")["DBClusterSnapshots"]]
    # Retention 1: the first snapshot was deleted after the second was taken.
    assert len(snaps) == 1 and snaps[0].startswith("production-") and "a3-seed" in snaps[0]
    assert str(backups[1]["location"]).startswith("arn:aws:rds:") and str(backups[1]["location"]).endswith(snaps[0])
    r = run_cli(project, "restore", str(backups[1]["id"]), url=pg_db.url, env=aws.env)
    assert r.returncode == 0, r.output
    assert _valid(run_cli(project, "restore", str(backups[1]["id"]), "--json", url=pg_db.url,
                          env=aws.env).stdout)["outcome"] == "instructions"
    if method == "rds-snapshot":
        assert f"aws rds restore-db-instance-from-db-snapshot --db-snapshot-identifier {snaps[0]}" in r.stdout
    else:
        assert f"aws rds restore-db-cluster-from-snapshot --snapshot-identifier {snaps[0]}" in r.stdout
        assert "--engine aurora-postgresql" in r.stdout
    assert pg_db.versions() == ["b5_drop_users"]  # nothing was restored here


def test_snapshot_of_an_unknown_instance_fails_the_deploy_with_exit_11(pg_db, make_project, aws):
    project = make_project("backup")
    r = run_cli(project, "upgrade", "a1_users", "--backup", "always", "--backup-method", "rds-snapshot",
                "--backup-rds-identifier", "no-such-db", url=pg_db.url, env=aws.env)
    message = assert_failed_cleanly(r, 11)
    assert "no-such-db" in message
    assert not pg_db.has_table("users")


def test_a_user_command_gets_the_urls_parts_in_its_environment(sqlite_db, make_project, tmp_path):
    project = make_project("backup")
    script = tmp_path / "backup.py"
    script.write_text(
        "import os, shutil\n"
        "dest = os.path.join(os.environ['BACKUP_DESTINATION'], os.environ['BACKUP_NAME'] + '.copy')\n"
        "os.makedirs(os.environ['BACKUP_DESTINATION'], exist_ok=True)\n"
        "shutil.copy(os.environ['DB_NAME'], dest)\n"
        "print('copied'); print(dest)\n"
    )
    r = _deploy(project, sqlite_db, "a1_users", "--backup", "always", "--backup-method", "command",
                "--backup-command", f"{sys.executable} {script}")
    assert r.returncode == 0, r.output
    [backup] = _backups(sqlite_db)
    assert backup["method"] == "command" and str(backup["location"]).endswith(".copy")
    assert Path(str(backup["location"])).is_file() and backup["size_bytes"] > 0


def test_sigterm_during_the_backup_stops_the_dump_and_migrates_nothing(pg_db, make_project, tmp_path):
    """A dump that hangs: SIGTERM once it is running ends it (no process left, no partial file),
    exits 9 and journals the run interrupted, with the database as it was."""
    import signal
    import time

    from helpers import spawn_cli

    project = make_project("backup")
    _seed(project, pg_db)
    spies = tmp_path / "spies"
    spies.mkdir()
    started = tmp_path / "dump.pid"
    (spies / "pg_dump").write_text(f'#!/bin/sh\necho $$ > "{started}.tmp" && mv "{started}.tmp" "{started}"\n'
                                   "exec sleep 600\n")
    (spies / "pg_dump").chmod(0o755)
    proc = spawn_cli(project, "upgrade", "--backup", "always", "--backup-destination", str(project / "backups"),
                     url=pg_db.url, env={"PATH": f"{spies}{os.pathsep}{os.environ['PATH']}"})
    try:
        deadline = 120.0
        waited = time.monotonic()
        while not started.exists():  # the dump is running: its pid file appears
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() - waited < deadline, "the dump never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=120)
    except BaseException:
        proc.kill()
        raise
    assert proc.returncode == 9, err
    assert not Path(f"/proc/{int(started.read_text())}").exists()  # the dump ended with the deploy
    assert not any((project / "backups").glob("*"))  # no partial backup left
    assert pg_db.versions() == ["a3_seed"] and pg_db.has_table("users")
    assert pg_db.journal()[-1]["outcome"] == "interrupted"


def test_without_the_lint_extra_destructive_backs_up_every_time_and_says_why(pg_db, make_project, tmp_path):
    from helpers import without_modules

    project = make_project("backup")
    env = without_modules(tmp_path / "stubs", "pglast")
    r = _deploy(project, pg_db, "a1_users", "--backup", "destructive", env=env)
    assert r.returncode == 0, r.output
    assert "the lint extra is not installed" in r.stderr and "taken as destructive" in r.stderr
    [backup] = _backups(pg_db)
    assert backup["outcome"] == "ok" and "could not be linted" in str(backup["reason"])


@pytest.mark.parametrize("answer", ["y", "n"])
def test_restore_asks_on_a_terminal_before_replacing_tables(sqlite_db, make_project, answer):
    """stdin a terminal (a pty): the question on stderr, the answer read from the terminal."""
    import pty
    import subprocess

    project = make_project("backup")
    _seed(project, sqlite_db)
    assert _deploy(project, sqlite_db, "--backup", "always").returncode == 0
    [backup] = _backups(sqlite_db)
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALEMBIC_DEPLOY_")}
    env["DATABASE_URL"] = sqlite_db.url
    proc = subprocess.Popen([sys.executable, "-m", "alembic_deploy", "restore", str(backup["id"]), "--force"],
                            cwd=project, env=env, stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(terminal)
    try:
        assert proc.stderr is not None
        asked = b""
        while b"[y/N]" not in asked:  # wait for the question
            chunk = proc.stderr.read1(4096)
            assert chunk, asked
            asked += chunk
        assert b"replacing its 2 table(s)" in asked
        os.write(controller, f"{answer}\n".encode())
        _out, err = proc.communicate(timeout=120)
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()
    if answer == "y":
        assert proc.returncode == 0, err
        assert sqlite_db.scalar("SELECT COUNT(*) FROM users") == EXTRA_USERS + 1
    else:
        assert proc.returncode == 5 and b"not confirmed" in err
        assert sqlite_db.versions() == ["b5_drop_users"]


def test_retention_applies_to_an_s3_prefix(sqlite_db, make_project, aws):
    aws.client("s3").create_bucket(Bucket="keep-two")
    project = make_project("backup")
    for target in ("a1_users", "a2_users_email_index", "a3_seed"):
        r = run_cli(project, "upgrade", target, "--backup", "always", "--backup-destination", "s3://keep-two/db",
                    "--backup-retention", "2", url=sqlite_db.url, env=aws.env)
        assert r.returncode == 0, r.output
    keys = sorted(o["Key"] for o in aws.client("s3").list_objects_v2(Bucket="keep-two")["Contents"])
    assert len(keys) == 2 and keys[0].startswith("db/default-app-a1_users-") and "a2_users" in keys[1]
    [latest] = _backups(sqlite_db)[-1:]
    r = run_cli(project, "restore", str(latest["location"]), "--database-url",
                f"sqlite:///{project / 'copy.db'}", url=sqlite_db.url, env=aws.env)
    assert r.returncode == 0, r.output
    assert Database(f"sqlite:///{project / 'copy.db'}", "sqlite").versions() == ["a2_users_email_index"]


def test_a_backup_of_some_tables_replaces_only_those(pg_db, make_project):
    project = make_project("backup")
    _seed(project, pg_db)
    assert _deploy(project, pg_db, "--backup", "destructive", "--backup-tables", "auto").returncode == 0
    [backup] = _backups(pg_db)
    r = run_cli(project, "restore", str(backup["id"]), "--force", "--yes", url=pg_db.url)
    assert r.returncode == 0, r.output
    assert pg_db.scalar("SELECT COUNT(*) FROM users") == EXTRA_USERS + 1
    assert pg_db.versions() == ["a3_seed"]
    assert pg_db.has_table("notes")  # not in the backup: left as it was


def test_the_postgresql_programs_get_the_urls_libpq_settings_but_no_password_argument(tmp_path):
    from alembic_deploy.backends import for_dialect

    url = make_url("postgresql+psycopg://app:s3cret-pw@/shop?host=/cloudsql/p:r:i&sslmode=require")
    command = for_dialect("postgresql").dump_command(url, ["public.users"], ["alembic_deploy_history"], tmp_path)
    assert "s3cret-pw" not in " ".join(command.argv)
    assert command.env == {"PGPASSWORD": "s3cret-pw", "PGHOST": "/cloudsql/p:r:i", "PGSSLMODE": "require"}
    assert '--table="public"."users"' in command.argv
    assert '--exclude-table="alembic_deploy_history_id_seq"' in command.argv
    assert "--dbname=dbname='shop'" in command.argv and not any(a.startswith("--host") for a in command.argv)


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_restore_into_another_empty_database_by_path(backend, request, make_project):
    from servers import databases

    db: Database = request.getfixturevalue("pg_db" if backend == "postgresql" else "mysql_db")
    project = make_project("backup")
    _seed(project, db)
    assert _deploy(project, db, "--backup", "always").returncode == 0
    [backup] = _backups(db)
    with databases(backend) as dbs:
        target = Database(dbs.create(), backend)
        r = run_cli(project, "restore", str(backup["location"]), "--database-url", target.url, url=db.url)
        assert r.returncode == 0, r.output
        assert target.scalar("SELECT COUNT(*) FROM users") == EXTRA_USERS + 1
        assert target.versions() == ["a3_seed"]
        assert not target.has_table(HISTORY + "_backups")  # the journal's tables are never in a backup
        assert [row["command"] for row in target.journal()] == ["restore"]  # the restore is its first entry
    assert not db.has_table("users")  # the source is untouched


def test_run_migrate_backs_up_before_migrating_too(sqlite_db, make_project, tmp_path):
    project = make_project("backup")
    r = run_cli(tmp_path, "run", "--migrate", "-c", str(project / "alembic.ini"), "--backup", "always",
                "--backup-destination", str(tmp_path / "bk"), "--", sys.executable, "-c", "print('app started')",
                url=sqlite_db.url)
    assert r.returncode == 0, r.output
    assert "app started" in r.stdout
    [backup] = _backups(sqlite_db)
    assert backup["outcome"] == "ok" and str(backup["location"]).startswith(str(tmp_path / "bk"))


@pytest.mark.parametrize("damage", ["truncated", "not-a-backup"])
@pytest.mark.parametrize("fixture", ["sqlite_db", "pg_db", "mysql_db"])
def test_restore_of_a_broken_backup_file_with_force_changes_nothing(request, make_project, tmp_path, fixture, damage):
    """A truncated or foreign file is read through (pg_restore to nowhere, SQLite's quick_check, a
    MySQL dump's last line) before the restore drops anything: exit 11, the database as it was (qa:
    it used to drop every table first, then fail)."""
    db: Database = request.getfixturevalue(fixture)
    project = make_project("backup")
    _seed(project, db)
    assert _deploy(project, db, "--backup", "always").returncode == 0
    [backup] = _backups(db)
    good = Path(str(backup["location"])).read_bytes()
    broken = tmp_path / f"broken{Path(str(backup['location'])).suffix}"
    broken.write_bytes(good[: len(good) // 2] if damage == "truncated" else b"not a backup at all\n" * 50)
    before = _schema(db)
    r = invoke_cli(project, "restore", str(broken), "--force", "--yes", url=db.url)
    message = assert_failed_cleanly(r, 11)
    assert "is not a backup that can be restored" in message and "Nothing was changed" in message, message
    assert _schema(db) == before and db.versions() == ["b5_drop_users"]
    assert db.journal()[-1]["command"] == "restore" and db.journal()[-1]["outcome"] == "failed"


def test_restore_from_a_bucket_that_does_not_exist_says_so_once(make_project, tmp_path, aws):
    """qa: the message repeated botocore's whole text after the code, and said "deploy again"."""
    project = make_project("backup")
    r = invoke_cli(project, "restore", "s3://no-such-bucket-qa/x.sqlite3", "--yes",
                   "--database-url", f"sqlite:///{tmp_path / 'new.db'}", env=aws.env)
    message = assert_failed_cleanly(r, 11)
    assert "Reading s3://no-such-bucket-qa/x.sqlite3 failed: NoSuchBucket (The specified bucket does not exist)" \
        in message, message
    assert "An error occurred" not in message and "deploy again" not in message
