"""Keep credentials and SQL literals out of every output: URLs are rendered masked, any text the
tool shows (errors from drivers included, which often echo the DSN) is scrubbed of known secrets,
and the literals of SQL statements kept for the journal are masked."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final, NamedTuple
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


def database_label(url: str | None) -> str | None:
    """``host/name`` of a database URL (``db.internal/app``; SQLite: its file path, ``:memory:``
    for none): what the JSON log's and the metrics' ``database`` says, with no user, password,
    port or query parameters. Read without SQLAlchemy (the fast path's no-op does not load it)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    name = unquote(parts.path[1:]) if parts.path.startswith("/") else unquote(parts.path)
    if parts.hostname:
        return f"{parts.hostname}/{name}"
    return name or ":memory:"


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


_DOTLESS_I: Final = "\u0131"


def may_contain(text: str, *words: str) -> bool:
    """Could a case-insensitive pattern (``re.IGNORECASE``) find one of the lower-case ASCII
    ``words`` in ``text``? A cheap test before the regex: False only when none can match
    (``casefold`` folds the non-ASCII letters such a pattern also matches, U+017F LONG S and
    U+212A KELVIN SIGN; the DOTLESS I, U+0131, it matches to "i" is folded by hand)."""
    folded = text.casefold()
    if _DOTLESS_I in folded:
        folded = folded.replace(_DOTLESS_I, "i")
    for word in words:  # noqa: SIM110 - a loop, not any(): this runs for every line the tool prints
        if word in folded:
            return True
    return False


# -- literals in SQL text ---------------------------------------------------------------------------
# What the journal keeps of a statement must carry none of its literals: a password may be in any
# of them (CREATE USER ... IDENTIFIED BY '...', PASSWORD('...'), SET PASSWORD = "...", a $$ body),
# so every literal is masked, whatever surrounds it. One scan over the text with one pattern per
# dialect family: each branch matches a whole token whose inside is not SQL text (a literal, a
# quoted identifier, a comment), so a quote inside one never starts a literal. Plain decimal
# numbers are kept (column sizes, defaults: what makes an excerpt readable); hex and bit numbers,
# which encode strings in MySQL, are masked.
MASK: Final = "***"

_LINE_COMMENT = r"--[^\n]*"
_BLOCK_COMMENT = r"/\*(?:[^*]|\*(?!/))*(?:\*/|\Z)"
_HASH_COMMENT = r"\#[^\n]*"
# $tag$...$tag$ (PostgreSQL bodies); the tag group always takes part, so an empty tag matches $$.
_DOLLAR = r"(?<![\w$])\$(?P<tag>(?:[A-Za-z_][A-Za-z_0-9]*)?)\$.*?(?:\$(?P=tag)\$|\Z)"
_E_STRING = r"(?<![\w$])[eE]'(?:[^'\\]|\\.|'')*(?:'|\Z)"
_HEX_OR_BIT = r"(?<![\w$.])0(?:[xX][0-9a-fA-F]+|[bB][01]+)(?![\w$])"
_BACKTICK = r"`(?:[^`]|``)*(?:`|\Z)"


def _quoted(quote: str, backslash: bool) -> str:
    q = re.escape(quote)
    body = rf"[^{q}\\]|\\.|{q}{q}" if backslash else rf"[^{q}]|{q}{q}"
    return rf"{q}(?:{body})*(?:{q}|\Z)"


@functools.lru_cache(maxsize=16)
def _literal_scanner(string_quotes: str, backslash: bool, hash_comments: bool) -> re.Pattern[str]:
    """Named branches: ``c`` a comment (dropped), ``k`` kept as is (a quoted identifier), ``s`` a
    literal (masked), ``h`` a hex/bit number (masked)."""
    strings = "|".join(_quoted(q, backslash) for q in string_quotes)
    identifiers = "|".join([_BACKTICK] + [_quoted(q, False) for q in "\"" if q not in string_quotes])
    comments = "|".join([_LINE_COMMENT, _BLOCK_COMMENT] + ([_HASH_COMMENT] if hash_comments else []))
    return re.compile(
        rf"(?P<c>{comments})|(?P<k>{identifiers})|(?P<s>{_DOLLAR}|{_E_STRING}|{strings})|(?P<h>{_HEX_OR_BIT})",
        re.DOTALL,
    )


@dataclass(frozen=True)
class SQLLiterals:
    """How a dialect writes literals: the characters that quote strings (MySQL and SQLite also take
    "..." as a string; on PostgreSQL it is an identifier), whether a backslash escapes inside them
    by default, whether ``#`` starts a comment. Server settings can change the first two (MySQL's
    ANSI_QUOTES and NO_BACKSLASH_ESCAPES, PostgreSQL's standard_conforming_strings): a text holding
    a backslash is read both ways and whatever either reading takes for a literal is masked."""

    string_quotes: str = "'\""
    backslash_escapes: bool = True
    hash_comments: bool = True


#: For a dialect we know nothing of: everything that may be a literal anywhere is one.
ANY_DIALECT: Final = SQLLiterals()


class MaskedSQL(NamedTuple):
    """``text`` with every literal as ``'***'`` (in its own quotes) and comments dropped;
    ``skeleton`` the same with each literal as ``?`` (for fingerprints); ``literals`` the literals.
    A tuple: one is made for every statement a progress record carries."""

    text: str
    skeleton: str
    literals: tuple[str, ...]


def mask_literals(sql: str, syntax: SQLLiterals = ANY_DIALECT) -> MaskedSQL:
    """Mask every literal of ``sql`` (see :class:`SQLLiterals`); unterminated ones run to the end."""
    if not _may_hold_literal(sql):
        return MaskedSQL(sql, sql, ())
    spans = _scan(sql, syntax.string_quotes, syntax.backslash_escapes, syntax.hash_comments)
    if "\\" in sql:
        spans = _union(spans, _scan(sql, syntax.string_quotes, not syntax.backslash_escapes, syntax.hash_comments))
    text, skeleton, literals, at = [], [], [], 0
    for start, end, kind in spans:
        text.append(sql[at:start])
        skeleton.append(sql[at:start])
        at = end
        if kind == "c":
            text.append(" ")
            skeleton.append(" ")
            continue
        token = sql[start:end]
        literals.append(token)
        text.append(_masked(token, kind))
        skeleton.append("?")
    text.append(sql[at:])
    skeleton.append(sql[at:])
    return MaskedSQL("".join(text), "".join(skeleton), tuple(literals))


def _may_hold_literal(sql: str) -> bool:
    """False when ``sql`` holds no literal, comment or quoted identifier: most DDL, looked at
    before every statement a progress record carries (each ``in`` is one scan in C)."""
    return ("'" in sql or '"' in sql or "`" in sql or "$" in sql or "-" in sql or "/" in sql or "#" in sql
            or "0x" in sql or "0X" in sql or "0b" in sql or "0B" in sql)


def _scan(sql: str, quotes: str, backslash: bool, hashes: bool) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.lastgroup or "") for m in _literal_scanner(quotes, backslash, hashes).finditer(sql)
            if m.lastgroup != "k"]


def _union(first: list[tuple[int, int, str]], second: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Spans either reading masks, overlapping ones merged (a merged span is masked whole)."""
    merged: list[tuple[int, int, str]] = []
    for start, end, kind in sorted(first + second):
        if merged and start < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), kind if kind == last[2] else "s")
        else:
            merged.append((start, end, kind))
    return merged


def _masked(token: str, kind: str) -> str:
    """The literal's own quoting around the mask, for reading (``E'***'``, ``$body$***$body$``)."""
    if kind == "h":
        return token[:2] + MASK
    if token[0] == "$" and token.find("$", 1) > 0:
        tag = token[: token.index("$", 1) + 1]
        return f"{tag}{MASK}{tag}"
    if token[0] in "eE" and token[1:2] == "'":
        return f"E'{MASK}'"
    quote = token[0] if token[0] in "'\"" else "'"
    return f"{quote}{MASK}{quote}"


def scrub_statement(text: str, statement: str | None, params: object = None,
                    syntax: SQLLiterals = ANY_DIALECT) -> str:
    """``text`` (a driver's error about ``statement``: servers quote the statement near the error)
    without the contents of the statement's literals or its bound values, then :func:`scrub`'d.
    Contents shorter than 4 characters stay: too short to be a secret, too common to remove."""
    found: list[str] = []
    if statement:
        for literal in mask_literals(statement, syntax).literals:
            found += (literal, _contents(literal))
    values = params.values() if isinstance(params, dict) else params if isinstance(params, (list, tuple)) else ()
    found.extend(str(v) for v in values if isinstance(v, (str, bytes)))
    for secret in sorted({f for f in found if len(f) >= 4}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return scrub(text)


def _contents(literal: str) -> str:
    """What is between a literal's quotes (``$tag$`` ones included), as the server may echo it."""
    if literal.startswith("$") and literal.count("$") >= 4:
        tag_end = literal.index("$", 1) + 1
        return literal[tag_end:len(literal) - tag_end]
    start = min((i for i in (literal.find("'"), literal.find('"')) if i >= 0), default=-1)
    if start < 0:
        return literal
    end = len(literal) - 1 if len(literal) > start + 1 and literal[-1] == literal[start] else len(literal)
    return literal[start + 1:end]
