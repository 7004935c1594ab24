"""What the lint reports: a :class:`Finding`, graded by a :class:`Severity`."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable


class Severity(enum.Enum):
    """How much a finding matters; ``check`` blocks at ``error`` unless told otherwise."""

    NOTICE = "notice"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


_RANKS = {Severity.NOTICE: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclass(frozen=True)
class Finding:
    """One rule's verdict on one statement (or on the revision file as a whole).

    ``allowed`` is the reason given by an ``# alembic-deploy: allow RULE -- reason`` line of the
    revision file: the finding is kept, shown with its reason, and never blocks.
    """

    rule: str
    severity: Severity
    revision: str
    file: str
    line: int | None
    message: str
    help: str
    sql: str | None = None
    allowed: str | None = None

    @property
    def blocks(self) -> bool:
        return self.allowed is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "severity": self.severity.value, "revision": self.revision, "file": self.file,
            "line": self.line, "message": self.message, "help": self.help, "sql": self.sql,
            "allowed": self.allowed,
        }


def blocking(findings: Iterable[Finding], fail_on: str) -> list[Finding]:
    """The findings that fail a check blocking at ``fail_on``: that severity or above, not allowed."""
    floor = Severity(fail_on)
    return [f for f in findings if f.blocks and f.severity.at_least(floor)]
