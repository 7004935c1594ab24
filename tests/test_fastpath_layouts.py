"""The fast path finds revision files where Alembic does, on every layout: symlinks (Alembic
resolves them and judges the real file's name), several version locations, recursive ones, the
names it skips, and the layouts it fails on. Each layout is built in a temporary folder and
compared with ``ScriptDirectory.from_config(...)``'s own revision map: wherever the fast path
answers, its graph is Alembic's; where it cannot mirror Alembic, it declines.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path

import alembic
import pytest

from alembic_deploy.compat import release
from alembic_deploy.fastpath.revisions import revision_files, static_graph
from alembic_deploy.project import read_ini
from helpers import run_cli
from scenarios import PROJECTS

INI = """\
[alembic]
script_location = %(here)s/migrations
{extra}
"""


def revision(path: Path, rev: str, down: str | tuple[str, ...] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(f"""\
        revision = {rev!r}
        down_revision = {down!r}
        branch_labels = None
        depends_on = None
    """))


def garbage(path: Path) -> None:
    """A file Alembic must never import (it would fail on it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is not python (\n")


def link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def base(root: Path, extra: str = "") -> Path:
    """migrations/versions with r1 <- r2; returns the versions folder."""
    (root / "alembic.ini").write_text(INI.format(extra=extra))
    versions = root / "migrations" / "versions"
    revision(versions / "r1_first.py", "r1")
    revision(versions / "r2_second.py", "r2", "r1")
    return versions


def _symlinked(root: Path) -> None:
    revision(root / "shared" / "r3_shared.py", "r3", "r2")
    link(base(root) / "r3.link", "../../shared/r3_shared.py")


def _link_to_other_name(root: Path) -> None:
    revision(root / "shared" / "r3.txt", "r3", "r2")
    link(base(root) / "r3_shared.py", "../../shared/r3.txt")


def _two_links_one_file(root: Path) -> None:
    versions = base(root)
    link(versions / "again.py", "r2_second.py")
    link(versions / "and_again.py", str(versions / "r2_second.py"))


def _link_to_folder(root: Path) -> None:
    revision(root / "shared_dir" / "x.py", "r3", "r2")
    link(base(root) / "sub.py", "../../shared_dir")


def _broken_link(root: Path) -> None:
    link(base(root) / "gone.py", "../../nowhere.py")


def _emacs_lock_link(root: Path) -> None:
    link(base(root) / ".#r2_second.py", "user@host.1234:1700000000")


def _skipped_names(root: Path) -> None:
    versions = base(root)
    for name in (".#r2_second.py", "__init__.py", "__init__.pyc", "r2_second.py~", "r2_second.pyc", "README.md",
                 "r3.PY", "r3.py.orig", "notes.txt"):
        garbage(versions / name)


def _hidden_file(root: Path) -> None:
    revision(base(root) / ".hidden.py", "r3", "r2")


def _newline_name(root: Path) -> None:
    revision(base(root) / "r3.py\n", "r3", "r2")


def _bare_suffix(root: Path) -> None:
    revision(base(root) / ".py", "r3", "r2")


def _subfolder(root: Path) -> None:
    revision(base(root) / "sub" / "r3.py", "r3", "r2")


def _recursive(root: Path) -> None:
    versions = base(root, "recursive_version_locations = true")
    revision(versions / "sub" / "r3.py", "r3", "r2")
    revision(versions / "sub" / "deeper" / "r4.py", "r4", "r3")
    garbage(versions / "sub" / "__pycache__" / "x.py")
    garbage(versions / "x__pycache__" / "y.py")
    revision(versions / "x__pycache__" / "deeper" / "r5.py", "r5", "r4")  # alembic walks into it


def _recursive_link_to_folder(root: Path) -> None:
    revision(root / "shared_dir" / "r3.py", "r3", "r2")
    link(base(root, "recursive_version_locations = true") / "shared", "../../shared_dir")


def _several_locations(root: Path) -> None:
    base(root, "version_locations = %(here)s/migrations/versions:%(here)s/more:%(here)s/missing\n"
               "path_separator = os")
    revision(root / "more" / "r3.py", "r3", "r2")


def _legacy_separator(root: Path) -> None:
    base(root, "version_locations = %(here)s/migrations/versions, %(here)s/more")
    revision(root / "more" / "r3.py", "r3", "r2")


def _space_separator(root: Path) -> None:
    base(root, "version_locations = %(here)s/migrations/versions %(here)s/more\npath_separator = space")
    revision(root / "more" / "r3.py", "r3", "r2")


def _same_location_twice(root: Path) -> None:
    base(root, "version_locations = %(here)s/migrations/versions;%(here)s/migrations/versions\npath_separator = ;")


def _location_not_listed(root: Path) -> None:
    """version_locations replaces migrations/versions: r1 and r2 are not loaded."""
    base(root, "version_locations = %(here)s/more\npath_separator = os")
    revision(root / "more" / "r3.py", "r3")


def _sourceless(root: Path) -> None:
    base(root, "sourceless = true")


def _versions_is_a_link(root: Path) -> None:
    revision(root / "real_versions" / "r1.py", "r1")
    (root / "alembic.ini").write_text(INI.format(extra=""))
    link(root / "migrations" / "versions", "../real_versions")


def _location_is_a_file(root: Path) -> None:
    base(root, "version_locations = %(here)s/migrations/versions:%(here)s/a_file\npath_separator = os")
    (root / "a_file").write_text("")


def _legacy_revision_from_name(root: Path) -> None:
    (base(root) / "ae1027a6acf_legacy.py").write_text("down_revision = 'r2'\n")


def _duplicate_revision(root: Path) -> None:
    revision(base(root) / "r2_copy.py", "r2", "r1")


def _pycache_named_location(root: Path) -> None:
    """Alembic skips a folder named ``*__pycache__`` but still walks into its subfolders."""
    (root / "alembic.ini").write_text(
        INI.format(extra="version_locations = %(here)s/v__pycache__\npath_separator = os"))
    (root / "migrations").mkdir()
    garbage(root / "v__pycache__" / "skipped.py")
    revision(root / "v__pycache__" / "sub" / "r1.py", "r1")


def _merge_and_branches(root: Path) -> None:
    versions = base(root)
    revision(versions / "r3.py", "r3", "r1")
    revision(versions / "r4.py", "r4", ("r2", "r3"))


#: name -> (builder, does the fast path answer there)
LAYOUTS: dict[str, tuple[Callable[[Path], None], bool]] = {
    "symlinked revision": (_symlinked, True),
    "link named .py to another name": (_link_to_other_name, True),
    "two links to one file": (_two_links_one_file, True),
    "link to a folder": (_link_to_folder, False),
    "broken link": (_broken_link, False),
    "emacs lock link": (_emacs_lock_link, False),
    "skipped names": (_skipped_names, True),
    "hidden file": (_hidden_file, True),
    "newline in a name": (_newline_name, False),
    "a file named .py": (_bare_suffix, False),
    "subfolder, not recursive": (_subfolder, True),
    "recursive": (_recursive, True),
    "recursive, link to a folder": (_recursive_link_to_folder, False),
    "several locations": (_several_locations, True),
    "legacy separator": (_legacy_separator, True),
    "space separator": (_space_separator, True),
    "same location twice": (_same_location_twice, True),
    "versions not listed": (_location_not_listed, True),
    "sourceless": (_sourceless, False),
    "versions folder is a link": (_versions_is_a_link, True),
    "location is a file": (_location_is_a_file, False),
    "revision id from the file name": (_legacy_revision_from_name, False),
    "duplicate revision": (_duplicate_revision, False),
    "folder named like __pycache__": (_pycache_named_location, True),
    "merge and branches": (_merge_and_branches, True),
}


def alembic_graph(ini: Path) -> dict[str, tuple[str, ...]] | Exception:
    """``{revision: down revisions}`` of Alembic's own revision map, or what it raised."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            script = ScriptDirectory.from_config(Config(str(ini)))
            found = {}
            for sc in script.walk_revisions():
                down = sc.down_revision
                found[sc.revision] = () if down is None else (down,) if isinstance(down, str) else tuple(down)
            return found
    except Exception as exc:  # noqa: BLE001 - alembic fails on this layout: the fast path must decline
        return exc


def fast_graph(ini: Path) -> dict[str, tuple[str, ...]] | None:
    files = revision_files(read_ini(ini))
    graph = None if files is None else static_graph(files)
    return None if graph is None else graph.down


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_where_the_fast_path_answers_it_finds_alembics_revisions(tmp_path, monkeypatch, layout):
    build, answers = LAYOUTS[layout]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    root = tmp_path / "project"
    root.mkdir()
    build(root)
    ini = root / "alembic.ini"
    expected = alembic_graph(ini)
    found = fast_graph(ini)
    if found is not None:
        assert not isinstance(expected, Exception), f"alembic fails here ({expected!r}), the fast path answered"
        assert {rev: tuple(sorted(d)) for rev, d in found.items()} == {
            rev: tuple(sorted(d)) for rev, d in expected.items()}
    if release(alembic.__version__) >= (1, 16) or not re.search(r"^path_separator", ini.read_text(), re.M):
        # Before 1.16 alembic ignores path_separator: it finds other folders, and so does the fast path.
        assert (found is not None) is answers, (found, expected)
    # Again, from the cache the first pass wrote: the same answer.
    assert fast_graph(ini) == found


@pytest.mark.timeout(60)  # opening a FIFO blocks until someone writes to it
def test_a_fifo_named_like_a_revision_declines_instead_of_blocking(tmp_path):
    versions = base(tmp_path)
    os.mkfifo(versions / "r3_fifo.py")
    assert fast_graph(tmp_path / "alembic.ini") is None


def test_a_revision_reached_through_a_symlink_is_applied(sqlite_db, make_project, tmp_path):
    """``versions/a4.link -> shared/a4_users_nickname.py``: alembic loads it, so the database at a3 is
    behind, not at the head."""
    project = make_project("sync")
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}
    assert run_cli(project, "upgrade", url=sqlite_db.url, env=env).returncode == 0
    shared = project / "shared" / "a4_users_nickname.py"
    shared.parent.mkdir()
    shared.write_bytes((PROJECTS / "alter_users" / "migrations" / "versions" / shared.name).read_bytes())
    (project / "migrations" / "versions" / "a4.link").symlink_to("../../shared/a4_users_nickname.py")
    run = run_cli(project, "upgrade", "--json", url=sqlite_db.url, env=env)
    assert run.returncode == 0, run.output
    report = json.loads(run.stdout)
    assert report["outcome"] == "applied" and [r["revision"] for r in report["applied"]] == ["a4_users_nickname"]
    assert sqlite_db.versions() == ["a4_users_nickname"]
