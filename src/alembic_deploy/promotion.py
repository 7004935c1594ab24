"""The promotion order: before a revision reaches an environment, has every lower one applied it?

``promotion-order`` (default dev, qa, beta, production) ranks the environments. ``plan --env NAME``
reads the journal of each lower environment whose policy names its database (``database-url``, or
``database-url-env``: the variable holding it) and lists the plan's pending revisions that
environment never applied successfully. A revision counts as applied there when a journal row
records it as ``applied``, or when a run that ended ``applied`` or ``noop`` left the database at
it or above it (a run too long for its ``revisions`` column keeps only where it ended).

By default what it finds is a warning; ``require-promotion = true`` in the policy of ``--env``
makes it block (exit 5), and then a lower environment that cannot be read blocks too, since the
promotion cannot be shown. A lower environment without a database in its policy is listed and
skipped. The database URL is never shown; a driver's error is scrubbed of its credentials.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .errors import ConfigError
from .masking import scrub

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .alembic_offline import RevisionFile
    from .policy import Policy

#: What a lower environment's check came to.
CHECKED: Final = "checked"
UNREACHABLE: Final = "unreachable"
NO_DATABASE: Final = "no-database"
#: Outcomes of a run that left the database at its ``to_revisions``.
_SETTLED: Final = ("applied", "noop")
#: Characters of a driver's error kept in the report.
_PROBLEM_CHARS: Final = 300


@dataclass(frozen=True)
class LowerEnvironment:
    """One environment below the plan's, and the pending revisions it never applied."""

    name: str
    state: str
    #: The plan's pending revisions this environment never applied (when ``checked``), in plan order.
    missing: tuple[str, ...] = ()
    #: Why it was not checked (``unreachable``, ``no-database``): never a credential.
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.name, "state": self.state, "missing": list(self.missing),
                "problem": self.problem}


@dataclass(frozen=True)
class Promotion:
    """The promotion check of one plan: ``environment``'s lower environments, lowest first."""

    environment: str
    order: tuple[str, ...]
    required: bool
    lower: tuple[LowerEnvironment, ...] = field(default_factory=tuple)

    @property
    def problems(self) -> list[str]:
        """One sentence per lower environment that did not apply a pending revision or could not be read."""
        found = []
        for env in self.lower:
            if env.state == CHECKED and env.missing:
                found.append(f"{env.name} never applied {', '.join(env.missing)}")
            elif env.state == UNREACHABLE:
                found.append(f"{env.name}'s journal could not be read ({env.problem})")
        return found

    @property
    def blocking(self) -> bool:
        return self.required and bool(self.problems)

    def message(self) -> str:
        """Why the plan is refused (when :attr:`blocking`): what to do next included."""
        return (
            f"The {self.environment} policy requires promotion through {', '.join(e.name for e in self.lower)}, "
            f"and {'; '.join(self.problems)}. Deploy those revisions to the lower environment(s) first, or make "
            f"the journal readable; an environment whose journal cannot be read cannot show the promotion."
        )

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "order": list(self.order), "required": self.required,
                "blocking": self.blocking, "lower": [e.to_dict() for e in self.lower]}

    def text_lines(self) -> list[str]:
        kind = "required" if self.required else "warns"
        lines = [f"promotion ({kind}): {' -> '.join(self.order)}"]
        if not self.lower:
            lines.append(f"  {self.environment} is the lowest environment: nothing to check.")
        for env in self.lower:
            lines.append(f"  {env.name}: {_state_text(env)}")
        level = "error" if self.required else "warning"
        lines.extend(f"{level}: {problem}" for problem in self.problems)
        return lines

    def markdown_lines(self) -> list[str]:
        kind = "required" if self.required else "warns only"
        lines = [f"### Promotion to {self.environment} ({kind})", "",
                 "| environment | state | never applied |", "|---|---|---|"]
        for env in self.lower:
            missing = ", ".join(f"`{r}`" for r in env.missing) or "-"
            state = env.state if env.problem is None else f"{env.state}: {env.problem.replace('|', '/')}"
            lines.append(f"| {env.name} | {state} | {missing} |")
        if not self.lower:
            lines.append(f"| - | {self.environment} is the lowest environment | - |")
        return lines


def _state_text(env: LowerEnvironment) -> str:
    if env.state == CHECKED:
        return f"never applied {', '.join(env.missing)}" if env.missing else "applied every pending revision"
    return f"{env.state} ({env.problem})"


def check_promotion(environment: str | None, order: Sequence[str], policies: Sequence[Policy],
                    files: Sequence[RevisionFile], pending: Sequence[str], journal: str) -> Promotion | None:
    """The promotion check of a plan for ``environment`` whose ``pending`` revisions (in plan
    order) are to run; None when there is no ``environment`` or ``order`` does not rank it.
    ``journal`` is the journal table's name, the same in every environment. A policy that
    requires promotion for an environment the order does not rank is a :class:`ConfigError`."""
    by_name = {p.name: p for p in policies}
    own = by_name.get(environment) if environment is not None else None
    if environment is None or environment not in order:
        if own is not None and own.require_promotion:
            raise ConfigError(
                f"The {environment} policy says require-promotion, but promotion-order ({', '.join(order)}) does "
                f"not name {environment}, so nothing is below it. Add {environment} to promotion-order."
            )
        return None
    lower = [_lower(name, by_name.get(name), files, pending, journal)
             for name in order[: list(order).index(environment)]]
    return Promotion(environment, tuple(order), bool(own and own.require_promotion), tuple(lower))


def _lower(name: str, policy: Policy | None, files: Sequence[RevisionFile], pending: Sequence[str],
           journal: str) -> LowerEnvironment:
    if policy is None or (policy.database_url is None and policy.database_url_env is None):
        return LowerEnvironment(name, NO_DATABASE, problem="its policy names no database-url or database-url-env")
    url = policy.database_url
    if policy.database_url_env is not None:
        url = os.environ.get(policy.database_url_env) or None
        if url is None:
            return LowerEnvironment(name, UNREACHABLE, problem=f"${policy.database_url_env} is not set")
    assert url is not None
    from sqlalchemy.exc import DBAPIError

    from .database import make_engine

    try:
        engine, backend = make_engine(url)
    except ConfigError as exc:
        raise ConfigError(f"The database of {name} in its policy is not usable: {exc.message}") from None
    try:
        missing = backend.missing_database(engine)
        if missing is not None:
            return LowerEnvironment(name, UNREACHABLE, problem=missing)
        rows = _journal_rows(engine, journal)
    except (DBAPIError, OSError) as exc:
        text = " ".join(scrub(backend.error_text(exc)).split())
        return LowerEnvironment(name, UNREACHABLE, problem=text[:_PROBLEM_CHARS])
    finally:
        engine.dispose()
    done = applied(rows, files)
    return LowerEnvironment(name, CHECKED, tuple(r for r in pending if r not in done))


def _journal_rows(engine: Any, journal: str) -> list[dict[str, Any]]:
    from sqlalchemy import inspect, select

    from .journal import journal_table

    table = journal_table(journal)
    with engine.connect() as conn:
        if not inspect(conn).has_table(journal):
            return []
        query = select(table.c.outcome, table.c.revisions, table.c.to_revisions)
        return [dict(r._mapping) for r in conn.execute(query)]


def applied(rows: Sequence[dict[str, Any]], files: Sequence[RevisionFile]) -> set[str]:
    """The revisions journal ``rows`` show applied: each one a row lists as ``applied``, and each
    one at or below where a settled run left the database."""
    from .graph_problems import pending_from

    done: set[str] = set()
    heads: set[str] = set()
    for row in rows:
        try:
            entries = json.loads(row["revisions"] or "[]")
        except ValueError:
            entries = []
        if isinstance(entries, list):
            done.update(str(e["revision"]) for e in entries
                        if isinstance(e, dict) and e.get("status") == "applied" and "revision" in e)
        if row["outcome"] in _SETTLED:
            heads.update(filter(None, (row["to_revisions"] or "").split(",")))
    known = {str(f.revision) for f in files if f.error is None and f.revision is not None}
    for head in heads & known:
        done |= known - pending_from(files, head)
    return done
