"""Where backups go: a local folder or an S3 prefix (``s3://bucket/prefix``), what each is named
(``<env>-<database>-<revision>-<utc time><suffix>``), and the retention count.

A backup is written under a temporary name (``.partial`` in a folder) and given its own name only
once complete, so a listing (and the retention count) never sees half a backup.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

from ..errors import BackupFailed, ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

#: The UTC time at the end of every backup's name.
STAMP: Final = "%Y%m%dT%H%M%SZ"
_STAMP_AT_END: Final = re.compile(r"-(\d{8}T\d{6}Z)(?:\.[a-z0-9]+)?$")
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.]+")
PARTIAL: Final = ".partial"


def backup_name(environment: str | None, database: str, revisions: Sequence[str], moment: datetime) -> str:
    """``<env>-<database>-<revision>-<utc time>`` (``default`` without ``--env``, ``base`` before
    the first revision, ``a+b`` for two heads), each part reduced to letters, digits, ``_`` and ``.``."""
    parts = [environment or "default", Path(database).stem if "/" in database else database,
             "+".join(revisions) or "base"]
    safe = [_UNSAFE.sub("_", part).strip("_") or "x" for part in parts]
    return "-".join([*safe, moment.astimezone(timezone.utc).strftime(STAMP)])


def series(name: str) -> str:
    """The part of a backup's name shared by every backup of the same environment and database."""
    return "-".join(name.split("-")[:2]) + "-"


def stamp_of(name: str) -> str:
    """The UTC time a backup's name ends with ('' when it has none): names sort by it."""
    match = _STAMP_AT_END.search(name)
    return match.group(1) if match else ""


def to_prune(names: Sequence[str], keep: int) -> list[str]:
    """Of ``names`` (one series), those a retention of ``keep`` deletes: all but the newest ``keep``."""
    if keep <= 0:
        return []
    ordered = sorted(names, key=stamp_of, reverse=True)
    return ordered[keep:]


@dataclass(frozen=True)
class Written:
    location: str
    size: int | None


class LocalFolder:
    """A folder on this host (created when missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __str__(self) -> str:
        return str(self.path)

    def location(self, filename: str) -> str:
        return str(self.path.absolute() / filename)

    @contextlib.contextmanager
    def open(self, filename: str) -> Iterator[IO[bytes]]:
        """A new file to write ``filename`` into (under its temporary name); removed when the
        block raises, else given its name by :meth:`commit`."""
        partial = self.path / (filename + PARTIAL)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            stream = open(partial, "xb")  # noqa: SIM115 - closed below, or the child owns a copy
        except OSError as exc:
            raise BackupFailed(
                f"The backup folder {self.path.absolute()} cannot be written: {exc.strerror or exc}. Give "
                "--backup-destination a folder this user may create files in (or an s3:// prefix); nothing "
                "was migrated."
            ) from None
        try:
            with stream:
                yield stream
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise

    def temporary(self, filename: str) -> Path:
        return self.path / (filename + PARTIAL)

    def commit(self, filename: str) -> Written:
        final = self.path / filename
        os.replace(self.path / (filename + PARTIAL), final)
        return Written(str(final.absolute()), final.stat().st_size)

    def discard(self, filename: str) -> None:
        for path in (self.path / (filename + PARTIAL), self.path / filename):
            with contextlib.suppress(OSError):
                path.unlink()

    def prune(self, name: str, suffix: str, keep: int) -> list[str]:
        """Delete the oldest backups of ``name``'s series beyond ``keep``; the locations deleted."""
        if keep <= 0 or not self.path.is_dir():
            return []
        prefix = series(name)
        names = [p.name for p in self.path.iterdir() if p.name.startswith(prefix) and p.name.endswith(suffix)]
        gone = []
        for old in to_prune(names, keep):
            with contextlib.suppress(OSError):
                (self.path / old).unlink()
                gone.append(self.location(old))
        return gone


class S3Prefix:
    """``s3://bucket/prefix``: objects streamed in with a multipart upload (boto3's
    ``upload_fileobj``, a few chunks of memory whatever the backup's size)."""

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket, self.prefix = bucket, prefix

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key(self, filename: str) -> str:
        return f"{self.prefix}{filename}"

    def location(self, filename: str) -> str:
        return f"s3://{self.bucket}/{self.key(filename)}"

    def upload(self, filename: str, stream: IO[bytes]) -> Written:
        from .aws import calling, client

        s3 = client("s3")
        calling(f"Uploading the backup to {self.location(filename)}",
                lambda: s3.upload_fileobj(stream, self.bucket, self.key(filename)))
        head = calling(f"Reading back {self.location(filename)}",
                       lambda: s3.head_object(Bucket=self.bucket, Key=self.key(filename)))
        return Written(self.location(filename), int(head["ContentLength"]))

    def discard(self, filename: str) -> None:
        from .aws import aws_errors, client

        with contextlib.suppress(*aws_errors()):
            client("s3").delete_object(Bucket=self.bucket, Key=self.key(filename))

    def prune(self, name: str, suffix: str, keep: int) -> list[str]:
        if keep <= 0:
            return []
        from .aws import calling, client

        s3 = client("s3")
        start = self.key(series(name))
        pages = calling(f"Listing {self}", lambda: list(
            s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start)))
        names = [o["Key"][len(self.prefix):] for page in pages for o in page.get("Contents", [])
                 if o["Key"].endswith(suffix)]
        gone = []
        for old in to_prune(names, keep):
            calling(f"Deleting {self.location(old)}", lambda old=old: s3.delete_object(  # type: ignore[misc]
                Bucket=self.bucket, Key=self.key(old)))
            gone.append(self.location(old))
        return gone


Destination = LocalFolder | S3Prefix


def parse_destination(text: str) -> Destination:
    """``s3://bucket/prefix`` or a folder (relative to the working directory)."""
    if text.startswith("s3://"):
        bucket, _, prefix = text[5:].partition("/")
        if not bucket:
            raise ConfigError(f"--backup-destination {text!r} names no bucket: write it s3://bucket/prefix.")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return S3Prefix(bucket, prefix)
    if "://" in text:
        raise ConfigError(f"--backup-destination {text!r}: give a folder or s3://bucket/prefix.")
    return LocalFolder(Path(text).expanduser())
