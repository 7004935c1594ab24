"""A run's metrics, and the sinks they go to when the run ends (``--metrics``).

Every run of a command that takes the migration lock (upgrade, ``run --migrate``, rollback, repair,
restore) ends in :func:`publish`, however it ended: applied, noop, failed, interrupted or refused. The figures come
from the run's :class:`~alembic_deploy.report.DeployReport` (:meth:`RunMetrics.from_report`), so
they agree with the ``--json`` document and the journal row. Each ``--metrics`` value names one
sink:

* ``emf``: a CloudWatch Embedded Metric Format document (:mod:`alembic_deploy.integrations.emf`);
* ``pushgateway=URL``: a push to a Prometheus Pushgateway, and ``textfile=PATH.prom``: a file for
  node_exporter's textfile collector (:mod:`alembic_deploy.integrations.prometheus`, the
  ``prometheus`` extra).

A sink that fails (a Pushgateway down, a missing extra, a file that cannot be written) is a
warning on the log; the run's exit code and journal row stay what the run made them.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

from .errors import ConfigError
from .masking import database_label, mask_url, scrub
from .observer import event

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .report import DeployReport
    from .settings import Settings


@dataclass(frozen=True)
class Metric:
    """One figure of a run: its CloudWatch name and unit, and its Prometheus name."""

    name: str
    unit: str  # a CloudWatch unit: Seconds or Count
    prometheus: str
    help: str


#: The figures of every run, in the order the sinks write them (README: *Logs and metrics*).
METRICS: Final = (
    Metric("DeployDuration", "Seconds", "alembic_deploy_duration_seconds", "Seconds the run took, end to end."),
    Metric("DatabaseWait", "Seconds", "alembic_deploy_database_wait_seconds",
           "Seconds spent waiting for the database to answer."),
    Metric("HealthWait", "Seconds", "alembic_deploy_health_wait_seconds",
           "Seconds spent in the health gate (--wait-ecs-service, --wait-healthy)."),
    Metric("LockWait", "Seconds", "alembic_deploy_lock_wait_seconds", "Seconds spent waiting for the migration lock."),
    Metric("Retries", "Count", "alembic_deploy_retries",
           "Revisions run again after a lock timeout or a lost connection."),
    Metric("Statements", "Count", "alembic_deploy_statements",
           "Statements the applied revisions sent (version-table updates included)."),
    Metric("RevisionsApplied", "Count", "alembic_deploy_revisions_applied",
           "Revisions the run applied (a rollback: undid)."),
    Metric("Succeeded", "Count", "alembic_deploy_succeeded",
           "1 when the run's outcome is applied, noop or rolled-back, else 0 (its average is the success rate)."),
)
#: Per revision applied: its duration (an EMF value array; a Prometheus gauge per ``revision``).
REVISION_DURATION: Final = Metric("RevisionDuration", "Seconds", "alembic_deploy_revision_duration_seconds",
                                  "Seconds each revision applied by the run took.")
#: The labels (Prometheus) and dimensions (CloudWatch) of every figure.
LABELS: Final = ("environment", "database", "backend", "outcome")
SUCCEEDED: Final = frozenset({"applied", "noop", "rolled-back"})
#: A label without a value (no --env; a run that ended before it knew its backend): CloudWatch
#: refuses empty dimension values.
NONE: Final = "none"
SINKS: Final = ("emf", "pushgateway", "textfile")


@dataclass
class RunMetrics:
    """The figures of one run, with its labels; ``revisions`` holds (revision, seconds) per revision applied."""

    command: str
    timestamp: float
    labels: dict[str, str]
    values: dict[str, float]
    revisions: list[tuple[str, float]] = field(default_factory=list)
    journal_id: int | None = None

    @classmethod
    def from_report(cls, report: DeployReport) -> RunMetrics:
        """The run's figures; its database as host and name (:func:`~alembic_deploy.masking.database_label`)."""
        database = database_label(report.database)
        outcome = "failed" if report.outcome == "running" else report.outcome
        # A rollback's revisions are the ones it undid; an upgrade's "rolled-back" ones went down
        # with a failed revision's transaction, and were not applied.
        applied = report.applied if report.command == "rollback" else [r for r in report.applied
                                                                        if r.status == "applied"]
        values = {
            "DeployDuration": round(report.duration_seconds, 4),
            "DatabaseWait": report.db_wait_seconds,
            "HealthWait": report.health_wait_seconds,
            "LockWait": report.lock_wait_seconds,
            "Retries": len(report.retries),
            "Statements": sum(r.statements or 0 for r in applied),
            "RevisionsApplied": len(applied),
            "Succeeded": 1 if outcome in SUCCEEDED else 0,
        }
        labels = {"environment": report.environment or NONE, "database": database or NONE,
                  "backend": report.backend or NONE, "outcome": outcome}
        return cls(report.command, report.finished_at or time.time(), labels, values,
                   [(r.revision, round(r.duration, 4)) for r in applied], report.journal_id)


class MetricsSink(Protocol):
    """Where a run's metrics go. ``send`` raises on failure (the caller turns it into a warning)."""

    #: How warnings name the sink (no credentials).
    description: str

    def send(self, metrics: RunMetrics) -> None: ...


@dataclass(frozen=True)
class SinkSpec:
    """One ``--metrics`` value: ``kind`` (emf, pushgateway, textfile) and its ``target`` (URL, path)."""

    kind: str
    target: str = ""


def parse_sinks(values: Sequence[str], source: str = "--metrics") -> list[SinkSpec]:
    """The sinks ``values`` name, or a :class:`ConfigError` saying what ``source`` accepts."""
    specs = []
    for value in values:
        kind, _, target = value.partition("=")
        kind, target = kind.strip(), target.strip()
        if kind not in SINKS:
            raise ConfigError(
                f"{source} has an unknown metrics sink {value!r}. Give emf, pushgateway=URL (e.g. "
                "pushgateway=http://pushgateway:9091) or textfile=PATH.prom (node_exporter's textfile directory)."
            )
        if kind == "emf" and target:
            raise ConfigError(f"{source}: emf takes no value (got {scrub(value)!r}); the namespace is "
                              "--metrics-namespace.")
        if kind == "pushgateway" and not target.startswith(("http://", "https://")):
            raise ConfigError(f"{source}: pushgateway needs an http(s) URL, as in "
                              f"pushgateway=http://pushgateway:9091; got {mask_url(value)!r}.")
        if kind == "textfile" and not target.endswith(".prom"):
            raise ConfigError(f"{source}: textfile needs a path ending in .prom (node_exporter's textfile "
                              f"collector reads only those), as in textfile=/var/lib/node_exporter/deploy.prom; "
                              f"got {value!r}.")
        specs.append(SinkSpec(kind, target))
    return specs


def open_sink(spec: SinkSpec, settings: Settings) -> MetricsSink:
    """The sink of ``spec`` (its integration imported only now)."""
    if spec.kind == "emf":
        from .integrations.emf import EmfSink

        return EmfSink(settings.metrics_namespace, to_stderr=settings.json)
    from .integrations import prometheus

    if spec.kind == "pushgateway":
        return prometheus.PushgatewaySink(spec.target)
    return prometheus.TextfileSink(spec.target)


def publish(settings: Settings, report: DeployReport, echo: Callable[[str], None]) -> None:
    """Send the run's metrics to every sink of ``settings.metrics``; a sink that fails is a warning
    (``metrics_failed`` in the JSON log), never an error."""
    metrics = RunMetrics.from_report(report)
    for spec in parse_sinks(settings.metrics):
        description = spec.kind
        try:
            sink = open_sink(spec, settings)
            description = sink.description
            sink.send(metrics)
        except Exception as exc:  # noqa: BLE001 - a metrics failure never fails the deploy it measures
            reason = scrub(str(exc) or type(exc).__name__)
            with contextlib.suppress(Exception):
                echo(event("metrics_failed", f"warning: could not send the run's metrics to {description}: "
                           f"{reason}. The deploy's outcome and exit code are unchanged.", "warning",
                           sink=spec.kind, error=reason))
