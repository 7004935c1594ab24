"""AWS for the backups kept in S3 and the RDS / Aurora snapshots: the integrations' boto3 clients
(:mod:`alembic_deploy.integrations.aws.clients`, the ``aws`` extra, imported on first use), and
their failures as :class:`~alembic_deploy.errors.BackupFailed`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import BackupFailed
from ..integrations.aws.clients import aws_errors, client, describe

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["aws_errors", "calling", "client", "failure"]


def failure(what: str, exc: BaseException) -> BackupFailed:
    """A boto3 or botocore error as a BackupFailed saying ``what`` failed and why, in AWS's words."""
    return BackupFailed(f"{what} failed: {describe(exc)}. Check the credentials, the region and the IAM "
                        "permissions of this role, and that the bucket, object or snapshot exists; then try again.")


def calling(what: str, call: Callable[[], Any]) -> Any:
    """``call()``, its AWS errors turned into :func:`failure`."""
    try:
        return call()
    except aws_errors() as exc:
        raise failure(what, exc) from None
