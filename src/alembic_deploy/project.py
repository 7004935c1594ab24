"""Read an Alembic project's ini file without importing Alembic (the fast path needs it cheap).

Interpolation matches Alembic's ``Config``: a ``ConfigParser`` with ``%(here)s`` set to the ini's
folder, so ``%%`` and ``%(here)s`` mean the same here as in ``alembic upgrade``.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError


@dataclass(frozen=True)
class ProjectConfig:
    ini_path: Path
    section: str
    script_location: str
    #: Folder of script_location when it is a plain path (None for ``package:resource``).
    script_dir: Path | None
    version_dirs: tuple[Path, ...]
    ini_url: str | None
    sourceless: bool
    recursive: bool


def read_project(ini: Path, section: str = "alembic") -> ProjectConfig:
    if not ini.is_file():
        raise ConfigError(
            f"No Alembic config at {ini}. Run alembic-deploy in the folder that holds alembic.ini, "
            "or pass its path with -c/--config."
        )
    parser = configparser.ConfigParser({"here": ini.parent.as_posix()})
    try:
        parser.read(ini, encoding="utf-8")
        if not parser.has_section(section):
            raise ConfigError(
                f"{ini} has no [{section}] section. Pass the section with -n/--name, "
                "as with alembic."
            )
        opts = {key: parser.get(section, key) for key in parser.options(section)}
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"Could not parse {ini}: {exc}".replace("\n", " ")) from None
    location = opts.get("script_location") or _pyproject_script_location(ini.parent)
    if not location:
        raise ConfigError(
            f"No script_location in [{section}] of {ini} (nor [tool.alembic] in pyproject.toml). "
            "Is this an Alembic project? Create one with `alembic init migrations`."
        )
    script_dir: Path | None = None
    if ":" not in location or Path(location).is_absolute() or os.path.splitdrive(location)[0]:
        script_dir = Path(location)
        if not script_dir.is_absolute():
            script_dir = (Path.cwd() / script_dir).absolute()
    separator = opts.get("path_separator") or opts.get("version_path_separator") or None
    raw_versions = opts.get("version_locations")
    if raw_versions:
        if separator in (None, "space", "newline"):
            parts = raw_versions.split() if separator != "newline" else raw_versions.splitlines()
            if separator is None and "," in raw_versions:
                parts = [p for chunk in raw_versions.split(",") for p in chunk.split()]
        else:
            sep = {"os": os.pathsep, "colon": ":", "semicolon": ";"}.get(separator, separator)
            parts = raw_versions.split(sep)
        version_dirs = tuple(Path(p.strip()).absolute() for p in parts if p.strip())
    elif script_dir is not None:
        version_dirs = (script_dir / "versions",)
    else:
        version_dirs = ()
    return ProjectConfig(
        ini_path=ini,
        section=section,
        script_location=location,
        script_dir=script_dir,
        version_dirs=version_dirs,
        ini_url=opts.get("sqlalchemy.url") or None,
        sourceless=opts.get("sourceless", "false").lower() == "true",
        recursive=opts.get("recursive_version_locations", "false").lower() == "true",
    )


def _pyproject_script_location(folder: Path) -> str | None:
    path = folder / "pyproject.toml"
    if not path.is_file():
        return None
    try:
        import tomllib
    except ImportError:  # pragma: no cover
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    location = data.get("tool", {}).get("alembic", {}).get("script_location")
    return location.replace("%(here)s", folder.as_posix()) if isinstance(location, str) else None
