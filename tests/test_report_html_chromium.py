"""``report --format html`` opened in a real headless Chromium (Debian's ``chromium``, driven by
Playwright's Python package through ``executable_path``: no browser download): the page loads with
no console message of level error or warning, requests nothing but the file itself, and each chart
draws the points the journals hold. The page and a screenshot are kept as test artifacts in
``$ALEMBIC_DEPLOY_TEST_ARTIFACTS`` (default: the test's temporary folder)."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from helpers import Database, invoke_cli
from test_history_report import multi_environment

#: The browser: $ALEMBIC_DEPLOY_TEST_CHROMIUM, else Debian's chromium on the PATH.
CHROMIUM = os.environ.get("ALEMBIC_DEPLOY_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
#: Flags of a browser that talks to nobody: no sync, no component or safe-browsing updates, no QUIC.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("ALEMBIC_DEPLOY_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _timed_runs(db: Database) -> int:
    return sum(r["duration_seconds"] is not None for r in db.journal())


def _days(db: Database) -> int:
    """UTC days with a finished run in ``db``'s journal."""
    return len({str(r["started_at"])[:10] for r in db.journal() if r["outcome"] != "running"})


def test_the_html_report_loads_offline_in_chromium_with_every_point(make_project, tmp_path, sqlite_db, pg_db,
                                                                      mysql_db):
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"No Chromium at {CHROMIUM}: install Debian's chromium (`apt-get install chromium`, as .ci/run "
                    "does) or point ALEMBIC_DEPLOY_TEST_CHROMIUM at one.", pytrace=False)
    from playwright.sync_api import sync_playwright

    project, extra = multi_environment(make_project, tmp_path, sqlite_db, pg_db, mysql_db)
    extra.pop("production_password")
    # dev's first run three days earlier, so the success-rate line of dev has two points.
    earlier = (datetime.now(timezone.utc) - timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite_db.engine().begin() as conn:
        conn.exec_driver_sql(f"UPDATE alembic_deploy_history SET started_at = '{earlier}' WHERE id = 1")
    out = artifacts(tmp_path)
    page_file = out / "report.html"
    done = invoke_cli(project, "report", "--format", "html", "--output", str(page_file), env=extra)
    assert done.returncode == 0, done.output
    expected = {"dev": sqlite_db, "qa": pg_db, "beta": mysql_db}

    messages: list[tuple[str, str]] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=list(FLAGS),
            viewport={"width": 1200, "height": 900})
        try:
            context.on("request", lambda request: requests.append(request.url))
            page = context.new_page()
            page.on("console", lambda message: messages.append((message.type, message.text)))
            page.on("pageerror", lambda error: messages.append(("error", str(error))))
            page.goto(page_file.as_uri(), wait_until="load")
            durations = {name: (page.get_attribute(f'svg.duration[data-environment="{name}"]', "data-points"),
                                page.locator(f'svg.duration[data-environment="{name}"] circle.point').count())
                         for name in expected}
            success = {name: (page.get_attribute(f'svg.success-rate g[data-environment="{name}"]', "data-points"),
                              page.locator(f'svg.success-rate g[data-environment="{name}"] circle.point').count())
                       for name in expected}
            total = page.get_attribute("svg.success-rate", "data-points")
            headers = page.locator("table.revisions th").all_inner_texts()
            revisions = page.locator("table.revisions tr td:first-child").all_inner_texts()
            warnings = page.locator("p.warn").all_inner_texts()
            page.screenshot(path=str(out / "report.png"), full_page=True)
        finally:
            context.close()

    assert [m for m in messages if m[0] in ("error", "warning")] == [], messages
    assert requests == [page_file.as_uri()], requests
    for name, db in expected.items():
        assert durations[name] == (str(_timed_runs(db)), _timed_runs(db)), (name, durations)
        assert success[name] == (str(_days(db)), _days(db)), (name, success)
    assert success["dev"][1] == 2
    assert total == str(sum(_days(db) for db in expected.values()))
    assert headers == ["revision", "description", "dev", "qa", "beta"]
    assert revisions == ["a1_users", "a2_users_email_index", "a3_seed", "a4_broken"]
    assert [w.split(":")[0] for w in warnings] == ["production", "staging"]
    assert (out / "report.png").stat().st_size > 10_000
