"""--rds-iam: a fresh RDS IAM token for every connect, TLS required.

No RDS here: the tokens (signed by boto3 with moto's fake credentials, as production signs with the
task's role) are checked by :class:`rds_iam_proxy.IamAuthProxy`, which does what RDS does with them
(cleartext password over TLS, SigV4 verified for its host, port and user, not expired) in front of a
real PostgreSQL, and relays a session that passed to it; :class:`rds_iam_mysql_proxy.MysqlIamAuthProxy`
does the same with MySQL's protocol (``mysql_clear_password`` over TLS) in front of the real MariaDB."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from helpers import assert_failed_cleanly, run_cli, url_text
from rds_iam_mysql_proxy import MysqlIamAuthProxy
from rds_iam_proxy import IamAuthProxy, self_signed_certificate
from test_health import HealthServer


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def iam_proxy(certificate, pg_db) -> Iterator[IamAuthProxy]:
    upstream = make_url(pg_db.url)
    proxy = IamAuthProxy(certificate, upstream=(str(upstream.host), int(upstream.port or 5432))).start()
    try:
        yield proxy
    finally:
        proxy.stop()


def through(proxy: IamAuthProxy, url: str, **query: str) -> str:
    """``url`` (user, no password) reached through the proxy."""
    parts = make_url(url)
    return url_text(parts.set(host="127.0.0.1", port=proxy.port, password=None, query=query))


def test_every_connect_logs_in_with_a_token_rds_would_accept(make_project, pg_db, aws, iam_proxy):
    project = make_project("sync")
    run = run_cli(project, "upgrade", "--rds-iam", url=through(iam_proxy, pg_db.url, sslmode="require"), env=aws.env)
    assert run.returncode == 0, run.output
    assert pg_db.versions() == ["a3_seed"]
    assert len(iam_proxy.logins) >= 2 and all(login.refused is None for login in iam_proxy.logins), iam_proxy.logins
    for login in iam_proxy.logins:
        assert login.token not in run.output and login.token.split("X-Amz-Signature=")[1] not in run.output
    assert "X-Amz-Signature" not in json.dumps(pg_db.journal(), default=str)


def test_a_connect_after_a_pause_signs_a_token_of_its_own(make_project, pg_db, aws, iam_proxy):
    """The URL's token was signed when the run started. A health gate holds the run for a few
    seconds, and from the moment it opens the proxy refuses any token signed before (as RDS refuses
    one past its 15 minutes): env.py's engine connects after it, so it passes only with a token
    signed for that connect."""
    project = make_project("sync")
    count = 3

    def answer(n: int) -> tuple[int, object]:
        if n == count - 1:  # the answer that opens the gate
            iam_proxy.not_before = time.time()
        return 200, {"status": "ok"}

    with HealthServer(answer).running() as health:
        run = run_cli(project, "upgrade", "--rds-iam", "--no-fast-path", "--wait-healthy", health.url,
                      "--healthy-count", str(count), "--health-interval", "1",
                      url=through(iam_proxy, pg_db.url, sslmode="require"), env=aws.env)
    assert run.returncode == 0, run.output + repr(iam_proxy.logins)
    assert pg_db.versions() == ["a3_seed"]
    assert all(login.refused is None for login in iam_proxy.logins), iam_proxy.logins
    opened = iam_proxy.not_before
    assert opened is not None and any(login.at >= opened for login in iam_proxy.logins)
    # The wait step logged in before the gate opened: a token reused from then on would have been refused.
    first = iam_proxy.logins[0]
    assert first.at < opened


def test_a_token_signed_with_other_credentials_is_a_refused_login_exit_2(make_project, pg_db, aws, iam_proxy):
    project = make_project("sync")
    env = {**aws.env, "AWS_SECRET_ACCESS_KEY": "not-the-key-aws-knows"}
    run = run_cli(project, "upgrade", "--rds-iam", url=through(iam_proxy, pg_db.url, sslmode="require"), env=env)
    message = assert_failed_cleanly(run, 2, *(login.token for login in iam_proxy.logins))
    assert "PAM authentication failed" in message
    assert "may log in with IAM" in message and "rds-db:connect" in message, message  # qa: not "in DATABASE_URL"
    assert iam_proxy.logins and all(login.refused == "bad signature" for login in iam_proxy.logins)
    assert not pg_db.has_table("alembic_version")


@pytest.mark.parametrize(("url", "said"), [
    ("postgresql+psycopg://app@db.example.com/app", "sslmode=require"),
    ("postgresql+psycopg://app@db.example.com/app?sslmode=prefer", "sslmode=prefer"),
    ("mysql+pymysql://app@db.example.com/app", "ssl_ca="),
])
def test_rds_iam_without_tls_is_refused_before_anything_connects(make_project, aws, url, said):
    project = make_project("sync")
    run = run_cli(project, "upgrade", "--rds-iam", url=url, env=aws.env)
    message = assert_failed_cleanly(run, 2)
    assert "TLS" in message and said in message


def test_rds_iam_needs_a_user_and_a_host(make_project, aws):
    project = make_project("sync")
    run = run_cli(project, "status", "--rds-iam", url="postgresql+psycopg://db.example.com/app?sslmode=require",
                  env=aws.env)
    assert "no user" in assert_failed_cleanly(run, 2)


# -- MySQL / MariaDB ------------------------------------------------------------------------------
@pytest.fixture
def iam_mysql(certificate, mysql_db) -> Iterator[tuple[MysqlIamAuthProxy, str]]:
    """:class:`rds_iam_mysql_proxy.MysqlIamAuthProxy` in front of the shared MariaDB, and the URL of
    ``mysql_db`` through it as a user of its own (``IDENTIFIED WITH AWSAuthenticationPlugin`` on RDS;
    here a user with no password, since the proxy checks the token) with TLS required by ``ssl_ca``."""
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from servers import MYSQL_ADMIN

    parts, user = make_url(mysql_db.url), f"iam_{uuid.uuid4().hex[:8]}"
    admin = create_engine(MYSQL_ADMIN, poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY ''")
        conn.exec_driver_sql(f"GRANT ALL ON `{parts.database}`.* TO '{user}'@'%%'")
    proxy = MysqlIamAuthProxy(certificate, upstream=(str(parts.host), int(parts.port or 3306))).start()
    try:
        yield proxy, url_text(parts.set(host="127.0.0.1", port=proxy.port, username=user, password=None,
                                        query={"ssl_ca": str(certificate[0])}))
    finally:
        proxy.stop()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'%%'")
        admin.dispose()


def test_mysql_every_connect_logs_in_with_a_token_rds_would_accept(make_project, mysql_db, aws, iam_mysql):
    proxy, url = iam_mysql
    run = run_cli(make_project("sync"), "upgrade", "--rds-iam", url=url, env=aws.env)
    assert run.returncode == 0, run.output + repr(proxy.logins)
    assert mysql_db.versions() == ["a3_seed"]
    assert len(proxy.logins) >= 2 and all(login.refused is None for login in proxy.logins), proxy.logins
    for login in proxy.logins:
        assert login.token.split("X-Amz-Signature=")[1] not in run.output
    assert "X-Amz-Signature" not in json.dumps(mysql_db.journal(), default=str)


def test_mysql_a_token_signed_with_other_credentials_is_access_denied_exit_2(make_project, mysql_db, aws,
                                                                             iam_mysql):
    proxy, url = iam_mysql
    env = {**aws.env, "AWS_SECRET_ACCESS_KEY": "not-the-key-aws-knows"}
    run = run_cli(make_project("sync"), "upgrade", "--rds-iam", url=url, env=env)
    message = assert_failed_cleanly(run, 2, *(login.token for login in proxy.logins))
    assert "Access denied" in message
    assert proxy.logins and all(login.refused == "bad signature" for login in proxy.logins)
    assert not mysql_db.has_table("alembic_version")
