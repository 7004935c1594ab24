"""``alembic-deploy plan``: the revisions a database has still to apply, each with the SQL it will
run for the dialect, whether that runs in a transaction, its compatibility class, its author and
the lint's findings, before anything runs.

Offline, ``--from REV`` says where the database is (``base``: empty) and ``--dialect`` what it is;
without ``--from``, the database says both (its revision(s) read through env.py, as ``status`` does).
The SQL is Alembic's offline rendering of each revision (what ``alembic upgrade --sql``
prints), a revision that cannot render offline is listed as such, never left out. Output as text,
markdown (for a pull-request comment; appended to ``$GITHUB_STEP_SUMMARY`` when set), JSON, or SARIF
(GitHub code scanning annotations on the revision files' lines).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import EXIT_OK, CheckRefused, ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from .alembic_offline import RevisionFile
    from .drift import DriftReport
    from .lint import Finding, RevisionLint
    from .lint.env_options import EnvOptions
    from .promotion import Promotion
    from .settings import Settings

#: The marker a revision of each class may declare (the schema guard reads it).
MARKERS = {"expand": '{"expand_only": True}', "contract": '{"contract": True}'}


@dataclass
class PlannedRevision:
    revision: str
    message: str
    file: str
    author: str | None
    down_revisions: tuple[str, ...]
    #: yes / no / partly (an autocommit_block) / unknown (it did not render).
    transactional: str
    sql: list[str]
    render_error: str | None
    lint: RevisionLint
    #: The revision's own ``alembic_deploy`` marker ("expand_only" / "contract"), if any.
    marker: str | None

    @property
    def suggested_marker(self) -> str | None:
        """The marker its class calls for, when it declares none."""
        return None if self.marker else MARKERS.get(self.lint.compatibility)

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision, "message": self.message, "file": self.file, "author": self.author,
            "down_revisions": list(self.down_revisions), "transactional": self.transactional, "sql": self.sql,
            "render_error": self.render_error, "compatibility": self.lint.compatibility, "marker": self.marker,
            "suggested_marker": self.suggested_marker, "findings": [f.to_dict() for f in self.lint.findings],
        }


@dataclass
class PlanReport:
    dialect: str
    from_revision: str
    fail_on: str
    #: The environment policy applied (its name), None when there is none.
    policy: str | None = None
    revisions: list[PlannedRevision] = field(default_factory=list)
    #: Did the lower environments apply the pending revisions? None without ``--env`` in the order.
    promotion: Promotion | None = None
    #: The database against its migrations (``--check-drift``); None when not asked.
    drift: DriftReport | None = None
    #: What env.py's ``context.configure`` says about transactions (read from its source).
    env_py: EnvOptions | None = None

    def transactions_line(self) -> str:
        """How the revisions' transactions group, as env.py configures them."""
        options = self.env_py.to_dict() if self.env_py is not None else {}
        ddl = {True: "on", False: "off", None: "the dialect's"}[options.get("transactional_ddl")]
        per = {True: "one per revision", False: "one for the whole upgrade (Alembic's default)",
               None: "unknown (env.py sets transaction_per_migration from a variable)"}[
            options.get("transaction_per_migration")]
        return f"env.py: transactional DDL {ddl}; transactions: {per}"

    @property
    def blocking(self) -> list[Finding]:
        from .lint import blocking

        return blocking((f for r in self.revisions for f in r.lint.findings), self.fail_on)

    @property
    def exit_code(self) -> int:
        return CheckRefused.exit_code if self.error() is not None else EXIT_OK

    def error(self) -> CheckRefused | None:
        reasons = []
        if self.blocking:
            reasons.append(
                f"The plan has {len(self.blocking)} lint finding(s) at or above {self.fail_on}. Fix them, or allow "
                "a finding in its revision file with `# alembic-deploy: allow RULE -- reason`."
            )
        if self.promotion is not None and self.promotion.blocking:
            reasons.append(self.promotion.message())
        drifted = self.drift.error() if self.drift is not None else None
        if drifted is not None:
            reasons.append(drifted.message)
        return CheckRefused(" ".join(reasons)) if reasons else None

    def to_dict(self) -> dict[str, Any]:
        from .report import document

        error = self.error()
        return document(
            "plan", self.exit_code, error.to_dict() if error is not None else None, dialect=self.dialect,
            from_revision=self.from_revision, fail_on=self.fail_on, policy=self.policy, blocking=len(self.blocking),
            revisions=[r.to_dict() for r in self.revisions],
            promotion=self.promotion.to_dict() if self.promotion is not None else None,
            drift=self.drift.details() if self.drift is not None else None,
            env_py=self.env_py.to_dict() if self.env_py is not None else None,
        )

    def render_text(self) -> str:
        lines = [f"plan: {len(self.revisions)} revision(s) to apply from {self.from_revision} ({self.dialect})",
                 self.transactions_line()]
        for r in self.revisions:
            lines.append("")
            lines.append(f"{r.revision}  {r.message}")
            lines.append(f"  file: {r.file}" + (f"  author: {r.author}" if r.author else ""))
            lines.append(f"  class: {r.lint.compatibility}  transaction: {r.transactional}"
                         + (f"  marker: {r.marker}" if r.marker else "")
                         + (f"  suggested marker: alembic_deploy = {r.suggested_marker}" if r.suggested_marker else ""))
            if r.render_error:
                lines.append(f"  cannot render offline: {r.render_error}")
            lines.extend(f"    {line}" for sql in r.sql for line in sql.splitlines())
            for f in r.lint.findings:
                state = f"allowed: {f.allowed}" if f.allowed is not None else f.severity.value
                lines.append(f"  {f.rule} [{state}] line {f.line or '-'}: {f.message}")
                lines.append(f"    help: {f.help}")
        lines.append("")
        if self.promotion is not None:
            lines += ["", *self.promotion.text_lines()]
        if self.drift is not None:
            lines += ["", self.drift.render_text()]
        lines.append("")
        lines.append(f"{len(self.blocking)} finding(s) at or above {self.fail_on} block.")
        return "\n".join(lines)

    def to_sarif(self) -> dict[str, Any]:
        from importlib.metadata import version

        from .lint.sarif import sarif

        return sarif((f for r in self.revisions for f in r.lint.findings), version("alembic-deploy"))

    def render_markdown(self) -> str:
        out = [
            (f"## alembic-deploy plan: {len(self.revisions)} revision(s) from `{self.from_revision}` "
             f"({self.dialect})"),
            "",
            self.transactions_line(),
            "",
            "| revision | message | class | transaction | findings |",
            "|---|---|---|---|---|",
        ]
        for r in self.revisions:
            counted = ", ".join(f"{f.rule} ({'allowed' if f.allowed is not None else f.severity.value})"
                                for f in r.lint.findings) or "none"
            out.append(f"| `{r.revision}` | {_cell(r.message)} | {r.lint.compatibility} | {r.transactional} | "
                       f"{counted} |")
        for r in self.revisions:
            out += ["", f"### `{r.revision}` {_cell(r.message)}", ""]
            out.append(f"`{r.file}`" + (f" by {r.author}" if r.author else ""))
            if r.suggested_marker:
                out.append(f"\nSuggested marker: `alembic_deploy = {r.suggested_marker}`")
            if r.render_error:
                out.append(f"\n**Cannot render offline:** {_cell(r.render_error)}")
            if r.sql:
                out += ["", "```sql", *r.sql, "```"]
            for f in r.lint.findings:
                state = f"allowed: {f.allowed}" if f.allowed is not None else f"**{f.severity.value}**"
                out.append(f"- `{f.rule}` ({state}, line {f.line or '-'}): {f.message}. {f.help}")
        if self.promotion is not None:
            out += ["", *self.promotion.markdown_lines()]
        if self.drift is not None:
            out += ["", *self.drift.markdown_lines()]
        out += ["", f"{len(self.blocking)} finding(s) at or above `{self.fail_on}` block."]
        return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def plan(settings: Settings, echo: Callable[[str], None] | None = None) -> PlanReport:
    """The plan of the project ``settings`` names: from ``--from`` for ``--dialect`` offline, else
    from the revision(s) the database is at, read as ``status`` reads them (through env.py)."""
    from .alembic_env import revision_files
    from .check import dialect_for, require_known
    from .graph_problems import graph_problems, order, pending_from

    files = revision_files(settings.config_path, settings.name)
    broken = [p for p in graph_problems(files, settings.config) if p.kind != "multiple-heads"]
    if broken:
        raise ConfigError(
            f"The revision graph has {len(broken)} problem(s), e.g. {broken[0].kind}: {broken[0].message}. "
            "Run `alembic-deploy check` to see them all."
        )
    start = settings.from_revision
    if start and settings.check_drift:
        raise ConfigError(
            "--check-drift compares the database with its migrations, and --from plans without a database: "
            "leave out --from (plan then reads the database's revision) or --check-drift."
        )
    if start:
        dialect = dialect_for(settings)
        require_known(files, start)
        wanted = pending_from(files, start) if start != "base" else None
        pending = [f for f in order(files) if wanted is None or f.revision in wanted]
        return _report(files, pending, dialect, start, settings)
    from . import api

    status = api.status(settings, echo)
    if status.unknown:
        raise CheckRefused(
            f"The database is at {', '.join(status.unknown)}, which these migration scripts do not contain "
            "(it is ahead of this code): there is no plan to make. Deploy the code that has those revisions."
        )
    dialect = dialect_for(settings.replace(dialect=settings.dialect or status.backend))
    by_id = {f.revision: f for f in files}
    pending = [by_id[rev] for rev, _doc in status.pending if rev in by_id]
    report = _report(files, pending, dialect, ",".join(status.current) or "base", settings)
    if settings.check_drift:
        report.drift = api.drift(settings, echo)
    return report


def _report(files: list[RevisionFile], pending: list[RevisionFile], dialect: str, start: str,
            settings: Settings) -> PlanReport:
    from .alembic_env import env_py_location
    from .git_authors import authors
    from .lint.env_options import read_env_options
    from .lint.offline import lint_rendered, render
    from .policy import apply, choose, fail_on
    from .promotion import check_promotion

    by_author = authors(f.path for f in pending)
    # plan is for one environment: its --env's policy, or none (check takes the strictest).
    policy = choose(settings.policies, settings.env) if settings.env else None
    env = read_env_options(env_py_location(settings.config_path, settings.name))
    report = PlanReport(dialect, start, fail_on(settings.fail_on, policy), policy=policy.name if policy else None,
                        env_py=env)
    for found in pending:
        rendered = render(found, dialect, env)
        marker = next((m for m in ("expand_only", "contract") if found.options.get(m)), None)
        report.revisions.append(PlannedRevision(
            str(found.revision), found.doc, str(found.path), by_author.get(Path(found.path).resolve()),
            found.down_revisions, rendered.transactional, [st.sql for st in rendered.statements or ()],
            rendered.error, lint_rendered(found, dialect, rendered, env), marker,
        ))
    apply(policy, [r.lint for r in report.revisions])
    report.promotion = check_promotion(settings.env, settings.promotion_order, settings.policies, files,
                                       [r.revision for r in report.revisions], settings.journal_table)
    return report
