"""Outside text made safe to show: one line, no terminal controls, bounded length.

Platforms, payloads and configuration files hand trickle text that ends up in
error messages, log lines and terminal tables. :func:`printable` is the one
function that makes such text harmless there: a newline in a platform's
error message cannot forge a second log line, an ESC cannot reach the
operator's terminal, and a megabyte of message stays a short one.
"""

from __future__ import annotations

import re

ELLIPSIS = "…"
"""Ends a text that :func:`printable` cut short."""

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# C0 controls, DEL, C1 controls, the Unicode line and paragraph separators (which
# str.splitlines() and many log viewers treat as line breaks), the bidirectional
# embeddings, overrides and isolates (which reorder the text shown around them: a handle
# could make the amount beside it read backwards), and lone surrogates (which no UTF-8
# terminal or log file can write).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _escape_match(match: re.Match[str]) -> str:
    return _escape(match.group())


def printable(text: str, limit: int | None = None) -> str:
    """``text`` with control characters escaped, at most ``limit`` characters long.

    Escaped are the C0 controls (``\\n``, ``\\r`` and ``\\t`` by name, the others as
    ``\\xNN``), DEL and the C1 controls (``\\x7f`` to ``\\x9f``), the Unicode line and
    paragraph separators (``\\u2028``, ``\\u2029``), the bidirectional embeddings,
    overrides and isolates (``\\u202a`` to ``\\u202e``, ``\\u2066`` to ``\\u2069``) and lone
    surrogates (``\\udNNN``);
    every other character, any script, emoji included, is kept as it is. Backslashes
    are not doubled: the result is for people to read, not to be parsed back.

    With ``limit`` the result has at most that many characters: a longer one is cut
    after whole characters or whole escapes and ends with ``…``.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    head = text if limit is None else text[: limit + 1]  # every character escapes to >= 1
    escaped = _UNPRINTABLE.sub(_escape_match, head)
    if limit is None or len(escaped) <= limit:
        return escaped
    kept: list[str] = []
    room = limit - len(ELLIPSIS)
    for char in head:
        piece = _escape(char) if _UNPRINTABLE.match(char) else char
        if len(piece) > room:
            break
        kept.append(piece)
        room -= len(piece)
    return "".join(kept) + ELLIPSIS
