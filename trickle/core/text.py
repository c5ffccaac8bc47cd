"""Text from outside (a platform, a user, a file) made safe to show: control characters escaped.

A platform's error message, a creator's handle or a user's typing can hold a
newline (which would forge a second log line), an escape sequence (which a
terminal would obey) or any other control character. Everything trickle
shows passes through :func:`printable`, which escapes those and keeps every
other character, so the text reads as it was sent, and only as text.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: str, limit: int | None = None) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\x1b``), cut to ``limit``
    characters (with ``…``) when given."""
    escaped = _CONTROL.sub(_escape, text)
    if limit is not None and len(escaped) > limit:
        return escaped[: max(0, limit - 1)] + "…"
    return escaped
