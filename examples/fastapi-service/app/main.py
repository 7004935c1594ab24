"""The notes service.

Startup: the schema guard checks that this release can run on the database as it is (at its head,
or behind only by revisions marked expand-only or contract) and refuses to start otherwise.
``GET /ready`` is the readiness route the load balancer and the post-deploy health gate poll:
200 with the guard's verdict when this code accepts the schema, 503 otherwise.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from alembic_deploy import guard
from alembic_deploy.integrations.starlette import SchemaGuard

from . import store
from .db import engine

RELEASE = int(os.environ.get("NOTES_RELEASE", "3"))
ALEMBIC_INI = str(Path(__file__).resolve().parent.parent / "alembic.ini")
#: How long a request may reuse the last schema check before it asks the database again.
SCHEMA_MAX_AGE_SECONDS = 1.0

schema_guard = SchemaGuard(engine, ALEMBIC_INI, requires=store.REQUIRES[RELEASE])
app = FastAPI(title="notes", lifespan=schema_guard.lifespan)
app.add_route("/ready", schema_guard.readiness)

_schema: tuple[float, guard.SchemaCheck] | None = None


def current_mode() -> str:
    """The store's mode for the schema as it is now; one tiny query at most once a second."""
    global _schema
    if _schema is None or time.monotonic() - _schema[0] > SCHEMA_MAX_AGE_SECONDS:
        _schema = (time.monotonic(), guard.check(engine, ALEMBIC_INI, requires=store.REQUIRES[RELEASE]))
    return store.mode(RELEASE, _schema[1])


class NoteIn(BaseModel):
    title: str
    text: str


@app.get("/health")
def health() -> dict[str, Any]:
    """Liveness: the process answers. Readiness (schema included) is /ready."""
    return {"status": "ok", "release": RELEASE}


@app.post("/notes", status_code=201)
def create_note(note: NoteIn) -> dict[str, Any]:
    mode = current_mode()
    with engine.begin() as conn:
        note_id = store.create(conn, mode, note.title, note.text)
    return {"id": note_id, "release": RELEASE, "mode": mode}


@app.get("/notes")
def list_notes() -> list[dict[str, Any]]:
    mode = current_mode()
    with engine.connect() as conn:
        return store.recent(conn, mode)


@app.get("/notes/{note_id}")
def get_note(note_id: int) -> dict[str, Any]:
    mode = current_mode()
    with engine.connect() as conn:
        note = store.get(conn, mode, note_id)
    if note is None:
        raise HTTPException(status_code=404, detail="no such note")
    return note
