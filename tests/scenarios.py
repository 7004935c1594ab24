"""The Alembic projects the tests (and the lock-queue benchmark) run, kept in ``tests/projects``.

``generic`` is what ``alembic init -t generic`` made (``alembic.ini``, ``env.py``,
``script.py.mako``; env.py unmodified). Every other scenario folder holds only what it adds to or
changes in the project named in its ``BASE`` file (``sync`` = generic + the users revisions
a1..a3; most scenarios build on sync), so each shared file exists once:
:func:`copy_project` lays the bases down first, then the scenario's own files over them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

PROJECTS = Path(__file__).parent / "projects"
BASE_FILE = "BASE"


def copy_project(scenario: str, target: Path) -> Path:
    """A complete project for ``scenario`` in ``target`` (created); returns ``target``."""
    source = PROJECTS / scenario
    if not source.is_dir():
        raise ValueError(f"no test project {scenario!r} in {PROJECTS}")
    base = source / BASE_FILE
    if base.is_file():
        copy_project(base.read_text().strip(), target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", BASE_FILE), dirs_exist_ok=True)
    return target
