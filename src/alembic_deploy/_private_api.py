"""Every use of another library's private or undocumented API, in one place.

Each has no public equivalent; each is checked by ``tests/test_private_api.py``, which fails
loudly when a release changes it, and each library's upper bound in ``pyproject.toml`` is the
release that test last passed on. Everything else in the package uses public APIs only.

* Alembic: the steps a run takes (``ScriptDirectory._upgrade_revs``, ``_downgrade_revs``,
  ``_stamp_revs``: what ``alembic.command.upgrade``/``downgrade``/``stamp`` themselves pass to
  env.py's ``run_migrations``; the tool needs them before they run, to plan, time and announce
  each revision), a revision's down revisions and dependencies with branch labels resolved
  (``Script._all_down_revisions``), and the migration context's ``on_version_apply`` callbacks
  (chained after env.py's own, without changing env.py); the ``alembic.op`` module's proxy kept across
  a revision rendered offline for the lint while env.py's own run is under way
  (:func:`op_proxy_kept`: ``Operations.context`` does not nest, its exit removes the proxy).
* PyMySQL: a query sent without waiting for its reply (``Connection._execute_command``), the
  reply read later (``_read_query_result``). The journal's progress records go ahead of the
  migration's statement this way instead of delaying it by a round trip each.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from alembic.runtime.migration import MigrationContext
    from alembic.script import Script, ScriptDirectory


def upgrade_steps(script: ScriptDirectory, target: str, current: Any) -> list[Any]:
    """The steps ``alembic upgrade target`` runs from ``current`` (alembic's error types on a
    target it cannot reach)."""
    return list(script._upgrade_revs(target, current))


def downgrade_steps(script: ScriptDirectory, target: str, current: Any) -> list[Any]:
    """The steps ``alembic downgrade target`` runs from ``current``."""
    return list(script._downgrade_revs(target, current))


def stamp_steps(script: ScriptDirectory, target: str, current: Any) -> list[Any]:
    """The steps ``alembic stamp target`` runs from ``current``."""
    return list(script._stamp_revs(target, current))


def requires(revision: Script) -> tuple[str, ...]:
    """What must be applied before ``revision``: its down revisions, then its ``depends_on``
    (branch labels resolved to revision ids), each once."""
    return tuple(revision._all_down_revisions)


def chain_version_apply(context: MigrationContext, callback: Callable[..., None]) -> None:
    """Call ``callback`` after each step as ``on_version_apply`` does, after env.py's own."""
    callbacks = tuple(context.on_version_apply_callbacks)
    if callback not in callbacks:
        context.on_version_apply_callbacks = (*callbacks, callback)


@contextmanager
def op_proxy_kept() -> Iterator[None]:
    """Put ``alembic.op`` back as it was on entry, when the block is left: the module-level
    functions ``Operations.context`` installs (``op.create_table``, ...) and its ``_proxy``."""
    from alembic import op as op_module

    namespace = vars(op_module)
    saved = dict(namespace)
    try:
        yield
    finally:
        for name in [n for n in namespace if n not in saved]:
            del namespace[name]
        namespace.update(saved)


#: The MySQL protocol's command byte for a text query (``pymysql.constants.COMMAND.COM_QUERY``).
_COM_QUERY = 3


def pymysql_send(connection: Any, sql: str) -> Callable[[], Any]:
    """Send ``sql`` on a PyMySQL connection and return the function that reads its reply
    (raising the statement's error). Until then nothing else may use the connection."""
    connection._execute_command(_COM_QUERY, sql)
    read: Callable[[], Any] = connection._read_query_result
    return read
