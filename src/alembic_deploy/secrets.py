"""Keep credentials out of every output: URLs are rendered masked, and any text the tool shows
(errors from drivers included, which often echo the DSN) is scrubbed of known secrets."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

_known: set[str] = set()
# user:password@ in any URL-looking text, even for secrets we were never told about.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@")
# key=value conninfo fragments that drivers print (libpq style, pymysql kwargs).
# MySQL's "Access denied ... (using password: YES)" names no password: keep it readable.
_KV = re.compile(r"(?i)\b(password|passwd|pwd)(\s*[=:]\s*)(?!(?:yes|no)\b)('[^']*'|\"[^\"]*\"|\S+)")


def register(secret: str | None) -> None:
    """Remember a secret (a password, a token) so :func:`scrub` removes it wherever it appears."""
    if secret and len(secret) >= 3:
        _known.add(secret)
        _known.add(unquote(secret))


def register_url(url: str | None) -> None:
    """Register the password of a database URL, in both its quoted and unquoted forms."""
    if not url:
        return
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    if parts.password:
        register(parts.password)


def mask_url(url: str) -> str:
    """``postgresql://app:s3cret@db/x`` -> ``postgresql://app:***@db/x``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)


def scrub(text: str) -> str:
    """Remove every known secret and every URL password from ``text``."""
    if not text:
        return text
    text = mask_url(text)
    text = _KV.sub(lambda m: f"{m[1]}{m[2]}***", text)
    for secret in sorted(_known, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
