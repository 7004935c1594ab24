"""Reading and writing notes across the rename of notes.body to notes.content.

A rename cannot be one migration while the code keeps serving: old code would break the moment the
column changes name. It takes three releases, and each release's code runs on the schema before
*and* after the migration it ships, because the seed migrates only once the new code is healthy:

=========  ===============================  =============================================
release    ships                            reads / writes
=========  ===============================  =============================================
1          0001 notes(title, body)          body
2          0002 expand: + content           body; once 0002 is applied, both (reads content,
                                            falling back to body)
3          0003 contract: - body            content only (needs 0002: ``REQUIRES``)
=========  ===============================  =============================================

A real repository holds one release at a time and its git history the others; this example keeps
the three code paths side by side (chosen by ``NOTES_RELEASE``) so that simulate_deploy.py can run
an old and a new release at once.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from alembic_deploy.guard import SchemaCheck

from .models import Note

EXPAND = "0002_expand_note_content"
CONTRACT = "0003_contract_note_body"
#: Revisions a release's code cannot run without, whatever their marker says (see alembic_deploy.guard).
REQUIRES: dict[int, tuple[str, ...]] = {1: (), 2: (), 3: (EXPAND,)}

# The table as releases 1 and 2 see it: a lightweight table, so each query names only the columns
# that exist in the schema it runs on.
_notes = sa.table("notes", sa.column("id"), sa.column("title"), sa.column("body"), sa.column("content"))


def mode(release: int, schema: SchemaCheck) -> str:
    if release >= 3:
        return "content"
    if release == 2 and schema.has(EXPAND):
        return "both"
    return "body"


def create(conn: Connection, mode: str, title: str, text: str) -> int:
    if mode == "content":
        stmt = sa.insert(Note).values(title=title, content=text).returning(Note.id)
    elif mode == "both":
        stmt = sa.insert(_notes).values(title=title, body=text, content=text).returning(_notes.c.id)
    else:
        stmt = sa.insert(_notes).values(title=title, body=text).returning(_notes.c.id)
    return int(conn.execute(stmt).scalar_one())


def _select(mode: str) -> sa.Select[Any]:
    if mode == "content":
        return sa.select(Note.id, Note.title, Note.content.label("text"))
    if mode == "both":
        return sa.select(_notes.c.id, _notes.c.title, sa.func.coalesce(_notes.c.content, _notes.c.body).label("text"))
    return sa.select(_notes.c.id, _notes.c.title, _notes.c.body.label("text"))


def get(conn: Connection, mode: str, note_id: int) -> dict[str, Any] | None:
    query = _select(mode)
    row = conn.execute(query.where(query.selected_columns.id == note_id)).mappings().first()
    return dict(row) if row else None


def recent(conn: Connection, mode: str, limit: int = 20) -> list[dict[str, Any]]:
    query = _select(mode)
    rows = conn.execute(query.order_by(query.selected_columns.id.desc()).limit(limit)).mappings()
    return [dict(r) for r in rows]
