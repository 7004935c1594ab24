"""What a user reads after a revision failed: the exit-7 message says what the next deploy will do,
``status`` reports a partly applied revision and exits with the code a deploy would (8), and the
exit-8 message lists each statement once."""

from __future__ import annotations

import re

import pytest

from helpers import run_cli
from test_json_output import checked
from test_partial import make_partial


#: What the exit-7 message says the next deploy will do: refuse until repair where statements
#: committed one by one (MariaDB), redeploy where the revision's transaction took them back.
NEXT_STEP = {
    "mysql": "it is partly applied. The next deploy will refuse (exit 8) until it is settled: run "
             "`alembic-deploy repair`",
    "postgresql": "Its transaction was rolled back, so nothing of it was left behind; the database is at "
                  "a3_seed. Fix the migration and deploy again; run with --debug for the traceback.",
}


@pytest.mark.parametrize("backend", ["mysql", "postgresql"])
def test_after_a_failed_revision_every_message_tells_what_the_next_deploy_does(request, make_project, backend):
    db = request.getfixturevalue("mysql_db" if backend == "mysql" else "pg_db")
    project = make_project("partial")
    failed = make_partial(project, db)
    assert failed.returncode == 7, failed.output
    assert NEXT_STEP[backend] in failed.stderr
    assert ("Fix the migration and deploy again" in failed.stderr) is (backend == "postgresql")
    status = run_cli(project, "status", url=db.url)
    assert "pending:  2" in status.stdout  # a4_profiles (partly applied on MariaDB) and a5_tags
    if backend == "postgresql":
        assert status.returncode == 0, status.output
        assert "unfinished" not in status.output and "repair" not in failed.stderr
        return

    assert status.returncode == 8, status.output
    assert "unfinished: revision a4_profiles is partly applied (journal #2); a deploy refuses (exit 8)" in status.stdout
    assert "error: Revision a4_profiles is partly applied: statement(s) 1, 2 of its 4 were committed" in status.stderr
    as_json = run_cli(project, "status", "--json", url=db.url)
    assert as_json.returncode == 8, as_json.output
    document = checked(as_json.stdout, "status", 8)
    unfinished = document["unfinished"]
    assert (unfinished["state"], unfinished["revision"], unfinished["exit_code"]) == ("partial", "a4_profiles", 8)
    assert document["error"]["kind"] == "partial-migration" and "not run" in document["error"]["fields"]

    deploy = run_cli(project, "upgrade", url=db.url)
    assert deploy.returncode == 8  # the code status announced
    listed = [line for line in deploy.stderr.splitlines() if line.startswith(("  ran:", "  failed:", "  not run:"))]
    numbers = [n for line in listed for n in re.findall(r"(?:: |; )(\d+)\. ", line)]
    assert sorted(numbers) == ["1", "2", "3", "4"], listed  # each statement once

    # Settled: status is back to exit 0 with nothing unfinished.
    with db.engine().begin() as conn:
        conn.exec_driver_sql("DROP TABLE profiles")
    assert run_cli(project, "repair", "--resume", url=db.url).returncode == 0
    settled = run_cli(project, "status", url=db.url)
    assert settled.returncode == 0, settled.output
    assert "unfinished" not in settled.output
