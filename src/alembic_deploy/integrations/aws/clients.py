"""boto3 clients for the AWS integrations: imported lazily, configured once.

Every client follows boto3's own configuration chain (``AWS_REGION``/``AWS_DEFAULT_REGION``,
``AWS_PROFILE``, the container or OIDC credentials, ``AWS_ENDPOINT_URL``), so what works for the
AWS CLI in a GitHub job or an ECS task works here; tests reach a local moto server the same way.
"""

from __future__ import annotations

import os
import re
from typing import Any, Final

from ...errors import ConfigError, CredentialsUnavailable

#: botocore's "standard" retry mode: throttling and transient errors are retried with backoff.
RETRIES: Final = {"mode": "standard", "max_attempts": 5}


def client(service: str, region: str | None = None) -> Any:
    """A boto3 client for ``service`` (in ``region``, else boto3's configured region).

    Raises :class:`ConfigError` when boto3 is not installed or no region is configured.
    """
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ConfigError(
            "This command talks to AWS through boto3, which is not installed. "
            "Install the extra: pip install 'alembic-deploy[aws]'."
        ) from None
    from botocore.exceptions import BotoCoreError, InvalidRegionError, ProfileNotFound

    try:
        session = boto3.session.Session()
    except ProfileNotFound as exc:
        raise ConfigError(f"AWS_PROFILE names a profile the AWS configuration does not have ({exc}). Set "
                          "AWS_PROFILE to one of ~/.aws/config's profiles, or unset it to use the role's "
                          "credentials.") from None
    # botocore reads AWS_DEFAULT_REGION; AWS_REGION is what the other SDKs (and Lambda) set.
    region = region or session.region_name or os.environ.get("AWS_REGION")
    if not region:
        raise ConfigError(
            "No AWS region is configured. Set AWS_REGION (aws-actions/configure-aws-credentials sets it "
            "in GitHub Actions) or a region in the AWS profile."
        )
    try:
        return session.client(service, region_name=region,
                              config=Config(retries=RETRIES, user_agent_extra="alembic-deploy"))
    except InvalidRegionError:
        raise ConfigError(f"The AWS region {region!r} is not a region name (such as eu-west-1): fix "
                          "AWS_REGION / AWS_DEFAULT_REGION or the profile's region.") from None
    except (ValueError, BotoCoreError) as exc:  # botocore: ValueError("Invalid endpoint: ...")
        raise ConfigError(f"The AWS client for {service} cannot be set up: {exc}. Check AWS_ENDPOINT_URL "
                          "(a URL such as https://host:port, or unset for AWS itself) and the AWS "
                          "profile's settings.") from None


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``ClusterNotFoundException``, ...), else
    the exception's class name (a connection or credentials error)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__


def aws_errors() -> tuple[type[BaseException], ...]:
    """What a boto3 call raises for an AWS or transport failure (botocore is imported by then)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def unavailable(exc: BaseException, what: str, advice: str) -> CredentialsUnavailable | ConfigError:
    """The error (exit 13) for an AWS call about the database login, ``what``, that failed with
    ``exc``; ``advice`` says what lets it succeed. No region: exit 2, the setup is missing."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

    if isinstance(exc, NoRegionError):
        return ConfigError(f"{what}: no AWS region is configured. Set AWS_REGION (or AWS_DEFAULT_REGION).")
    if isinstance(exc, NoCredentialsError):
        return CredentialsUnavailable(
            f"{what}: no AWS credentials were found. Run with a role (the ECS task role, the instance "
            "profile, GitHub's OIDC role through aws-actions/configure-aws-credentials) or set AWS_PROFILE.")
    if isinstance(exc, EndpointConnectionError):
        advice = ("Check the network route to AWS (a VPC endpoint or NAT for a task in a private subnet) and "
                  "AWS_ENDPOINT_URL if one is set.")
    elif isinstance(exc, ClientError):
        return CredentialsUnavailable(f"{what}: AWS answered {describe(exc)}. {advice}")
    return CredentialsUnavailable(f"{what}: {describe(exc)}. {advice}")


def describe(exc: BaseException) -> str:
    """An AWS call's failure in a few words, for a message: ``ClusterNotFoundException (Cluster not
    found)`` for an answer of AWS, the error's own text for a transport or credentials failure."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return str(exc).rstrip(".")
    text = " ".join(str(exc.response.get("Error", {}).get("Message", "")).split())
    inner = re.search(r"<Message>(.*?)</Message>", text)  # an XML error body botocore passed on whole
    text = (inner.group(1) if inner else text).rstrip(".")
    code = error_code(exc)
    if code.isdigit():  # an error body botocore could not read: the HTTP status is what there is
        code = f"HTTP {code}{' (access denied)' if code == '403' else ''}"
    return f"{code}{f' ({text})' if text else ''}"
