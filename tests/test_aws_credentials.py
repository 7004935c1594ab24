"""--database-secret: the database login from AWS Secrets Manager (moto as a local server, reached by
boto3 through AWS_ENDPOINT_URL, as in production), against real servers that check passwords."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from helpers import Database, assert_failed_cleanly, invoke_cli, run_cli, url_text, without_modules

ENGINES = {"postgresql": "postgres", "mysql": "mysql"}


def rds_secret(url: str, backend: str, **changes: Any) -> dict[str, Any]:
    """The JSON RDS writes for a database (what its rotation functions keep up to date)."""
    parts = make_url(url)
    secret = {"engine": ENGINES[backend], "host": parts.host, "port": parts.port, "username": parts.username,
              "password": parts.password, "dbname": parts.database}
    secret.update(changes)
    return {k: v for k, v in secret.items() if v is not None}


def store(aws, value: dict[str, Any] | str) -> str:
    name = f"db/{uuid.uuid4().hex[:8]}"
    aws.client("secretsmanager").create_secret(
        Name=name, SecretString=value if isinstance(value, str) else json.dumps(value))
    return name


def test_upgrade_logs_in_with_the_rds_json_of_the_secret(make_project, password_db, aws):
    project = make_project("sync")
    name = store(aws, rds_secret(password_db.url, password_db.backend))
    run = run_cli(project, "upgrade", "--database-secret", name, env=aws.env)
    assert run.returncode == 0, run.output
    assert password_db.versions() == ["a3_seed"]
    assert password_db.password not in run.output
    row = password_db.journal()[-1]
    assert row["outcome"] == "applied"
    assert password_db.password not in json.dumps(row, default=str)


def test_the_secret_comes_from_the_environment_too(make_project, password_pg_db, aws):
    project = make_project("sync")
    name = store(aws, rds_secret(password_pg_db.url, "postgresql"))
    run = run_cli(project, "status", "--json", env={**aws.env, "ALEMBIC_DEPLOY_DATABASE_SECRET": name})
    assert run.returncode == 0, run.output
    assert json.loads(run.stdout)["pending"]
    assert password_pg_db.password not in run.output


def test_a_secret_holding_a_url_is_used_as_the_url(make_project, password_db, aws):
    project = make_project("sync")
    name = store(aws, password_db.url)
    run = run_cli(project, "upgrade", "--database-secret", name, env=aws.env)
    assert run.returncode == 0, run.output
    assert password_db.versions() == ["a3_seed"]
    assert password_db.password not in run.output


def test_a_managed_secret_with_only_the_login_takes_host_and_database_from_database_url(
        make_project, password_db, aws):
    """RDS's own master-user secret (manage-master-user-password) holds username and password only."""
    project = make_project("sync")
    parts = make_url(password_db.url)
    name = store(aws, {"username": parts.username, "password": parts.password})
    without_login = url_text(parts.set(username=None, password=None))
    run = run_cli(project, "upgrade", "--database-secret", name, url=without_login, env=aws.env)
    assert run.returncode == 0, run.output
    assert password_db.versions() == ["a3_seed"]
    assert password_db.password not in run.output


def test_missing_port_and_dbname_take_the_engines_defaults(make_project, password_pg, aws):
    """PostgreSQL's defaults: the database named postgres; the port is the test server's own, as a
    secret names it (a missing port would be 5432, the shared server's, which trusts everyone)."""
    project = make_project("sync")
    parts = make_url(password_pg.url())
    name = store(aws, {"engine": "postgres", "host": parts.host, "port": parts.port, "username": parts.username,
                       "password": parts.password})
    run = run_cli(project, "status", "--json", "--database-secret", name, env=aws.env)
    assert run.returncode == 0, run.output
    assert password_pg.password not in run.output


@pytest.mark.parametrize(("change", "said"), [
    ({"password": None}, "no 'password'"),
    ({"username": None, "Username": "app"}, "keys are case-sensitive"),
    ({"engine": "oracle-ee"}, "'oracle-ee'"),
    ({"port": "five"}, "not a TCP port"),
])
def test_a_secret_missing_what_a_login_needs_is_exit_2_without_showing_it(make_project, password_pg_db, aws,
                                                                          change, said):
    project = make_project("sync")
    name = store(aws, rds_secret(password_pg_db.url, "postgresql", **change))
    run = run_cli(project, "upgrade", "--database-secret", name, env=aws.env)
    message = assert_failed_cleanly(run, 2, password_pg_db.password)
    assert said in message and name in message


def test_a_secret_that_is_neither_json_nor_a_url_is_exit_2_without_quoting_it(make_project, aws):
    project = make_project("sync")
    name = store(aws, "hunter2-not-a-url")
    run = run_cli(project, "upgrade", "--database-secret", name, env=aws.env)
    message = assert_failed_cleanly(run, 2, "hunter2-not-a-url")
    assert "neither a JSON object nor a database URL" in message


def test_a_secret_that_does_not_exist_is_exit_13(make_project, aws):
    project = make_project("sync")
    run = run_cli(project, "upgrade", "--database-secret", "no/such/secret", env=aws.env)
    message = assert_failed_cleanly(run, 13)
    assert "ResourceNotFoundException" in message and "secretsmanager:GetSecretValue" in message


@pytest.mark.parametrize(("setting", "says"), [
    ({"AWS_ENDPOINT_URL": "not-a-url"}, "Check AWS_ENDPOINT_URL"),
    ({"AWS_DEFAULT_REGION": "us east 1", "AWS_REGION": "us east 1"}, "is not a region name"),
    ({"AWS_PROFILE": "no-such-profile", "AWS_CONFIG_FILE": os.devnull}, "AWS_PROFILE names a profile"),
])
def test_a_broken_aws_setting_is_exit_2_saying_which(make_project, aws, setting, says):
    """An endpoint that is not a URL, a region that is not one, a profile that does not exist: the
    client cannot be built (qa: these were exit 1, "internal error")."""
    project = make_project("sync")
    for command in (("upgrade", "--database-secret", "db/x"), ("wait-ecs", "--wait-ecs-service", "c/s")):
        run = invoke_cli(project, *command, env={**aws.env, **setting})
        assert says in assert_failed_cleanly(run, 2), run.output


def test_a_secret_aws_refuses_to_give_is_exit_13(make_project, password_pg_db, aws):
    """moto does not enforce IAM policies; a secret scheduled for deletion is one AWS refuses to read
    (InvalidRequestException), through the same error path as AccessDeniedException."""
    project = make_project("sync")
    name = store(aws, rds_secret(password_pg_db.url, "postgresql"))
    aws.client("secretsmanager").delete_secret(SecretId=name, RecoveryWindowInDays=7)
    run = run_cli(project, "upgrade", "--database-secret", name, env=aws.env)
    message = assert_failed_cleanly(run, 13, password_pg_db.password)
    assert "InvalidRequestException" in message


@pytest.fixture
def aws_enforcing_iam(tmp_path) -> Iterator[dict[str, str]]:
    """A moto server of its own (``moto_server``, a real process) that checks IAM permissions once
    its first 3 requests are done (moto's INITIAL_NO_AUTH_ACTION_COUNT): a user with no policy,
    its access key and a secret are made with them. Yields the environment of that user."""
    import subprocess
    import sys
    from pathlib import Path

    import boto3

    from helpers import free_port
    from servers import _wait_port

    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, 60)
        endpoint = f"http://127.0.0.1:{port}"
        setup = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "testing",
                 "aws_secret_access_key": "testing"}
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="deployer")
        key = iam.create_access_key(UserName="deployer")["AccessKey"]
        boto3.client("secretsmanager", **setup).create_secret(Name="prod/db", SecretString="{}")
        yield {"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
               "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_secret_this_role_may_not_read_is_exit_13(make_project, aws_enforcing_iam):
    """IAM refuses GetSecretValue to a user without a policy (moto enforcing IAM; its error body is
    XML where the service speaks JSON, so botocore reads only the HTTP status, 403)."""
    project = make_project("sync")
    run = run_cli(project, "upgrade", "--database-secret", "prod/db", env=aws_enforcing_iam)
    message = assert_failed_cleanly(run, 13, aws_enforcing_iam["AWS_SECRET_ACCESS_KEY"])
    assert "access denied" in message and "secretsmanager:GetSecretValue" in message


def test_the_secret_arn_names_its_region(make_project, password_pg_db, aws):
    project = make_project("sync")
    name = store(aws, rds_secret(password_pg_db.url, "postgresql"))
    arn = aws.client("secretsmanager").describe_secret(SecretId=name)["ARN"]
    env = {k: v for k, v in aws.env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    run = run_cli(project, "upgrade", "--database-secret", arn, env=env)
    assert run.returncode == 0, run.output


def test_without_boto3_the_secret_flag_says_which_extra_to_install(make_project, aws, tmp_path):
    project = make_project("sync")
    env = {**aws.env, **without_modules(tmp_path / "stubs", "boto3")}
    run = run_cli(project, "upgrade", "--database-secret", "db/x", env=env)
    message = assert_failed_cleanly(run, 2)
    assert "pip install 'alembic-deploy[aws]'" in message


def test_the_core_cli_does_not_import_boto3(make_project, tmp_path):
    project = make_project("sync")
    run = run_cli(project, "upgrade", url=f"sqlite:///{tmp_path / 'app.db'}",
                  env=without_modules(tmp_path / "stubs", "boto3", "botocore"))
    assert run.returncode == 0, run.output


# -- rotation --------------------------------------------------------------------------------------
@pytest.fixture
def own_pg_login(password_pg) -> Iterator[Database]:
    """A database on :func:`password_pg` owned by a role of its own, whose password the test may
    rotate (the server's superuser keeps its password for the other tests)."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    role, password = f"app_{uuid.uuid4().hex[:8]}", f"s3cr3t%{uuid.uuid4().hex[:8]}"
    admin = create_engine(password_pg.url(), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN PASSWORD '{password.replace('%', '%%')}'")
        conn.exec_driver_sql(f"CREATE DATABASE {role} OWNER {role}")
    try:
        yield Database(url_text(password_pg.url(role), username=role, password=password), "postgresql")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {role} WITH (FORCE)")
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        admin.dispose()


@pytest.fixture(params=("postgresql", "mysql"))
def login_db(request: pytest.FixtureRequest) -> Database:
    """A database on each server backend reached by a login of its own that checks passwords."""
    database: Database = request.getfixturevalue("own_pg_login" if request.param == "postgresql"
                                                 else "password_mysql_db")
    return database


def admin_url(database: Database, request: pytest.FixtureRequest) -> str:
    """A URL of the server's administrator, who may change ``database``'s login."""
    from servers import MYSQL_ADMIN

    return request.getfixturevalue("password_pg").url() if database.backend == "postgresql" else MYSQL_ADMIN


def rotate_database_password(database: Database, new: str, request: pytest.FixtureRequest | str) -> None:
    """What a rotation function's setSecret step does: the database's password changes.
    ``request``: the test's (for the administrator's URL) or that URL."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    user = make_url(database.url).username
    admin = create_engine(request if isinstance(request, str) else admin_url(database, request), poolclass=NullPool,
                          isolation_level="AUTOCOMMIT")
    quoted = new.replace("%", "%%")  # the drivers format statements with %
    statement = (f"ALTER ROLE {user} PASSWORD '{quoted}'" if database.backend == "postgresql"
                 else f"ALTER USER '{user}'@'%%' IDENTIFIED BY '{quoted}'")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(statement)
    finally:
        admin.dispose()


def in_process_settings(monkeypatch, aws, project, name: str, **flags: Any):
    from alembic_deploy.settings import Settings

    for key, value in aws.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)  # env.py's engine is given the URL through it
    return Settings.resolve({"config": str(project / "alembic.ini"), "database_secret": name, **flags}, environ={})


def test_a_rotation_between_two_connects_of_one_process_is_followed(make_project, login_db, aws, monkeypatch,
                                                                    request):
    """One process, two upgrades: the URL it resolved first holds the password of before the rotation;
    the second run's wait, lock session and env.py engine each read the secret again as they connect
    (a reconnect late in a long deploy is the same case)."""
    from alembic_deploy import api

    project = make_project("sync")
    name = store(aws, rds_secret(login_db.url, login_db.backend))
    settings = in_process_settings(monkeypatch, aws, project, name)
    assert api.upgrade(settings, "a1").outcome == "applied"

    rotated = f"r0tated%{uuid.uuid4().hex[:8]}"
    rotate_database_password(login_db, rotated, request)
    aws.client("secretsmanager").put_secret_value(
        SecretId=name, SecretString=json.dumps(rds_secret(login_db.url, login_db.backend, password=rotated)))

    report = api.upgrade(settings, "head")
    assert report.outcome == "applied", report.to_json()
    assert Database(url_text(login_db.url, password=rotated), login_db.backend).versions() == ["a3_seed"]
    assert rotated not in report.to_json()


@pytest.mark.parametrize("scenario", ["sync", "async"])
def test_a_rotation_during_one_run_is_followed(make_project, login_db, aws, request, scenario):
    """One upgrade: the wait step logs in with the password of before; while the health gate holds
    the run, the rotation changes the database's password, then the secret's current version; the
    connects after the gate (env.py's engine, the verification) read the secret again and log in.
    ``async``: env.py's engine is an async one (asyncpg, aiomysql), named by DATABASE_URL without a
    login, which the secret completes."""
    from helpers import ASYNC_DRIVERS
    from test_health import HealthServer

    project = make_project(scenario)
    given = {}
    if scenario == "async":
        given["url"] = url_text(make_url(login_db.url).set(drivername=ASYNC_DRIVERS[login_db.backend], username=None,
                                                             password=None))
    name = store(aws, rds_secret(login_db.url, login_db.backend))
    rotated, admin = f"r0tated%{uuid.uuid4().hex[:8]}", admin_url(login_db, request)
    secrets = aws.client("secretsmanager")

    def answer(n: int) -> tuple[int, object]:
        if n == 0:
            rotate_database_password(login_db, rotated, admin)
            secrets.put_secret_value(SecretId=name, SecretString=json.dumps(
                rds_secret(login_db.url, login_db.backend, password=rotated)))
        return 200, {"status": "ok"}

    with HealthServer(answer).running() as health:
        run = run_cli(project, "upgrade", "--database-secret", name, "--wait-healthy", health.url,
                      "--healthy-count", "1", env=aws.env, **given)
    assert run.returncode == 0, run.output
    now = Database(url_text(login_db.url, password=rotated), login_db.backend)
    assert now.versions() == ["a3_seed"]
    assert [r["outcome"] for r in now.journal()] == ["applied"]
    assert rotated not in run.output and login_db.password not in run.output


def test_a_password_changed_without_the_secret_is_a_wrong_password_exit_2(make_project, own_pg_login, aws,
                                                                          request):
    """The secret is read again once after the server refused it; the same login again is refused."""
    project = make_project("sync")
    name = store(aws, rds_secret(own_pg_login.url, "postgresql"))
    rotate_database_password(own_pg_login, f"elsewhere-{uuid.uuid4().hex[:8]}", request)
    run = run_cli(project, "upgrade", "--database-secret", name, env=aws.env)
    message = assert_failed_cleanly(run, 2, own_pg_login.password)
    assert "password authentication failed" in message
    assert f"in the secret '{name}', where the login came from" in message, message  # not "in DATABASE_URL"


def test_a_refused_login_reads_the_secret_again_once(own_pg_login, aws, monkeypatch, request):
    """The rotation's last step (the secret's new version becoming current) lands between a connect
    the server refused and the second read: the second read's login connects. The connect function
    is the driver's own; the test finishes the rotation after the server's refusal, as AWS's
    rotation function would at any moment."""
    import psycopg

    from alembic_deploy.backends import for_dialect
    from alembic_deploy.credentials import connect_fresh, keys_of
    from alembic_deploy.integrations.aws.secrets import SecretLogin

    for key, value in aws.env.items():
        monkeypatch.setenv(key, value)
    name = store(aws, rds_secret(own_pg_login.url, "postgresql"))
    rotated = f"r0tated-{uuid.uuid4().hex[:8]}"
    rotate_database_password(own_pg_login, rotated, request)  # setSecret done, finishSecret not yet
    url = make_url(own_pg_login.url)
    keys, cparams = keys_of(url.get_dialect()(), url)
    attempts: list[str] = []

    def connect() -> Any:
        attempts.append(cparams["password"])
        try:
            return psycopg.connect(**cparams)
        except psycopg.OperationalError:
            if len(attempts) == 1:  # finishSecret: the new version becomes AWSCURRENT
                aws.client("secretsmanager").put_secret_value(SecretId=name, SecretString=json.dumps(
                    rds_secret(own_pg_login.url, "postgresql", password=rotated)))
            raise

    conn = connect_fresh(SecretLogin(name), for_dialect("postgresql"), cparams, keys, connect)
    try:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        conn.close()
    assert attempts == [own_pg_login.password, rotated]


def test_an_unreadable_secret_with_json_is_a_document_of_the_schema(make_project, aws):
    from test_json_output import checked

    project = make_project("sync")
    run = run_cli(project, "upgrade", "--json", "--database-secret", "no/such/secret", env=aws.env)
    assert checked(run.stdout, "upgrade", 13)["error"]["kind"] == "credentials-unavailable"



def rotate_through_refusal_proxy(project, database: Database, aws, request, current: str):
    """Run ``upgrade`` with a secret holding ``database``'s password, after the rotation changed the
    database's password (setSecret) but not yet the secret (finishSecret). The server is reached
    through :class:`refusal_proxy.RefusalProxy`, which finishes the rotation when it sees the
    server refuse a login, before the tool sees the refusal: the secret's current version then
    holds ``current``. Returns the run, the proxy and the database's new password."""
    from refusal_proxy import RefusalProxy

    rotated, parts = f"r0tated%{uuid.uuid4().hex[:8]}", make_url(database.url)
    secrets = aws.client("secretsmanager")

    def secret(proxy: RefusalProxy, password: str | None) -> dict[str, Any]:
        through = url_text(parts.set(host="127.0.0.1", port=proxy.port))
        return rds_secret(through, database.backend, password=password)

    def finish_rotation(_n: int) -> None:
        secrets.put_secret_value(SecretId=name, SecretString=json.dumps(
            secret(proxy, rotated if current == "rotated" else current)))

    with RefusalProxy((parts.host or "127.0.0.1", parts.port or 0), database.backend, finish_rotation) as proxy:
        name = store(aws, secret(proxy, database.password))
        rotate_database_password(database, rotated, request)
        run = run_cli(project, "upgrade", "--database-secret", name, env=aws.env)
    return run, proxy, rotated


def test_a_whole_run_whose_login_is_refused_reads_the_secret_again_once_and_deploys(make_project, login_db, aws,
                                                                                     request):
    """The run's first connect (the wait step) is refused: the rotation is half done. The rotation
    finishes between the refusal and the tool's re-read (:func:`rotate_through_refusal_proxy`):
    the re-read gets the new password and the run deploys, after exactly one refused login."""
    run, proxy, rotated = rotate_through_refusal_proxy(make_project("sync"), login_db, aws, request, "rotated")
    assert run.returncode == 0, run.output
    assert proxy.refused == 1
    assert Database(url_text(login_db.url, password=rotated), login_db.backend).versions() == ["a3_seed"]
    assert rotated not in run.output and login_db.password not in run.output


def test_a_secret_still_wrong_after_the_re_read_is_a_wrong_password_exit_2(make_project, login_db, aws, request):
    """As above, but the version the rotation makes current holds another wrong password: the tool
    reads it once, is refused again (two refusals, no third try) and stops with exit 2 (README's
    exit-code table: a wrong password), showing no password."""
    also_wrong = f"n0t-it%{uuid.uuid4().hex[:8]}"
    run, proxy, rotated = rotate_through_refusal_proxy(make_project("sync"), login_db, aws, request, also_wrong)
    message = assert_failed_cleanly(run, 2, login_db.password or "", rotated, also_wrong)
    assert proxy.refused == 2
    assert "password" in message or "Access denied" in message


@pytest.fixture
def scratch_grants(login_db: Database, request: pytest.FixtureRequest) -> Database:
    """``login_db``'s login may also create and drop drift's scratch databases."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from alembic_deploy.scratch import SCRATCH_PREFIX

    user = make_url(login_db.url).username
    admin = create_engine(admin_url(login_db, request), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"ALTER ROLE {user} CREATEDB" if login_db.backend == "postgresql"
                             else f"GRANT ALL ON `{SCRATCH_PREFIX}%%`.* TO '{user}'@'%%'")
    admin.dispose()
    return login_db


@pytest.mark.parametrize("verb", ["drift", "plan --check-drift"])
def test_drifts_scratch_database_follows_a_rotation_too(make_project, scratch_grants, aws, monkeypatch, request,
                                                        verb):
    """One process: the URL resolved at its start holds the password of before the rotation; the
    second drift check's scratch database (made, replayed into through env.py, read, dropped) logs
    in with the secret read again, as the live database's connects do."""
    from alembic_deploy import api
    from alembic_deploy.plan import plan as plan_with

    database = scratch_grants
    project = make_project("sync")
    name = store(aws, rds_secret(database.url, database.backend))
    settings = in_process_settings(monkeypatch, aws, project, name)
    assert api.upgrade(settings, "head").outcome == "applied"
    assert api.drift(settings).exit_code == 0

    rotated = f"r0tated%{uuid.uuid4().hex[:8]}"
    rotate_database_password(database, rotated, request)
    aws.client("secretsmanager").put_secret_value(
        SecretId=name, SecretString=json.dumps(rds_secret(database.url, database.backend, password=rotated)))

    if verb == "drift":
        report = api.drift(settings)
    else:
        plan = plan_with(in_process_settings(monkeypatch, aws, project, name, check_drift=True))
        assert plan.drift is not None
        report = plan.drift
    assert report.exit_code == 0 and not report.differences, report.details()
