"""Who added each revision file, from git when the project is in a repository (for ``plan``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

_MARK = "\x1e"  # starts each commit's line in the log, before its author


def authors(paths: Iterable[Path]) -> dict[Path, str]:
    """The author of the commit that added each of ``paths`` (resolved); files git does not know,
    or no git at all, are left out. One ``git log`` per folder, not one per file."""
    wanted = {p.resolve() for p in paths}
    git = shutil.which("git")
    found: dict[Path, str] = {}
    if git is None:
        return found
    for folder in sorted({p.parent for p in wanted}):
        found.update(_added_in(git, folder, wanted))
    return found


def _added_in(git: str, folder: Path, wanted: set[Path]) -> dict[Path, str]:
    try:
        top = subprocess.run([git, "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, check=True, timeout=30).stdout.strip()
        log = subprocess.run(
            [git, "-C", str(folder), "log", "--diff-filter=A", f"--format={_MARK}%an", "--name-only", "--",
             "."], capture_output=True, text=True, check=True, timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found: dict[Path, str] = {}
    author = ""
    for line in log.split("\n"):  # not splitlines(): it splits at the mark too
        if line.startswith(_MARK):
            author = line[1:]
        elif line:
            path = (Path(top) / line).resolve()
            # The log is newest first: the oldest commit that added a path is the one that counts.
            if path in wanted:
                found[path] = author
    return found
