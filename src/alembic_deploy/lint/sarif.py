"""Findings as SARIF 2.1.0, so GitHub code scanning shows them as annotations on the revision
files' lines (``plan --format sarif``, uploaded with ``github/codeql-action/upload-sarif``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .rules import RULES

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .finding import Finding

SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
#: Our severity -> SARIF's level.
LEVELS: Final = {"error": "error", "warning": "warning", "notice": "note"}


def sarif(findings: Iterable[Finding], version: str, root: Path | None = None) -> dict[str, Any]:
    """A SARIF log of ``findings``; file paths relative to ``root`` (default: the working
    directory, which in a CI job is the repository's root) when they are under it. A finding an
    allow comment excuses is kept, suppressed, with its reason as the justification."""
    base = (root or Path.cwd()).resolve()
    index = {rule.id: n for n, rule in enumerate(RULES)}
    results = []
    for f in findings:
        location: dict[str, Any] = {"artifactLocation": {"uri": _uri(f.file, base)}}
        if f.line:
            location["region"] = {"startLine": f.line}
        result: dict[str, Any] = {
            "ruleId": f.rule, "ruleIndex": index[f.rule], "level": LEVELS[f.severity.value],
            "message": {"text": f"{f.message}. {f.help}"}, "locations": [{"physicalLocation": location}],
            "properties": {"revision": f.revision},
        }
        if f.allowed is not None:
            result["suppressions"] = [{"kind": "inSource", "justification": f.allowed}]
        results.append(result)
    rules = [{
        "id": rule.id, "name": rule.id, "shortDescription": {"text": rule.why},
        "help": {"text": rule.safe}, "defaultConfiguration": {"level": LEVELS[rule.severity.value]},
        "properties": {"dialects": sorted(rule.dialects)},
    } for rule in RULES]
    return {
        "$schema": SARIF_SCHEMA, "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "alembic-deploy", "version": version, "rules": rules}},
            "results": results,
        }],
    }


def _uri(file: str, base: Path) -> str:
    path = Path(file).resolve()
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_uri() if os.path.isabs(file) else Path(file).as_posix()
