"""``--metrics pushgateway=URL`` and ``--metrics textfile=PATH.prom``: a run's metrics for
Prometheus, through ``prometheus-client`` (the ``prometheus`` extra, imported only when used).

Every figure is a gauge holding the last run's value, labelled ``backend``, ``outcome`` and
``command``; :data:`~alembic_deploy.metrics.REVISION_DURATION` has one sample per revision the run
applied (label ``revision``). The Pushgateway groups them under the key ``job`` (``alembic-deploy``),
``environment`` and ``database``, and each push replaces that group: a deploy of another database
or environment never overwrites this one. The textfile carries ``environment`` and ``database`` as
labels, and is written to a temporary file beside it, then renamed over it, so node_exporter never
reads half a file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ..errors import ConfigError
from ..masking import mask_url
from ..masking import register as register_secret
from ..metrics import METRICS, REVISION_DURATION

if TYPE_CHECKING:
    from ..metrics import RunMetrics

JOB: Final = "alembic-deploy"
#: Seconds a push may take before it is given up (a warning): the deploy is done by then.
PUSH_TIMEOUT_SECONDS: Final = 10.0
#: The labels the Pushgateway's grouping key carries (beside ``job``).
GROUPING: Final = ("environment", "database")
LAST_RUN: Final = ("alembic_deploy_last_run_timestamp_seconds", "When the run ended (Unix time).")


def _client() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise ConfigError(
            "--metrics pushgateway and textfile need prometheus-client: install alembic-deploy[prometheus]."
        ) from None
    return prometheus_client


def registry(metrics: RunMetrics, labels: tuple[str, ...]) -> Any:
    """A registry holding the run's gauges, each labelled with ``labels`` (names from
    ``metrics.labels``, plus ``command``)."""
    client = _client()
    reg = client.CollectorRegistry()
    names = [*labels, "command"]
    values = [*(metrics.labels[label] for label in labels), metrics.command]
    for metric in METRICS:
        gauge = client.Gauge(metric.prometheus, metric.help, names, registry=reg)
        gauge.labels(*values).set(metrics.values[metric.name])
    last = client.Gauge(*LAST_RUN, names, registry=reg)
    last.labels(*values).set(metrics.timestamp)
    if metrics.revisions:
        per_revision = client.Gauge(REVISION_DURATION.prometheus, REVISION_DURATION.help, [*names, "revision"],
                                    registry=reg)
        for revision, seconds in metrics.revisions:
            per_revision.labels(*values, revision).set(seconds)
    return reg


class PushgatewaySink:
    """Pushes (HTTP PUT: the group's metrics replaced) to the Pushgateway at ``url``; a user and
    password in the URL (``https://user:pass@host``) log in with HTTP basic auth (a Pushgateway
    behind ``--web.config.file``), and are never shown."""

    def __init__(self, url: str) -> None:
        from urllib.parse import unquote, urlsplit, urlunsplit

        parts = urlsplit(url)
        userinfo, at, host = parts.netloc.rpartition("@")
        self.url = urlunsplit(parts._replace(netloc=host)) if at else url
        user, _, password = userinfo.partition(":")
        self._login = (unquote(user), unquote(password)) if at else None
        if self._login and self._login[1]:
            register_secret(self._login[1])
        # The query may carry a token: the description names the host and path only.
        self.description = f"the Pushgateway at {mask_url(urlunsplit(parts._replace(query='', fragment='')))}"

    def send(self, metrics: RunMetrics) -> None:
        client = _client()
        handler = client.exposition.default_handler
        if self._login is not None:
            user, password = self._login

            def handler(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]],
                        data: bytes) -> Any:
                return client.exposition.basic_auth_handler(url, method, timeout, headers, data, user, password)

        client.push_to_gateway(
            self.url, job=JOB, registry=registry(metrics, ("backend", "outcome")),
            grouping_key={label: metrics.labels[label] for label in GROUPING}, timeout=PUSH_TIMEOUT_SECONDS,
            handler=handler,
        )


class TextfileSink:
    """Writes node_exporter's textfile format to ``path`` (a temporary file renamed over it)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.description = f"the textfile {path}"

    def send(self, metrics: RunMetrics) -> None:
        _client().write_to_textfile(self.path, registry(metrics, ("environment", "database", "backend", "outcome")))
