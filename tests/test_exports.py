"""The public API is what ``__all__`` says, in every public module (as httpx's test_exported_members).

Public modules, the ones a user imports from:

* ``alembic_deploy``: the verbs (``upgrade``, ``status``, ``history``, ``repair``), ``Settings``,
  the report types, the exception tree and the application side (``check_schema``,
  ``SchemaCheck``, ``wait_healthy``);
* ``alembic_deploy.errors``: the exception tree and ``EXIT_OK``;
* ``alembic_deploy.guard``: the schema guard (the README imports it as ``from alembic_deploy import guard``);
* ``alembic_deploy.integrations.starlette`` and ``alembic_deploy.integrations.flask``: the extras.

Every other module is internal: what a user needs of it is re-exported by the package, and the
rest may change in any release. In each public module, every name in ``__all__`` exists, and
every public name the module defines (or, for the package, binds) is in ``__all__``.
"""

from __future__ import annotations
import __future__

import ast
import importlib
import inspect
import subprocess
import sys
from types import ModuleType

import pytest

import alembic_deploy

PUBLIC_MODULES = [
    "alembic_deploy",
    "alembic_deploy.errors",
    "alembic_deploy.guard",
    "alembic_deploy.integrations.flask",
    "alembic_deploy.integrations.starlette",
]


def _defined_at_top_level(module: ModuleType) -> set[str]:
    """The public names a module's own code binds: classes, functions and assignments, not imports."""
    names: set[str] = set()
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return {name for name in names if not name.startswith("_")}


def _bound_by_the_package() -> set[str]:
    """The package re-exports: every public name it binds, loaded now or on first use."""
    bound = {
        name
        for name, value in vars(alembic_deploy).items()
        if not name.startswith("_")
        # Submodules become attributes once imported; `from __future__ import annotations` binds one too.
        and not isinstance(value, (ModuleType, __future__._Feature))
        and name != "TYPE_CHECKING"
    }
    return bound | set(alembic_deploy._LAZY)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_module_declares_all_and_every_name_in_it_exists(name):
    module = importlib.import_module(name)
    assert isinstance(getattr(module, "__all__", None), list), f"{name} declares no __all__"
    missing = [item for item in module.__all__ if not hasattr(module, item)]
    assert missing == [], f"{name}.__all__ names what it does not have"
    assert len(module.__all__) == len(set(module.__all__)), f"{name}.__all__ lists a name twice"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_nothing_public_is_missing_from_all(name):
    module = importlib.import_module(name)
    public = _bound_by_the_package() if module is alembic_deploy else _defined_at_top_level(module)
    assert public - set(module.__all__) == set(), f"public in {name} but not in its __all__"


def test_the_package_exports_the_verbs_settings_reports_and_every_error():
    from alembic_deploy import errors, report

    assert {"upgrade", "status", "history", "repair", "check", "plan", "drift", "Settings", "StatusReport",
            "CheckReport", "PlanReport", "DriftReport", "ScratchUnavailable"} <= set(alembic_deploy.__all__)
    reports = {name for name, value in vars(report).items()
               if isinstance(value, type) and value.__module__ == report.__name__}
    assert reports <= set(alembic_deploy.__all__)
    assert set(errors.__all__) - {"EXIT_OK"} <= set(alembic_deploy.__all__)
    assert all(getattr(alembic_deploy, name) is getattr(errors, name) for name in errors.__all__ if name != "EXIT_OK")


def test_every_exported_error_carries_its_own_exit_code():
    errors = [
        getattr(alembic_deploy, name)
        for name in alembic_deploy.__all__
        if isinstance(getattr(alembic_deploy, name), type)
        and issubclass(getattr(alembic_deploy, name), alembic_deploy.AlembicDeployError)
    ]
    codes = [cls.exit_code for cls in errors]
    assert len(codes) == len(set(codes)), "two exported errors share an exit code"
    assert all(0 < code <= 14 for code in codes)  # 11-14: backup, ecs-run, aws, rollback (README table)


def test_every_error_declares_the_report_it_ended():
    from alembic_deploy.errors import AlembicDeployError

    assert AlembicDeployError.__annotations__["report"] == "DeployReport | None"
    assert AlembicDeployError("x").report is None


def test_the_package_is_typed():
    from importlib.resources import files

    assert files("alembic_deploy").joinpath("py.typed").is_file()


def test_importing_the_package_stays_light():
    """The fast path depends on it: neither SQLAlchemy nor Alembic is loaded by the import."""
    probe = "import sys, alembic_deploy; print(sorted(m for m in ('sqlalchemy', 'alembic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_no_exit_code_is_written_outside_errors_py():
    """Exit codes live on the exception classes and ``EXIT_OK`` (errors.py): nowhere else does a
    number become an exit code (``sys.exit(9)``, ``SystemExit(2)``, ``exit_code=0``, ``{"exit_code": 8}``)."""
    from pathlib import Path

    found = []
    for path in sorted(Path(alembic_deploy.__file__).parent.rglob("*.py")):
        if path.name == "errors.py" and path.parent.name == "alembic_deploy":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            numbers: list[ast.expr] = []
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in ("sys.exit", "exit", "SystemExit", "os._exit"):
                    numbers += node.args
                numbers += [k.value for k in node.keywords if k.arg == "exit_code"]
            elif isinstance(node, ast.Dict):
                numbers += [v for k, v in zip(node.keys, node.values, strict=True)
                            if isinstance(k, ast.Constant) and k.value == "exit_code"]
            for value in numbers:
                for leaf in ast.walk(value):
                    if isinstance(leaf, ast.Constant) and type(leaf.value) is int:
                        found.append(f"{path.name}:{leaf.lineno}: {ast.unparse(value)}")
    assert found == []
