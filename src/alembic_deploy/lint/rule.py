"""A lint rule: a stable kebab-case id, the dialects it claims, a severity, why the thing it finds
hurts, the safe way to do it, and a check over one revision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .change import Change
    from .finding import Severity
    from .revision import LintInput

POSTGRESQL: Final = frozenset({"postgresql"})
MYSQL: Final = frozenset({"mysql", "mariadb"})
EVERY_DIALECT: Final = POSTGRESQL | MYSQL


@dataclass(frozen=True)
class Hit:
    """What a check found: a message, and the change (or the line of the file) it is about."""

    message: str
    change: Change | None = None
    line: int | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    dialects: frozenset[str]
    #: Why it hurts, in one or two sentences.
    why: str
    #: The safe way, in one or two sentences: the finding's help.
    safe: str
    check: Callable[[LintInput], Iterable[Hit]]


def per_change(applies: Callable[[Change], bool], say: Callable[[Change], str],
               *, new_tables: bool = False) -> Callable[[LintInput], Iterable[Hit]]:
    """A check that looks at each change on its own: ``say(change)`` for each one ``applies`` to.
    Changes on a table created earlier in the same revision are skipped (nobody uses it yet)
    unless ``new_tables``."""

    def check(revision: LintInput) -> Iterable[Hit]:
        for change in revision.changes:
            if (new_tables or not change.on_new_table) and applies(change):
                yield Hit(say(change), change)

    return check
