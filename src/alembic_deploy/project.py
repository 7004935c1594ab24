"""Read an Alembic project's ini file without importing Alembic (the fast path needs it cheap).

Interpolation matches Alembic's ``Config``: a ``ConfigParser`` with ``%(here)s`` set to the ini's
folder, so ``%%`` and ``%(here)s`` mean the same here as in ``alembic upgrade``. Where the
versions folders are is worked out the way the installed Alembic's ``ScriptDirectory.from_config``
does it (``path_separator`` from 1.16, ``version_path_separator``, the legacy space/comma split,
package resources); anything this module does not mirror exactly is named in
:attr:`ProjectIni.unsupported`, and the fast path then declines.
"""

from __future__ import annotations

import configparser
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

# Alembic's Config._get_file_separator_char, and its legacy split when no separator is set.
_SEPARATORS = {"space": " ", "newline": "\n", "os": os.pathsep, ":": ":", ";": ";"}
_SEPARATORS_BEFORE_1_16 = {k: v for k, v in _SEPARATORS.items() if k != "newline"}
_PATH_SEPARATOR_SINCE = (1, 16)
_LEGACY_SPLIT = re.compile(r", *|(?: +)")


@dataclass(frozen=True)
class ProjectIni:
    """What an Alembic project's ini (and pyproject.toml) says, read as text without Alembic;
    :class:`~alembic_deploy.alembic_env.AlembicProject` is the same project opened through Alembic."""

    ini_path: Path
    section: str
    script_location: str
    #: Folder of script_location when it is a plain path (None for ``package:resource``).
    script_dir: Path | None
    version_dirs: tuple[Path, ...]
    ini_url: str | None
    sourceless: bool
    recursive: bool
    #: Why the folders above may not be the ones Alembic loads (None: they provably are).
    unsupported: str | None = None
    #: ``sqlalchemy.*`` keys of the section other than the URL (engine_from_config passes them on).
    engine_options: tuple[str, ...] = ()


def read_ini(ini: Path, section: str = "alembic") -> ProjectIni:
    """Section ``section`` of ``ini``; ConfigError (exit 2) when it is missing or unreadable."""
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
    unsupported: str | None = None
    toml = alembic_toml(ini)
    if toml is not None:
        # alembic >= 1.16 reads [tool.alembic] too (script_location, version_locations, ...).
        unsupported = "pyproject.toml has a [tool.alembic] section"
    location = opts.get("script_location")
    if not location and toml is not None:
        location = _pyproject_script_location(toml)
    if not location:
        raise ConfigError(
            f"No script_location in [{section}] of {ini} (nor [tool.alembic] in pyproject.toml). "
            "Is this an Alembic project? Create one with `alembic init migrations`."
        )
    script_dir = _plain_path(location)
    if script_dir is None:
        unsupported = unsupported or f"script_location {location!r} is a package resource"
    version_dirs: tuple[Path, ...] = ()
    raw_versions = opts.get("version_locations")
    if raw_versions:
        locations = _split_locations(raw_versions, opts)
        dirs = [_plain_path(loc) for loc in locations or ()]
        if locations is None:
            unsupported = unsupported or "path_separator is not one alembic accepts"
        elif not all(dirs):
            unsupported = unsupported or "version_locations names a package resource or an empty path"
        else:
            version_dirs = tuple(d for d in dirs if d is not None)
    elif script_dir is not None:
        version_dirs = (script_dir / "versions",)
    return ProjectIni(
        ini_path=ini,
        section=section,
        script_location=location,
        script_dir=script_dir,
        version_dirs=version_dirs,
        ini_url=opts.get("sqlalchemy.url") or None,
        # Alembic's get_alembic_boolean_option: only the exact string "true" is true.
        sourceless=opts.get("sourceless") == "true",
        recursive=opts.get("recursive_version_locations") == "true",
        unsupported=unsupported,
        engine_options=tuple(sorted(k for k in opts if k.startswith("sqlalchemy.") and k != "sqlalchemy.url")),
    )


def _plain_path(location: str) -> Path | None:
    """Alembic's coerce_resource_to_filename(...).absolute() for a filesystem path; None for a
    ``package:resource`` (or an empty string, which alembic would resolve to the working folder)."""
    if not location:
        return None
    if not os.path.isabs(location) and ":" in location:
        return None
    return Path(location).absolute()


def _split_locations(raw: str, opts: dict[str, str]) -> list[str] | None:
    """The installed Alembic's version-locations list; None where it would raise, or where its
    release is not known (``path_separator`` came with 1.16: before it only
    ``version_path_separator`` is read, and the parts are not stripped)."""
    from .compat import installed_version, release

    version = installed_version("alembic")
    if version is None:
        return None
    modern = release(version) >= _PATH_SEPARATOR_SINCE
    for name in ("path_separator", "version_path_separator") if modern else ("version_path_separator",):
        if name in opts:
            sep = (_SEPARATORS if modern else _SEPARATORS_BEFORE_1_16).get(opts[name])
            if sep is None:
                return None
            return [x.strip() if modern else x for x in raw.split(sep) if x]
    return _LEGACY_SPLIT.split(raw)


def _tool_alembic(path: Path) -> dict[str, object] | None:
    """``[tool.alembic]`` of a pyproject.toml: None when there is no such file or section, ``{}``
    when the file cannot be parsed (alembic would fail on it, so it counts as present)."""
    if not path.is_file():
        return None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    section = data.get("tool", {}).get("alembic")
    return section if isinstance(section, dict) else None


def alembic_toml(ini: Path) -> Path | None:
    """The pyproject.toml whose ``[tool.alembic]`` completes ``ini`` (``alembic init -t pyproject``):
    the working directory's, as alembic's CLI reads it, else the one beside the ini; None if
    neither has the section."""
    for path in (Path("pyproject.toml"), ini.parent / "pyproject.toml"):
        if _tool_alembic(path) is not None:
            return path.absolute()
    return None


def _pyproject_script_location(toml: Path) -> str | None:
    location = (_tool_alembic(toml) or {}).get("script_location")
    return location.replace("%(here)s", toml.parent.as_posix()) if isinstance(location, str) else None
