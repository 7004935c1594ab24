"""The health gate: migrate only once the new code answers healthy.

With ``--wait-ecs-service CLUSTER/SERVICE`` the ECS service's new deployment is waited for first
(:mod:`alembic_deploy.integrations.aws.ecs_health`), within the same ``--health-timeout``.

With ``upgrade --wait-healthy URL`` the pipeline, right after the database answers, polls each URL until
it answers 2xx ``--healthy-count`` times in a row (and, with ``--health-expect key=value``, carries
that value in its JSON body). One failure resets that URL's streak: an app that flaps between
healthy and not is not healthy. A URL that has passed stays passed; every URL must pass within
``--health-timeout`` seconds, or the deploy stops with exit 4 before anything changes.

httpx is an optional extra (``alembic-deploy[http]``), imported only when a URL is given.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ..errors import ConfigError, HealthCheckFailed
from ..masking import mask_url, scrub
from ..observer import event

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import httpx

    from ..report import DeployReport
    from ..settings import Settings

#: Longest a single request may take; an app slower than this to answer its health route is unhealthy.
REQUEST_TIMEOUT_SECONDS: Final = 5.0
#: How much of the last response body an error shows.
BODY_EXCERPT_CHARS: Final = 200


@dataclass
class _Probe:
    url: str
    streak: int = 0
    best: int = 0
    attempts: int = 0
    passed: bool = False
    last: str = "no answer yet"

    @property
    def shown(self) -> str:
        return mask_url(self.url)


def parse_expect(items: Sequence[str]) -> list[tuple[tuple[str, ...], str]]:
    """``status=ok`` -> ``(("status",), "ok")``; a dotted key walks nested objects (``db.ok=true``)."""
    parsed = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--health-expect takes key=value (a JSON field of the health response and the value "
                f"it must have), e.g. --health-expect status=ok; got {item!r}."
            )
        parsed.append((tuple(key.strip().split(".")), value.strip()))
    return parsed


def validate(settings: Settings) -> None:
    """Config errors before anything waits: they are not worth a --wait-timeout."""
    if settings.wait_ecs_service is not None:
        from ..integrations.aws.ecs_health import parse_service

        parse_service(settings.wait_ecs_service)
    if not settings.wait_healthy:
        return
    for url in settings.wait_healthy:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"--wait-healthy takes an http:// or https:// URL, got {mask_url(url)!r}.")
    if settings.healthy_count < 1:
        raise ConfigError(f"--healthy-count must be 1 or more, got {settings.healthy_count}.")
    for name in ("health_timeout", "health_interval"):
        if getattr(settings, name) < 0:
            option = "--" + name.replace("_", "-")
            raise ConfigError(f"{option} must be zero or more seconds, got {getattr(settings, name)}.")
    parse_expect(settings.health_expect)


def health_gate(settings: Settings, report: DeployReport, echo: Callable[[str], None]) -> None:
    """The pipeline step: the ECS service (``--wait-ecs-service``), then the URLs (``--wait-healthy``);
    a no-op unless either was given. ``report.health_wait_seconds``: the whole gate, passed or not."""
    if settings.wait_ecs_service is None and not settings.wait_healthy:
        return
    gate = time.monotonic()
    try:
        _gate(settings, report, echo)
    finally:
        report.health_wait_seconds = round(time.monotonic() - gate, 4)


def _gate(settings: Settings, report: DeployReport, echo: Callable[[str], None]) -> None:
    if settings.wait_ecs_service is not None:
        from ..integrations.aws.ecs_health import wait_ecs_healthy

        started = time.monotonic()
        service = wait_ecs_healthy(settings.wait_ecs_service, task_definition=settings.wait_ecs_task_definition,
                                   timeout=settings.health_timeout, interval=settings.health_interval, echo=echo)
        report.step("ecs-health", started, service.summary())
    if not settings.wait_healthy:
        return
    started = time.monotonic()
    wait_healthy(
        settings.wait_healthy,
        count=settings.healthy_count,
        timeout=settings.health_timeout,
        expect=settings.health_expect,
        interval=settings.health_interval,
        echo=echo,
    )
    report.step("health", started, f"{len(settings.wait_healthy)} URL(s) healthy {settings.healthy_count}x in a row")


def wait_healthy(
    urls: Sequence[str],
    *,
    count: int = 3,
    timeout: float = 300.0,
    expect: Sequence[str] = (),
    interval: float = 1.0,
    echo: Callable[[str], None] | None = None,
) -> None:
    """Poll every URL until each has answered healthy ``count`` times in a row, or raise
    :class:`~alembic_deploy.errors.HealthCheckFailed` once ``timeout`` seconds have passed."""
    httpx = _import_httpx()
    checks = parse_expect(expect)
    echo = echo or (lambda _msg: None)
    probes = [_Probe(url) for url in dict.fromkeys(urls)]
    deadline = time.monotonic() + timeout
    echo(event(
        "health_waiting",
        f"Waiting for {', '.join(p.shown for p in probes)} to answer healthy {count} time(s) in a row "
        f"(up to {timeout:g}s)...",
        urls=[p.shown for p in probes], count=count, timeout_s=timeout,
    ))
    with httpx.Client(follow_redirects=True) as client:
        while True:
            for probe in (p for p in probes if not p.passed):
                request_timeout = min(REQUEST_TIMEOUT_SECONDS, max(deadline - time.monotonic(), 0.1))
                failure = _probe_once(client, httpx, probe.url, request_timeout, checks)
                probe.attempts += 1
                if failure is None:
                    probe.streak += 1
                    probe.best = max(probe.best, probe.streak)
                    if probe.streak >= count:
                        probe.passed = True
                        echo(event("health_passed",
                                   f"  {probe.shown} is healthy ({count} in a row, {probe.attempts} request(s)).",
                                   url=probe.shown, requests=probe.attempts))
                else:
                    if probe.streak:
                        echo(event("health_unstable",
                                   f"  {probe.shown} failed after {probe.streak} healthy answer(s): {failure}",
                                   "warning", url=probe.shown, streak=probe.streak, failure=failure))
                    probe.streak = 0
                    probe.last = failure
            if all(p.passed for p in probes):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _failed(probes, count, timeout)
            time.sleep(min(interval, remaining))


def _probe_once(
    client: httpx.Client, httpx: Any, url: str, timeout: float, checks: list[tuple[tuple[str, ...], str]]
) -> str | None:
    """None when healthy, else why not (shown in the error)."""
    try:
        response = client.get(url, timeout=timeout)
    except httpx.TimeoutException:
        return f"no answer within {timeout:.1f}s"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {scrub(str(exc)) or 'request failed'}"
    excerpt = scrub(" ".join(response.text.split())[:BODY_EXCERPT_CHARS])
    if not response.is_success:
        return f"HTTP {response.status_code}: {excerpt or '<empty body>'}"
    if not checks:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code} but the body is not JSON: {excerpt or '<empty body>'}"
    for path, expected in checks:
        value: Any = body
        for key in path:
            value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
        if value is _MISSING:
            return f"HTTP {response.status_code} but the JSON has no {'.'.join(path)!r}: {excerpt}"
        actual = value if isinstance(value, str) else json.dumps(value)
        if actual != expected:
            return f"HTTP {response.status_code} but {'.'.join(path)} is {actual!r}, expected {expected!r}: {excerpt}"
    return None


_MISSING: Final = object()


def _failed(probes: list[_Probe], count: int, timeout: float) -> HealthCheckFailed:
    failing = [p for p in probes if not p.passed]
    first = failing[0]
    others = f" ({len(failing) - 1} other URL(s) failed too, listed below)" if len(failing) > 1 else ""
    return HealthCheckFailed(
        f"{first.shown} did not answer healthy {count} time(s) in a row within {timeout:g}s "
        f"({first.attempts} request(s), best streak {first.best}; last answer: {first.last}){others}. "
        "Nothing was migrated. Check that the new version is running and its health route answers 2xx; "
        "raise --health-timeout if it needs longer to start.",
        **({f"url {i + 1}": f"{p.shown}: {p.last}" for i, p in enumerate(failing)} if len(failing) > 1 else {}),
    )


def _import_httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise ConfigError(
            "--wait-healthy needs the HTTP client httpx, which is not installed. Install it with "
            "`pip install 'alembic-deploy[http]'`."
        ) from None
    return httpx
