"""boto3, for the backups kept in S3 and the RDS / Aurora snapshots: the ``aws`` extra, imported on
first use. Clients take boto3's own configuration (credentials, region, ``AWS_ENDPOINT_URL``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import BackupFailed, ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable


def client(service: str) -> Any:
    """A boto3 client for ``service``; a missing extra is a :class:`ConfigError` saying what to install."""
    try:
        import boto3
    except ImportError:
        raise ConfigError(
            f"Backups to S3 and RDS snapshots use boto3, which is not installed. Install the aws extra: "
            f"pip install 'alembic-deploy[aws]' (needed here for {service})."
        ) from None
    return boto3.client(service)


def failure(what: str, exc: BaseException) -> BackupFailed:
    """A boto3 or botocore error as a BackupFailed saying ``what`` failed and why, in AWS's words."""
    detail = str(exc).rstrip(".")
    return BackupFailed(f"{what} failed: {detail}. Check the credentials, the region and the IAM permissions "
                        "of this role (and that the resource exists), then deploy again.")


def aws_errors() -> tuple[type[BaseException], ...]:
    """The exception types boto3 raises for a refused or failed call."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def calling(what: str, call: Callable[[], Any]) -> Any:
    """``call()``, its AWS errors turned into :func:`failure`."""
    try:
        return call()
    except aws_errors() as exc:
        raise failure(what, exc) from None
