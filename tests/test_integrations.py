"""The guard's FastAPI/Starlette and Flask helpers, through each framework's test client, on real
databases whose version table real migrations wrote."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from flask import Flask
from starlette.applications import Starlette

from alembic_deploy import guard
from alembic_deploy.errors import CheckRefused, DatabaseUnreachable
from alembic_deploy.integrations.flask import SchemaGuard as FlaskGuard
from alembic_deploy.integrations.starlette import SchemaGuard
from helpers import PG_DRIVER, free_port, run_cli


@pytest.fixture(autouse=True)
def _fresh_cache():
    guard.clear_cache()
    yield
    guard.clear_cache()


def migrate(project, db, target: str) -> None:
    run = run_cli(project, "upgrade", target, url=db.url)
    assert run.returncode == 0, run.output


def fastapi_app(schema_guard: SchemaGuard) -> FastAPI:
    app = FastAPI(lifespan=schema_guard.lifespan)
    app.add_route("/ready", schema_guard.readiness)

    @app.get("/accounts/status")
    def status() -> dict[str, str]:
        return {"verdict": app.state.schema_check.verdict}

    return app


def test_fastapi_starts_and_reports_ready_on_a_compatible_schema(make_project, pg_db):
    project = make_project("expand_contract")
    migrate(project, pg_db, "x4_merge")
    engine = pg_db.engine()
    app = fastapi_app(SchemaGuard(engine, str(project / "migrations")))
    with TestClient(app) as client:
        assert client.get("/accounts/status").json() == {"verdict": "behind-compatible"}
        ready = client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["pending"][0]["revision"] == "x5_drop_legacy"
        migrate(project, pg_db, "head")
        assert client.get("/ready").json()["verdict"] == "ok"
    engine.dispose()


def test_fastapi_refuses_to_start_on_an_incompatible_schema(make_project, pg_db):
    project = make_project("expand_contract")
    migrate(project, pg_db, "x1_accounts")
    app = fastapi_app(SchemaGuard(pg_db.url, str(project / "migrations")))
    with pytest.raises(CheckRefused, match="x2_accounts_status"), TestClient(app):
        pass


def test_fastapi_degraded_start_is_not_ready_until_migrated(make_project, pg_db):
    project = make_project("expand_contract")
    migrate(project, pg_db, "x1_accounts")
    schema_guard = SchemaGuard(pg_db.url, str(project / "migrations"), refuse=False)
    app = fastapi_app(schema_guard)
    with TestClient(app) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["verdict"] == "behind-incompatible"
        migrate(project, pg_db, "x2_accounts_status")
        ready = client.get("/ready")
        assert (ready.status_code, ready.json()["verdict"]) == (200, "behind-compatible")
        assert schema_guard.latest is not None and schema_guard.latest.accepted


def test_starlette_with_an_async_engine(make_project, pg_db):
    from sqlalchemy.ext.asyncio import create_async_engine

    project = make_project("expand_contract")
    migrate(project, pg_db, "head")
    engine = create_async_engine(pg_db.async_url)
    schema_guard = SchemaGuard(engine, str(project / "alembic.ini"))
    app = Starlette(lifespan=schema_guard.lifespan)
    app.add_route("/ready", schema_guard.readiness)
    with TestClient(app) as client:
        assert client.get("/ready").json()["verdict"] == "ok"
        assert app.state.schema_check.verdict == "ok"


def test_starlette_readiness_is_503_not_500_when_the_database_is_gone(make_project):
    project = make_project("expand_contract")
    url = f"{PG_DRIVER}://app:g0ne-s3cret@127.0.0.1:{free_port()}/app"
    schema_guard = SchemaGuard(url, str(project / "migrations"), refuse=False)
    app = Starlette(lifespan=schema_guard.lifespan)
    app.add_route("/ready", schema_guard.readiness)
    with TestClient(app) as client:
        ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["error"] == "database-unreachable"
    assert "g0ne-s3cret" not in ready.text
    with pytest.raises(DatabaseUnreachable, match="could not read the version table"), TestClient(
        Starlette(lifespan=SchemaGuard(url, str(project / "migrations")).lifespan)
    ):
        pass


def test_flask_extension_checks_at_init_and_serves_readiness(make_project, sqlite_db):
    project = make_project("expand_contract")
    migrate(project, sqlite_db, "x3a_nickname")
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = sqlite_db.url
    app.config["ALEMBIC_DEPLOY_SCRIPT_LOCATION"] = str(project / "migrations")
    schema_guard = FlaskGuard(app)
    assert app.extensions["alembic_deploy"] is schema_guard
    client = app.test_client()
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.get_json()["verdict"] == "behind-compatible"
    migrate(project, sqlite_db, "head")
    assert client.get("/ready").get_json()["verdict"] == "ok"


def test_flask_refuses_or_runs_degraded(make_project, sqlite_db):
    project = make_project("expand_contract")
    migrate(project, sqlite_db, "x1_accounts")
    location = str(project / "migrations")
    with pytest.raises(CheckRefused, match="behind this code"):
        FlaskGuard(Flask(__name__), engine_or_url=sqlite_db.url, script_location=location)
    app = Flask(__name__)
    FlaskGuard(engine_or_url=sqlite_db.url, script_location=location, refuse=False, path="/healthz/ready").init_app(app)
    client = app.test_client()
    ready = client.get("/healthz/ready")
    assert ready.status_code == 503
    assert ready.get_json()["verdict"] == "behind-incompatible"
    migrate(project, sqlite_db, "x2_accounts_status")
    assert client.get("/healthz/ready").status_code == 200


@pytest.mark.parametrize(("module", "extra"), [("starlette", "fastapi"), ("flask", "flask")])
def test_missing_framework_names_the_extra(tmp_path, module, extra):
    """With the framework not importable (a module that fails to import shadows it), the import
    error says which extra to install."""
    import subprocess
    import sys

    (tmp_path / f"{module}.py").write_text("raise ImportError('not installed')\n")
    probe = f"import alembic_deploy.integrations.{module}"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1
    assert f"pip install 'alembic-deploy[{extra}]'" in proc.stderr
