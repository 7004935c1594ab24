"""Generate a realistic Alembic project of N revisions for the benchmarks.

The project is made the way a team makes one: ``alembic init`` (generic template, env.py left
unmodified), then N revision files rendered from the project's own ``script.py.mako`` exactly as
``alembic revision`` renders them (``alembic revision`` itself costs ~0.5 s a call, too slow for
N = 500). Each revision does a small, ordinary piece of DDL: create a table, add a column to it,
index it, in a repeating cycle, so a full upgrade does real work on every backend.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from alembic.util import format_as_comma
from mako.template import Template

BIN = Path(sys.executable).parent

# (message, upgrade body, downgrade body) per step of the cycle; {t} is the table of the cycle.
_CYCLE = (
    (
        "create table {t}",
        ('op.create_table(\n        "{t}",\n        sa.Column("id", sa.Integer, primary_key=True),\n'
        '        sa.Column("name", sa.String(50), nullable=False),\n'
        '        sa.Column("created_at", sa.DateTime, nullable=True),\n    )'),
        'op.drop_table("{t}")',
    ),
    (
        "add {t}.note",
        'op.add_column("{t}", sa.Column("note", sa.String(200), nullable=True))',
        'op.drop_column("{t}", "note")',
    ),
    (
        "index {t}.name",
        'op.create_index("ix_{t}_name", "{t}", ["name"])',
        'op.drop_index("ix_{t}_name", table_name="{t}")',
    ),
)


def revision_id(index: int) -> str:
    """Deterministic 12-hex ids, shaped like ``alembic revision``'s ``uuid4().hex[-12:]``."""
    return hashlib.sha1(f"bench-{index}".encode()).hexdigest()[-12:]


def generate(folder: Path, revisions: int) -> Path:
    """Create the project in ``folder`` and return its alembic.ini path."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(BIN / "alembic"), "init", "-t", "generic", "migrations"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    template = Template(filename=str(folder / "migrations" / "script.py.mako"))
    versions = folder / "migrations" / "versions"
    down: str | None = None
    created = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for index in range(revisions):
        rev = revision_id(index)
        table = f"t{index // len(_CYCLE):04d}"
        message, upgrade, downgrade = (part.format(t=table) for part in _CYCLE[index % len(_CYCLE)])
        text = template.render_unicode(
            up_revision=rev,
            down_revision=down,
            branch_labels=None,
            depends_on=None,
            create_date=created.replace(second=index % 60, minute=index // 60 % 60),
            message=message,
            imports="",
            upgrades=upgrade,
            downgrades=downgrade,
            comma=format_as_comma,
        )
        slug = re.sub(r"\W+", "_", message).strip("_")
        (versions / f"{rev}_{slug}.py").write_text(text, encoding="utf-8")
        down = rev
    return folder / "alembic.ini"


def head_of(revisions: int) -> str:
    return revision_id(revisions - 1)


def set_url(ini: Path, url: str) -> None:
    """Point ``sqlalchemy.url`` at ``url``: the generic env.py reads it from there (``%`` escaped)."""
    text = ini.read_text(encoding="utf-8")
    text, count = re.subn(
        r"^sqlalchemy\.url\s*=.*$", lambda _m: f"sqlalchemy.url = {url.replace('%', '%%')}", text, flags=re.M
    )
    if count != 1:
        raise RuntimeError(f"{ini}: expected one sqlalchemy.url line, found {count}")
    ini.write_text(text, encoding="utf-8")
