"""The cyclic garbage collector during a run: kept out of the way of what the run loads.

A run builds nearly everything it keeps in bursts: importing SQLAlchemy, Alembic and a driver,
then loading every revision module. Each burst allocates tens of thousands of container objects
that live as long as the run, and the collector, started every 700 allocations, walks them again
and again as they age (one full pass alone takes ~13 ms once Alembic is loaded). So:

* :meth:`RunHeap.loading`, around a burst: no collection while it runs, and what it built is then
  frozen (``gc.freeze``: out of the collector's sight; still freed by reference counting);
* :meth:`RunHeap.migrating`, under the migration lock: all that is loaded frozen, and young
  objects collected in batches of :data:`MIGRATING_THRESHOLD` allocations, not 700;
* :meth:`RunHeap.close` (leaving ``with RunHeap()``), when the call returns: the frozen objects
  are handed back.

Waiting for the database, the app's health or the lock runs with the collector as the caller set
it: a retry loop's exceptions make reference cycles. A process that froze objects itself (a
pre-fork server, say) is left alone: freezing is process-wide, and so is handing back.

The collector's settings belong to the process, not to a library: only the ``alembic-deploy``
command (:func:`manage_collector`, called by the CLI's main) lets a run change them. Called from
an application (``alembic_deploy.upgrade(...)``), :class:`RunHeap` changes nothing.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Allocations between two collections of the young generation while migrating (CPython: 700).
MIGRATING_THRESHOLD = 20_000

_managed = False


def manage_collector() -> None:
    """This process is the ``alembic-deploy`` command: its runs may pause, freeze and batch the
    collector. Never called by the library itself."""
    global _managed
    _managed = True


def collector_managed() -> bool:
    return _managed


class RunHeap:
    """The collector's settings for one API call (see the module docstring)."""

    def __init__(self, managed: bool | None = None) -> None:
        if managed is None:
            managed = _managed
        #: The process lets runs manage the collector, and nothing was frozen before the call:
        #: freezing and handing back are this call's to do.
        self.owned = managed and gc.get_freeze_count() == 0
        self._froze = False

    @contextmanager
    def loading(self) -> Iterator[None]:
        """Around code that builds what lives as long as the run, and does not wait."""
        if not self.owned or not gc.isenabled():
            yield
            return
        gc.disable()
        try:
            yield
        finally:
            self._freeze()
            gc.enable()

    @contextmanager
    def migrating(self) -> Iterator[None]:
        if not self.owned:
            yield
            return
        self._freeze()
        threshold = gc.get_threshold()
        gc.set_threshold(max(threshold[0], MIGRATING_THRESHOLD), *threshold[1:])
        try:
            yield
        finally:
            gc.set_threshold(*threshold)

    def close(self) -> None:
        if self._froze:
            self._froze = False
            gc.unfreeze()

    def __enter__(self) -> RunHeap:  # noqa: PYI034 - a final class in practice; Self needs 3.11
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _freeze(self) -> None:
        gc.freeze()
        self._froze = True
