"""The scratch database ``drift`` replays the migrations into: named after its owner, dropped when
the replay ends however it ends, and swept up at the next start when its owner was SIGKILLed.

A scratch database is named ``alembic_deploy_scratch_<host>_<database>_<pid>_<time>_<random>`` (at
most 60 characters, within PostgreSQL's 63): the host it was made from (up to 8 of its letters and
digits, then 4 hex digits of a hash of the full name, so two hosts never share a tag), 4 hex digits
of a hash of the live database's name it was made for, the process id that owns it, and the time it
was made (seconds, base 36). Everything but SIGKILL drops it on the way out; a SIGKILL leaves it
behind. So each start first lists the scratch databases the role can see and drops those made for
the same live database from this host by a process that is no longer running here (its id is free,
or, on Linux, taken by a process that started after the scratch database was made, as a restarted
container's pid 1). One made on another host (a replaced Kubernetes pod has a new host name), for
another database, or by a process still running is left alone; so is a name of another form (an older release's
``alembic_deploy_scratch_<12 hex>``): drop those by hand.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from . import credentials
from .errors import ScratchUnavailable
from .observer import event

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .deployment import Deployment
    from .signals import InterruptState

#: Every scratch database's name starts so: easy to spot, and to grant (``GRANT ... ON
#: `alembic_deploy_scratch_%`.*``).
SCRATCH_PREFIX: Final = "alembic_deploy_scratch_"
_NAME: Final = re.compile(rf"{SCRATCH_PREFIX}([a-z0-9]+)_([0-9a-f]{{4}})_([0-9]+)_([0-9a-z]+)_([0-9a-f]{{4}})\Z")
_DIGITS: Final = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Owner:
    """Who made a scratch database, read back from its name."""

    host: str
    #: :func:`database_tag` of the live database it was made for.
    database: str
    pid: int
    created: int

    def is_dead_here(self, database: str | None) -> bool:
        """Made for ``database`` on this host by a process that no longer runs."""
        if self.host != host_tag() or self.database != database_tag(database):
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # running, as another user
            pass
        # The id is taken: by the owner, or by a process started after the owner died (a restarted
        # container's entrypoint is pid 1 again). Linux says when it started.
        started = _process_start(self.pid)
        return started is not None and started > self.created + 1


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (Unix time), from Linux's /proc; None where that is not known."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        boot = next(line for line in Path("/proc/stat").read_text(encoding="ascii").splitlines()
                    if line.startswith("btime "))
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, counted after the command's ")"
        return int(boot.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def host_tag(hostname: str | None = None) -> str:
    """This host in a scratch database's name: up to 8 of its letters and digits, lower-cased,
    then 4 hex digits of a hash of the whole name."""
    name = hostname if hostname is not None else socket.gethostname()
    letters = re.sub(r"[^a-z0-9]", "", name.lower())[:8]
    return letters + _hash(name)


def database_tag(database: str | None) -> str:
    """The live database a scratch database was made for, in its name: 4 hex digits of a hash."""
    return _hash(database or "")


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()[:4]


def scratch_name(database: str | None, now: float | None = None, pid: int | None = None) -> str:
    """A fresh name for a scratch database owned by this process, made for the live ``database``
    (see the module's docstring)."""
    seconds = int(time.time() if now is None else now)
    stamp = ""
    while True:
        seconds, digit = divmod(seconds, 36)
        stamp = _DIGITS[digit] + stamp
        if not seconds:
            break
    owner = os.getpid() if pid is None else pid
    return f"{SCRATCH_PREFIX}{host_tag()}_{database_tag(database)}_{owner}_{stamp}_{uuid.uuid4().hex[:4]}"


def owner_of(database: str) -> Owner | None:
    """The owner a scratch database's name records (a SQLite scratch file's path works too);
    None for a name of any other form."""
    base = os.path.basename(database).split("-", 1)[0].removesuffix(".db")
    found = _NAME.match(base)
    if found is None:
        return None
    return Owner(found.group(1), found.group(2), int(found.group(3)), int(found.group(4), 36))


def sweep_stale(deployment: Deployment) -> list[str]:
    """Drop the scratch databases a process of this host left behind for the same live database
    when it was SIGKILLed (its process is gone); returns their names. A sweep that cannot list or
    drop one says so and goes on: it never fails the run that found it."""
    from sqlalchemy.exc import SQLAlchemyError

    backend, engine = deployment.backend, deployment.engine
    try:
        found = backend.scratch_databases(engine, SCRATCH_PREFIX)
    except (SQLAlchemyError, OSError) as exc:
        deployment.echo(f"note: could not list stale scratch databases: {backend.error_text(exc)}")
        return []
    dropped = []
    for database in found:
        owner = owner_of(database)
        if owner is None or not owner.is_dead_here(engine.url.database):
            continue
        try:
            backend.drop_scratch(engine, database)
        except (SQLAlchemyError, OSError) as exc:
            deployment.echo(f"note: could not drop stale scratch database {database}: {backend.error_text(exc)}")
            continue
        dropped.append(database)
        deployment.echo(f"Dropped stale scratch database {database}: its owner, process {owner.pid} of this host, "
                        "is gone (killed before it could drop it).")
    return dropped


@contextmanager
def scratch_database(deployment: Deployment, interrupt: InterruptState) -> Iterator[str]:
    """A scratch database beside the live one (its URL, with the live URL's driver and
    credentials), dropped when the block ends however it ends; stale ones are swept first."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from .signals import deferred

    backend, engine = deployment.backend, deployment.engine
    name = scratch_name(engine.url.database)
    with deferred(interrupt):
        sweep_stale(deployment)
        try:
            database = backend.create_scratch(engine, name)
        except (SQLAlchemyError, OSError) as exc:
            raise ScratchUnavailable(
                f"drift could not create its scratch database {name} on {deployment.masked_url}: "
                f"{backend.error_text(exc)}. drift replays the migrations into a temporary database of its own "
                "beside the live one and drops it afterwards: give the role the right to create databases "
                "(PostgreSQL: ALTER ROLE ... CREATEDB; MySQL/MariaDB: GRANT CREATE, DROP ON "
                f"`{SCRATCH_PREFIX}%`.* TO ...), or run drift with a role that has it.",
            ) from None
    try:
        deployment.echo(event("drift_replaying", f"Replaying the migrations into scratch database {database} "
                              "(dropped afterwards)...", scratch_database=database))
        url = make_url(deployment.url).set(database=database).render_as_string(hide_password=False)
        # The replay's connects (env.py's, the snapshot's) read a rotated secret or sign an IAM token
        # as the live database's do, not the login of the run's start the URL holds.
        with credentials.same_login(url, deployment.url):
            yield url
    finally:
        with deferred(interrupt):
            backend.drop_scratch(engine, database)
