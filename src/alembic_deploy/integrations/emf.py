"""``--metrics emf``: a run's metrics as one CloudWatch Embedded Metric Format document, a line of
JSON on stdout, which CloudWatch Logs turns into metrics where the process's output is shipped
(the ECS ``awslogs`` driver, Lambda): no AWS SDK, no network call and no IAM permission here.

The document follows the specification
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
``_aws`` holds ``Timestamp`` (milliseconds since the epoch) and one metric directive
(``Namespace``, ``Dimensions``, ``Metrics`` with ``Name`` and ``Unit``); each metric and dimension
it names is a member of the root, as are properties CloudWatch keeps without charging
(``command``, ``journal_id``, ``revisions``). With ``--json`` the document goes to stderr, so stdout
stays the one JSON document ``--json`` promises (the awslogs driver ships both streams alike).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, Final

from ..metrics import LABELS, METRICS, REVISION_DURATION

if TYPE_CHECKING:
    from ..metrics import RunMetrics

#: The dimension sets of every metric: per database, and per environment across databases.
DIMENSIONS: Final = (list(LABELS), ["environment", "outcome"])
#: A metric value array holds at most this many values (the specification's limit).
MAX_VALUES: Final = 100


def document(metrics: RunMetrics, namespace: str) -> dict[str, Any]:
    """The EMF document of ``metrics`` in ``namespace``."""
    definitions = [{"Name": m.name, "Unit": m.unit} for m in METRICS]
    doc: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(metrics.timestamp * 1000),
            "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [list(d) for d in DIMENSIONS],
                                   "Metrics": definitions}],
        },
        **metrics.labels,
        "command": metrics.command,
        "journal_id": metrics.journal_id,
        **{m.name: metrics.values[m.name] for m in METRICS},
    }
    if metrics.revisions:
        revisions = metrics.revisions[-MAX_VALUES:]  # the latest: a run seldom applies more
        definitions.append({"Name": REVISION_DURATION.name, "Unit": REVISION_DURATION.unit})
        doc[REVISION_DURATION.name] = [seconds for _, seconds in revisions]
        doc["revisions"] = [revision for revision, _ in revisions]
    return doc


class EmfSink:
    """Writes the document as one line on stdout (stderr with ``to_stderr``)."""

    def __init__(self, namespace: str, to_stderr: bool = False) -> None:
        self.namespace = namespace
        self.to_stderr = to_stderr
        self.description = f"CloudWatch EMF on {'stderr' if to_stderr else 'stdout'}"

    def send(self, metrics: RunMetrics) -> None:
        stream = sys.stderr if self.to_stderr else sys.stdout
        stream.write(json.dumps(document(metrics, self.namespace), separators=(",", ":")) + "\n")
        stream.flush()
