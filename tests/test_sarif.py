"""``plan --format sarif`` is valid SARIF 2.1.0: every log is checked against the official schema.

The schema is OASIS's ``sarif-2.1.0-rtm.5.json`` as Microsoft's ``@microsoft/jest-sarif`` npm
package ships it (no PyPI or Debian package ships the schema file itself; ``sarif-om`` and
``sarif-tools`` hold the object model only, ``@types/sarif`` types only). ``.ci/run`` installs that
package with npm when it is missing; ``ALEMBIC_DEPLOY_TEST_SARIF_SCHEMA`` may name the file instead.
Without it the tests skip locally and fail under CI (``CI`` set), so a green CI means validated.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from alembic_deploy.alembic_env import read_revision_file
from alembic_deploy.errors import EXIT_OK, CheckRefused
from alembic_deploy.lint import RULES
from alembic_deploy.lint.offline import lint_revision_file
from alembic_deploy.lint.sarif import sarif
from helpers import invoke_cli
from scenarios import copy_project

PACKAGE = "@microsoft/jest-sarif"
SCHEMA_IN_PACKAGE = Path("lib") / "schemas" / "sarif-2.1.0-rtm.5.json"
CASES = Path(__file__).parent / "projects" / "lint_rules"
VERSIONS = Path("migrations") / "versions"


@cache
def _schema_path() -> Path | None:
    given = os.environ.get("ALEMBIC_DEPLOY_TEST_SARIF_SCHEMA")
    if given:
        return Path(given)
    npm = shutil.which("npm")
    if npm is None:
        return None
    root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, check=False).stdout.strip()
    path = Path(root) / PACKAGE / SCHEMA_IN_PACKAGE
    return path if path.is_file() else None


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    path = _schema_path()
    if path is None:
        message = f"the official SARIF schema is not installed: npm install -g {PACKAGE}"
        if os.environ.get("CI"):
            pytest.fail(message + " (.ci/run installs it)")
        pytest.skip(message)
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def valid(validator: jsonschema.protocols.Validator, log: dict[str, Any]) -> dict[str, Any]:
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    return log


def test_sarif_puts_each_finding_on_its_revision_files_line(validator: jsonschema.protocols.Validator,
                                                           tmp_path: Path) -> None:
    project = copy_project("sync", tmp_path / "p")
    path = project / VERSIONS / "a3_seed.py"
    path.write_text(path.read_text().replace(
        "def downgrade() -> None:\n    op.execute(\"DELETE FROM users WHERE id = 1\")",
        "# alembic-deploy: allow irreversible -- the seed row stays\ndef downgrade() -> None:\n    pass"))
    run = invoke_cli(project, "plan", "--from", "base", "--dialect", "postgresql", "--format", "sarif")
    assert run.returncode == CheckRefused.exit_code
    log = valid(validator, json.loads(run.stdout))
    assert log["version"] == "2.1.0"
    (sarif_run,) = log["runs"]
    rules = [r["id"] for r in sarif_run["tool"]["driver"]["rules"]]
    by_rule = {r["ruleId"]: r for r in sarif_run["results"]}
    assert set(by_rule) == {"index-not-concurrent", "irreversible"}
    index = by_rule["index-not-concurrent"]
    assert rules[index["ruleIndex"]] == "index-not-concurrent" and index["level"] == "error"
    location = index["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("migrations/versions/a2_users_email_index.py")
    assert location["region"] == {"startLine": 16}
    assert by_rule["irreversible"]["suppressions"] == [{"kind": "inSource", "justification": "the seed row stays"}]


def test_plan_sarif_without_findings_is_valid(validator: jsonschema.protocols.Validator, tmp_path: Path) -> None:
    project = copy_project("sync", tmp_path / "p")
    run = invoke_cli(project, "plan", "--from", "a3_seed", "--dialect", "mysql", "--format", "sarif")
    assert run.returncode == EXIT_OK
    log = valid(validator, json.loads(run.stdout))
    assert log["runs"][0]["results"] == [] and log["runs"][0]["tool"]["driver"]["rules"]


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_a_sarif_log_of_every_rules_finding_is_valid(validator: jsonschema.protocols.Validator,
                                                     dialect: str) -> None:
    """Every rule's finding on its bad case (findings without a line, files outside the working
    directory as ``file:`` URIs) in one log."""
    findings = []
    for rule in RULES:
        if dialect in rule.dialects:
            found = read_revision_file(CASES / f"{rule.id}.bad.py")
            assert found is not None
            findings += lint_revision_file(found, dialect).findings
    assert {f.rule for f in findings} == {r.id for r in RULES if dialect in r.dialects}
    # Under the root: relative URIs; outside it (src/ holds no test case): absolute file: URIs.
    for root in (CASES.parent, Path(__file__).parent.parent / "src"):
        log = valid(validator, sarif(findings, "0.0.0", root=root))
        uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"]}
        assert all(u.startswith("file:") for u in uris) == (root.name == "src")
