"""``alembic-deploy check``: what a pull request's migrations would do wrong, with no database and
without running env.py.

It reads every revision file on its own (:func:`~alembic_deploy.alembic_env.revision_files`),
reports what is wrong with the graph (:mod:`alembic_deploy.graph_problems`), and lints the SQL
each revision renders offline for the dialect (:mod:`alembic_deploy.lint`). The check fails
(:class:`~alembic_deploy.errors.CheckRefused`, exit 5) on any graph problem and on any finding at or
above ``fail_on`` that no allow comment excuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import EXIT_OK, CheckRefused, ConfigError
from .graph_problems import GraphProblem, graph_problems, heads_of, order, pending_from

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .alembic_offline import RevisionFile
    from .lint import Finding, RevisionLint
    from .settings import Settings


@dataclass
class CheckReport:
    config: str
    dialect: str
    fail_on: str
    heads: list[str]
    problems: list[GraphProblem] = field(default_factory=list)
    revisions: list[RevisionLint] = field(default_factory=list)
    #: The environment policy applied (its name), None when there is none.
    policy: str | None = None

    @property
    def blocking(self) -> list[Finding]:
        """The findings that fail the check: at or above ``fail_on``, not allowed."""
        from .lint import blocking

        return blocking((f for r in self.revisions for f in r.findings), self.fail_on)

    @property
    def exit_code(self) -> int:
        return CheckRefused.exit_code if self.problems or self.blocking else EXIT_OK

    def error(self) -> CheckRefused | None:
        if self.exit_code == EXIT_OK:
            return None
        parts = []
        if self.problems:
            parts.append(f"{len(self.problems)} problem(s) in the revision graph")
        if self.blocking:
            parts.append(f"{len(self.blocking)} lint finding(s) at or above {self.fail_on}")
        return CheckRefused(
            f"The check failed: {' and '.join(parts)}. Fix them, or allow a finding in its revision file "
            "with `# alembic-deploy: allow RULE -- reason`."
        )

    def to_dict(self) -> dict[str, Any]:
        from .report import document

        error = self.error()
        return document(
            "check", self.exit_code, error.to_dict() if error is not None else None,
            config=self.config, dialect=self.dialect, fail_on=self.fail_on, policy=self.policy, heads=self.heads,
            problems=[p.to_dict() for p in self.problems], revisions=[r.to_dict() for r in self.revisions],
            blocking=len(self.blocking),
        )

    def render_text(self) -> str:
        lines = [(f"check: {len(self.revisions)} revision(s) linted for {self.dialect}; heads: "
                  f"{', '.join(self.heads) or '<none>'}" + (f"; policy: {self.policy}" if self.policy else ""))]
        for problem in self.problems:
            lines.append(f"{problem.kind}: {problem.message}")
            if problem.fix:
                lines.append(f"  fix: {problem.fix}")
        floor = self.fail_on
        for revision in self.revisions:
            if not revision.findings:
                continue
            lines.append(f"{revision.revision} ({revision.compatibility}) {revision.file}")
            for f in revision.findings:
                where = f"{f.file}:{f.line}" if f.line else f.file
                state = f"allowed: {f.allowed}" if f.allowed is not None else f.severity.value
                lines.append(f"  {where}: {f.rule} [{state}] {f.message}")
                lines.append(f"    help: {f.help}")
        lines.append(f"{len(self.blocking)} finding(s) at or above {floor} block; "
                     f"{len(self.problems)} graph problem(s).")
        return "\n".join(lines)


def dialect_for(settings: Settings) -> str:
    """``--dialect``, else the scheme of DATABASE_URL, else of the ini's sqlalchemy.url."""
    from .lint import dialect_of
    from .project import read_ini

    if settings.dialect:
        return dialect_of(settings.dialect)
    url = settings.database_url or read_ini(settings.config_path, settings.name).ini_url
    if not url or "://" not in url:
        raise ConfigError(
            "check needs the SQL dialect to render the revisions for: give --dialect postgresql, mysql or "
            "mariadb (or a DATABASE_URL, or a sqlalchemy.url in the ini, whose scheme says it)."
        )
    try:
        return dialect_of(url)
    except ConfigError:
        scheme = url.split("://", 1)[0]
        raise ConfigError(
            f"The URL's scheme {scheme!r} names no dialect the lint reads; give --dialect postgresql, "
            "mysql or mariadb."
        ) from None


def require_known(files: Sequence[RevisionFile], start: str | None) -> None:
    """Refuse a ``--from`` that names no revision (``base`` names the empty database)."""
    if start and start != "base" and not any(f.revision == start for f in files):
        raise ConfigError(
            f"--from {start}: no revision file defines that revision. Give the revision the database is "
            "at (alembic current prints it), or base."
        )


def check(settings: Settings) -> CheckReport:
    """Check the project ``settings`` names: its graph, then the lint of its revisions (all of
    them, or those above ``settings.from_revision``), base first."""
    from .alembic_env import env_py_location, revision_files
    from .lint.env_options import read_env_options
    from .lint.offline import lint_revision_file
    from .policy import apply, choose, fail_on

    dialect = dialect_for(settings)
    files = revision_files(settings.config_path, settings.name)
    env = read_env_options(env_py_location(settings.config_path, settings.name))
    policy = choose(settings.policies, settings.env)
    report = CheckReport(settings.config, dialect, fail_on(settings.fail_on, policy), heads_of(files),
                         graph_problems(files, settings.config), policy=policy.name if policy else None)
    start = settings.from_revision
    wanted = pending_from(files, start) if start and start != "base" else None
    require_known(files, start)
    for found in order(files):
        if wanted is None or found.revision in wanted:
            report.revisions.append(lint_revision_file(found, dialect, env))
    apply(policy, report.revisions)
    return report
