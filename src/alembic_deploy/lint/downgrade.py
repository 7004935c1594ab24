"""The lint's view of a downgrade, for ``rollback``: is the revision reversible at all
(``irreversible``, the rule :mod:`.rules.irreversible` applies to every revision's file), and does
its downgrade() destroy data (``destructive-downgrade``)?

``destructive-downgrade`` reads the statements downgrade() renders offline, through the Alembic
operation behind each (so on every dialect, SQLite included, without the parsers of the ``lint``
extra): a dropped table or column loses every value written to it, and when upgrade() created it
(or copied rows into it) those are the rows the application wrote since the deploy, or the data the
upgrade moved there; a ``DELETE`` or ``TRUNCATE`` in ``op.execute()`` removes rows. The finding
does not refuse the rollback (dropping what the upgrade added is what undoing it means); it is
shown in the plan that is confirmed before anything runs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from .finding import Finding, Severity
from .revision import LintInput
from .rules.irreversible import RULE as IRREVERSIBLE

if TYPE_CHECKING:
    from ..alembic_offline import RenderedStatement, RevisionFile

DESTRUCTIVE: Final = "destructive-downgrade"
DESTRUCTIVE_HELP: Final = (
    "Take a backup (or copy the data elsewhere) before rolling back, or write a downgrade() that moves "
    "the data back before it drops it; rows written since the deploy are otherwise lost."
)
#: Raw SQL that removes rows or a table: DELETE FROM t, TRUNCATE [TABLE] t, DROP TABLE t.
_REMOVES: Final = re.compile(
    r"^\s*(?P<verb>DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|DROP\s+TABLE(?:\s+IF\s+EXISTS)?)\s+(?P<table>[\w.`\"\[\]]+)",
    re.IGNORECASE,
)
_COPIES_INTO: Final = re.compile(
    r"^\s*INSERT\s+INTO\s+(?P<table>[\w.`\"\[\]]+)[^;]*\bSELECT\b", re.IGNORECASE | re.DOTALL)


def _name(raw: str) -> str:
    return raw.strip('`"[]').split(".")[-1].strip('`"[]').lower()


def irreversible(found: RevisionFile) -> list[Finding]:
    """The ``irreversible`` rule on the revision's file (empty ``downgrade()``, ``pass``, ``...``,
    ``NotImplementedError``; none for a revision whose upgrade() is empty too)."""
    given = LintInput(str(found.revision), str(found.path), found.source, "any", [], dict(found.options))
    allowed = given.allowed.get(IRREVERSIBLE.id)
    return [
        Finding(IRREVERSIBLE.id, IRREVERSIBLE.severity, str(found.revision), str(found.path), hit.line, hit.message,
                IRREVERSIBLE.safe, None, allowed)
        for hit in IRREVERSIBLE.check(given)
    ]


def destructive(found: RevisionFile, upgrade: list[RenderedStatement] | None,
                downgrade: list[RenderedStatement]) -> list[Finding]:
    """``destructive-downgrade`` findings of ``downgrade``'s statements; ``upgrade``'s (None: they
    could not be rendered) tell what the upgrade created or filled."""
    created: set[tuple[str, str | None]] = set()
    filled: set[str] = set()
    for st in upgrade or ():
        if st.operation in ("CreateTableOp", "AddColumnOp") and st.facts.get("table"):
            created.add((_name(str(st.facts["table"])), st.facts.get("column")))
        copied = _COPIES_INTO.match(st.sql)
        if copied:
            filled.add(_name(copied.group("table")))
    allowed = LintInput(str(found.revision), str(found.path), found.source, "any", []).allowed.get(DESTRUCTIVE)
    findings = []
    for st in downgrade:
        message = _destroys(st, created, filled)
        if message is not None:
            findings.append(Finding(DESTRUCTIVE, Severity.WARNING, str(found.revision), str(found.path), st.line,
                                    message, DESTRUCTIVE_HELP, st.sql, allowed))
    return findings


def _destroys(st: RenderedStatement, created: set[tuple[str, str | None]], filled: set[str]) -> str | None:
    table = _name(str(st.facts.get("table", "")))
    if st.operation == "DropTableOp":
        what = f"downgrade() drops table {table} with its rows"
        if (table, None) in created:
            what += ": upgrade() created it, so every row written to it since the deploy is lost"
        if table in filled:
            what += " (upgrade() copied data into it)"
        return what
    if st.operation == "DropColumnOp":
        column = str(st.facts.get("column"))
        what = f"downgrade() drops column {column} of {table} with its values"
        if (table, column) in created:
            what += ": upgrade() added it, so every value written to it since the deploy is lost"
        return what
    removes = _REMOVES.match(st.sql)
    if removes is not None:
        verb = " ".join(removes.group("verb").upper().split())
        return f"downgrade() runs {verb} {_name(removes.group('table'))}: the rows it removes are lost"
    return None
