"""The pipeline end to end on every backend, sync and async env.py templates."""

from __future__ import annotations

import pytest

from helpers import run_cli


@pytest.mark.parametrize("template", ["sync", "async"])
def test_upgrade_applies_every_revision_then_noops(db, make_project, template):
    project = make_project(template)
    url = db.async_url if template == "async" else db.url
    first = run_cli(project, "upgrade", url=url)
    assert first.returncode == 0, first.output
    assert db.versions() == ["a3_seed"]
    assert db.scalar("SELECT email FROM users WHERE id = 1") == "seed@example.com"
    second = run_cli(project, "upgrade", "--json", url=url)
    assert second.returncode == 0, second.output
    assert '"outcome": "noop"' in second.stdout
    outcomes = [row["outcome"] for row in db.journal()]
    assert outcomes == ["applied", "noop"]
