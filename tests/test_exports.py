"""The public API is exactly ``alembic_deploy.__all__`` (as httpx's test_exported_members)."""

from __future__ import annotations

import __future__
import subprocess
import sys
from types import ModuleType

import alembic_deploy


def _public_names() -> set[str]:
    return {
        name
        for name, value in vars(alembic_deploy).items()
        if not name.startswith("_")
        # Submodules become attributes once imported; `from __future__ import annotations` binds one too.
        and not isinstance(value, (ModuleType, __future__._Feature))
    }


def test_every_name_in_all_exists():
    missing = [name for name in alembic_deploy.__all__ if not hasattr(alembic_deploy, name)]
    assert missing == []
    assert len(alembic_deploy.__all__) == len(set(alembic_deploy.__all__))


def test_every_public_name_is_listed_in_all():
    assert _public_names() == set(alembic_deploy.__all__) - {"__version__"}


def test_every_exported_error_carries_its_own_exit_code():
    errors = [
        getattr(alembic_deploy, name)
        for name in alembic_deploy.__all__
        if isinstance(getattr(alembic_deploy, name), type)
        and issubclass(getattr(alembic_deploy, name), alembic_deploy.AlembicDeployError)
    ]
    codes = [cls.exit_code for cls in errors]
    assert len(codes) == len(set(codes)), "two exported errors share an exit code"
    assert all(0 < code < 10 for code in codes)


def test_importing_the_package_stays_light():
    """The fast path depends on it: neither SQLAlchemy nor Alembic is loaded by the import."""
    probe = "import sys, alembic_deploy; print(sorted(m for m in ('sqlalchemy', 'alembic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
