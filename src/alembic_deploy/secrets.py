"""Keep credentials out of every output: URLs are rendered masked, and any text the tool shows
(errors from drivers included, which often echo the DSN) is scrubbed of known secrets."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

_known: set[str] = set()
_longest_first: list[str] = []
# user:password@ in any URL-looking text, even for secrets we were never told about.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@")
# key=value conninfo fragments that drivers print (libpq style, pymysql kwargs).
# MySQL's "Access denied ... (using password: YES)" names no password: keep it readable.
_KV = re.compile(r"(?i)\b(password|passwd|pwd)(\s*[=:]\s*)(?!(?:yes|no)\b)('[^']*'|\"[^\"]*\"|\S+)")


def register(secret: str | None) -> None:
    """Remember a secret (a password, a token) so :func:`scrub` removes it wherever it appears."""
    global _longest_first
    if secret and len(secret) >= 3:
        _known.add(secret)
        _known.add(unquote(secret))
        _longest_first = sorted(_known, key=len, reverse=True)


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
    if "://" in text:
        text = mask_url(text)
    if may_contain(text, "passw", "pwd"):
        text = _KV.sub(lambda m: f"{m[1]}{m[2]}***", text)
    for secret in _longest_first:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def may_contain(text: str, *words: str) -> bool:
    """Could a case-insensitive pattern (``re.IGNORECASE``) find one of the lower-case ASCII
    ``words`` in ``text``? A cheap test before the regex: False only when none can match
    (``casefold`` folds the non-ASCII letters such a pattern also matches, "ſ" and "K"; the
    dotless "ı" it matches to "i" is folded by hand)."""
    folded = text.casefold()
    if "ı" in folded:
        folded = folded.replace("ı", "i")
    for word in words:  # a loop, not any(): this runs for every line the tool prints
        if word in folded:
            return True
    return False
