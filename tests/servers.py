"""Throwaway databases and servers, for the tests and the benchmarks alike.

Databases: uniquely named, created on the shared servers (``ALEMBIC_DEPLOY_TEST_PG``,
``ALEMBIC_DEPLOY_TEST_MYSQL``; the local ones by default) or as SQLite files, and dropped again::

    from servers import databases

    with databases("postgresql") as dbs:     # or "mysql", or "sqlite" with folder=
        url = dbs.create()                    # postgresql+psycopg://postgres@127.0.0.1:5432/ad_test_...
    # every database it created is dropped here, also when the block failed

Servers, for fault tests: a PostgreSQL or MariaDB server of the test's own, on a free loopback port,
that a test may stop, restart or kill without disturbing the shared servers::

    from servers import postgres_server, mariadb_server

    with postgres_server() as pg:            # initdb + pg_ctl start, stopped (by PID) on exit
        url = pg.create_database("app")      # postgresql+psycopg://postgres@127.0.0.1:PORT/app
        pg.restart()                          # fast shutdown by PID, start again on the same port
        pg.kill()                             # SIGKILL the postmaster (a crash)

    with mariadb_server() as my:             # mariadb-install-db + mariadbd, stopped by PID
        url = my.create_database("app")

Processes are stopped by the PID the server wrote (postmaster.pid) or the PID of the process
this module started, never by name. Data directories live under /tmp and are removed on exit.
As root, PostgreSQL runs as the ``postgres`` user (initdb refuses root) and mariadbd as root.

Binaries: ``ALEMBIC_DEPLOY_TEST_PG_BIN`` (default /usr/lib/postgresql/15/bin),
``ALEMBIC_DEPLOY_TEST_MARIADBD`` (default /usr/sbin/mariadbd) and ``mariadb-install-db`` on PATH.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from helpers import PG_DRIVER, free_port, url_text

#: The shared servers, as an administrator: where tests and benchmarks create their databases.
PG_ADMIN = os.environ.get("ALEMBIC_DEPLOY_TEST_PG", f"{PG_DRIVER}://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN = os.environ.get("ALEMBIC_DEPLOY_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/")
ADMIN_URLS = {"postgresql": PG_ADMIN, "mysql": MYSQL_ADMIN}
BACKENDS = ("sqlite", "postgresql", "mysql")
#: SQLite's database file and the files beside it that a run may leave (the tool's lock file).
_SQLITE_FILES = ("", "-journal", "-wal", "-shm", ".alembic-deploy.lock")

PG_BIN = Path(os.environ.get("ALEMBIC_DEPLOY_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
MARIADBD = os.environ.get("ALEMBIC_DEPLOY_TEST_MARIADBD", "/usr/sbin/mariadbd")
#: How long a server may take to start or stop.
START_TIMEOUT = 60.0


class Databases:
    """Uniquely named empty databases of one backend: on its server (``admin_url``, the shared one
    by default), or SQLite files in ``folder``. :meth:`create` makes one and returns its URL (sync
    driver); :meth:`drop` removes one, :meth:`close` every one still there."""

    def __init__(self, backend: str, *, admin_url: str | None = None, folder: Path | None = None,
                 prefix: str = "ad_test_") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        if backend == "sqlite" and folder is None:
            raise ValueError("SQLite databases need a folder")
        self.backend = backend
        self.folder = folder
        self.prefix = prefix
        self.created: list[str] = []
        self._admin: Engine | None = None
        if backend != "sqlite":
            self._admin = create_engine(admin_url or ADMIN_URLS[backend], poolclass=NullPool,
                                        isolation_level="AUTOCOMMIT")

    def _quoted(self, name: str) -> str:
        return f'"{name}"' if self.backend == "postgresql" else f"`{name}`"

    def create(self) -> str:
        name = f"{self.prefix}{uuid.uuid4().hex[:12]}"
        if self._admin is None:
            assert self.folder is not None
            self.created.append(name)
            return f"sqlite:///{self.folder / (name + '.db')}"
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {self._quoted(name)}")
        self.created.append(name)
        return url_text(self._admin.url, database=name)

    def drop(self, url: str) -> None:
        database = make_url(url).database or ""
        if self._admin is None:
            for suffix in _SQLITE_FILES:
                Path(database + suffix).unlink(missing_ok=True)
            name = Path(database).name.removesuffix(".db")
        else:
            force = " WITH (FORCE)" if self.backend == "postgresql" else ""
            with self._admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {self._quoted(database)}{force}")
            name = database
        if name in self.created:
            self.created.remove(name)

    def close(self) -> None:
        """Drop every database still there; the admin connection goes too."""
        try:
            for name in list(self.created):
                if self._admin is None:
                    assert self.folder is not None
                    self.drop(f"sqlite:///{self.folder / (name + '.db')}")
                else:
                    self.drop(url_text(self._admin.url, database=name))
        finally:
            if self._admin is not None:
                self._admin.dispose()


@contextmanager
def databases(backend: str, *, admin_url: str | None = None, folder: Path | None = None,
              prefix: str = "ad_test_") -> Iterator[Databases]:
    """:class:`Databases` for the block; every database it created is dropped on the way out."""
    dbs = Databases(backend, admin_url=admin_url, folder=folder, prefix=prefix)
    try:
        yield dbs
    finally:
        dbs.close()


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # reap it when it is our child (mariadbd); PostgreSQL's postmaster is pg_ctl's
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.02)
    return False


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"no server listening on 127.0.0.1:{port} after {timeout:g}s")


class _Server:
    """What both servers share: a port, a scratch folder, a PID, stop/kill/restart by PID."""

    scheme = ""
    admin_database = ""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix=f"ad-{type(self).__name__.lower()}-"))
        self.pid: int | None = None

    # -- to implement ---------------------------------------------------------------------------
    def init(self) -> _Server:
        raise NotImplementedError

    def start(self) -> _Server:
        raise NotImplementedError

    def _stop_signal(self) -> int:
        return signal.SIGTERM

    # -- shared ---------------------------------------------------------------------------------
    def url(self, database: str | None = None) -> str:
        return f"{self.scheme}@127.0.0.1:{self.port}/{database if database is not None else self.admin_database}"

    def create_database(self, name: str) -> str:
        """Create ``name`` and return its URL (sync driver)."""
        quote = '"' if self.scheme.startswith("postgresql") else "`"
        engine = create_engine(self.url(), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {quote}{name}{quote}")
        finally:
            engine.dispose()
        return url_text(self.url(name))

    @property
    def running(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> None:
        """A clean shutdown (sessions are terminated, transactions rolled back), by PID."""
        self._signal(self._stop_signal(), START_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL the server: a crash, as an OOM kill or a host failure would do."""
        self._signal(signal.SIGKILL, START_TIMEOUT)

    def restart(self, down_for: float = 0.0) -> None:
        """Stop, stay down ``down_for`` seconds, start again on the same port."""
        self.stop()
        if down_for:
            time.sleep(down_for)
        self.start()

    def cleanup(self) -> None:
        if self.running:
            try:
                self._signal(signal.SIGKILL, 10)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    def _signal(self, signum: int, timeout: float) -> None:
        pid = self.pid
        if pid is None:
            return
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
        if not _wait_gone(pid, timeout):
            raise RuntimeError(f"{type(self).__name__} pid {pid} still running {timeout:g}s after signal {signum}")
        self.pid = None


class PostgresServer(_Server):
    """PostgreSQL via initdb + pg_ctl on 127.0.0.1 only: trust authentication for ``postgres``, or
    scram-sha-256 with ``password`` (the shared server trusts everyone)."""

    admin_database = "postgres"

    def __init__(self, port: int | None = None, password: str | None = None) -> None:
        super().__init__(port)
        self.password = password

    @property
    def scheme(self) -> str:  # type: ignore[override]
        auth = f"postgres:{quote(self.password, safe='')}" if self.password else "postgres"
        return f"{PG_DRIVER}://{auth}"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _as_postgres(self, *argv: str, timeout: float = START_TIMEOUT) -> None:
        cmd = list(argv)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)

    def init(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        auth = ["--auth=trust"]
        if self.password:
            pwfile = self.root / "pw"
            pwfile.write_text(self.password)
            if os.geteuid() == 0:
                shutil.chown(pwfile, "postgres")
            auth = ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", *auth,
                          "--no-sync", "-E", "UTF8")
        return self

    def start(self) -> PostgresServer:
        # Dynamic shared memory as files in the data directory (pg_dynshmem), not in /dev/shm: a
        # server a test kills with SIGKILL cannot remove its segments, and the directory goes with it.
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
                   " -c dynamic_shared_memory_type=mmap")
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options,
                          "-l", str(self.root / "log"), "-w", "-t", str(int(START_TIMEOUT)), "start")
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        return self

    def _stop_signal(self) -> int:
        return signal.SIGINT  # PostgreSQL's "fast" shutdown

    @property
    def log(self) -> str:
        path = self.root / "log"
        return path.read_text(errors="replace") if path.exists() else ""


class MariaDBServer(_Server):
    """MariaDB via mariadb-install-db + mariadbd; root without password on 127.0.0.1 only.

    The metadata_lock_info plugin is loaded (when the server ships it) so that metadata-lock
    holders can be named.
    """

    scheme = "mysql+pymysql://root"
    admin_database = ""

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.process: subprocess.Popen[bytes] | None = None
        self._starts = 0

    @property
    def data(self) -> Path:
        return self.root / "data"

    def init(self) -> MariaDBServer:
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={self.data}", "--user=root",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, capture_output=True, timeout=START_TIMEOUT,
        )
        return self

    def start(self) -> MariaDBServer:
        log = open(self.root / "log", "ab")  # noqa: SIM115 - the server writes to it until it stops
        self.process = subprocess.Popen(
            [MARIADBD, "--no-defaults", f"--datadir={self.data}", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.root / 'sock'}", f"--pid-file={self.root / 'pid'}",
             "--user=root", "--skip-log-bin", "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
             "--skip-name-resolve", "--plugin-load-add=metadata_lock_info"],
            stdout=log, stderr=log,
        )
        log.close()
        self.pid = self.process.pid
        try:
            self._wait_ready(START_TIMEOUT)
        except RuntimeError:
            self.kill()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Until this server says it is ready and listens: a port that answers may be another
        server's, one that took the port first (this one then exits, unable to bind)."""
        log = self.root / "log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                said = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"mariadbd exited {self.process.returncode}: {said}")
            # Once per start: a restart appends to the log, so count the lines said so far.
            if log.read_text(errors="replace").count("ready for connections") > self._starts:
                _wait_port(self.port, max(deadline - time.monotonic(), 0.1))
                self._starts += 1
                return
            time.sleep(0.05)
        raise RuntimeError(f"mariadbd not ready on 127.0.0.1:{self.port} after {timeout:g}s")


@contextmanager
def _serving(server: _Server) -> Iterator[_Server]:
    try:
        server.init().start()
        yield server
    finally:
        server.cleanup()


@contextmanager
def postgres_server(port: int | None = None) -> Iterator[PostgresServer]:
    """A started throwaway PostgreSQL; stopped and removed on exit."""
    with _serving(PostgresServer(port)) as server:
        yield server  # type: ignore[misc]


@contextmanager
def mariadb_server(port: int | None = None) -> Iterator[MariaDBServer]:
    """A started throwaway MariaDB; stopped and removed on exit."""
    with _serving(MariaDBServer(port)) as server:
        yield server  # type: ignore[misc]
