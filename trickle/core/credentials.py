"""Linked accounts' credentials: one typed value, encrypted at rest, redacted everywhere else.

:class:`Credentials` holds whatever a platform hands out for an account: an
access token, a refresh token and when the access token expires (OAuth 2),
a token secret (OAuth 1.0a), the scopes granted, and anything a platform adds
(``extra``). It is sealed as a whole, in a versioned JSON form, with Fernet
(from ``cryptography``) under the operator's key, which comes from
``TRICKLE_SECRET_KEY`` or a key file that ``trickle init`` creates readable
only by its owner. Its ``repr`` never shows a value, so a token cannot reach a
log line or an error message by accident.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from cryptography.fernet import Fernet, InvalidToken

from trickle.core.clock import ensure_utc
from trickle.core.errors import TrickleError


class SecretKeyError(TrickleError):
    """No usable key to encrypt or decrypt credentials."""


@dataclass(frozen=True, repr=False)
class Credentials:
    """What trickle holds to act for an account on its platform, never printed."""

    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: datetime | None = None
    """When ``access_token`` stops working (None: it does not expire, or nobody said)."""
    token_secret: str | None = None
    """OAuth 1.0a's token secret."""
    token_type: str | None = None
    scopes: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)
    """Whatever else a platform hands out for the account (a session blob, a DID...); every
    value counts as a secret."""
    issued_by: str | None = None
    """The link flow that obtained them (``token``, ``oauth2``, ``device``...; None: not
    recorded): what unlinking may revoke. Not a secret."""

    FORMAT: ClassVar[int] = 2
    """The version of the sealed JSON form; format 1 was ``{"token": ...}``."""

    def __post_init__(self) -> None:
        if self.expires_at is not None:
            object.__setattr__(self, "expires_at", ensure_utc(self.expires_at))
        object.__setattr__(self, "scopes", tuple(self.scopes))
        object.__setattr__(self, "extra", dict(self.extra))

    def __repr__(self) -> str:
        shown = [name for name in _SECRET_FIELDS if getattr(self, name)]
        shown += [f"extra.{key}" for key in sorted(self.extra)]
        expiry = f", expires_at={self.expires_at.isoformat()}" if self.expires_at else ""
        return "Credentials(" + ", ".join(f"{n}=***" for n in shown) + expiry + ")"

    __str__ = __repr__

    def secret_values(self) -> list[str]:
        """Every secret value held, for redacting them from text that might echo them."""
        values = [getattr(self, name) for name in _SECRET_FIELDS]
        return [v for v in (*values, *self.extra.values()) if v]

    def expires_within(self, seconds: float, now: datetime) -> bool:
        """True when the access token has an expiry and it is less than ``seconds`` away."""
        return self.expires_at is not None and (self.expires_at - now).total_seconds() < seconds

    def changed(self, **changes: Any) -> Credentials:
        """These credentials with some fields replaced."""
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The sealed form: a JSON object with the format version and the fields set."""
        data: dict[str, Any] = {"format": self.FORMAT}
        for name in (*_SECRET_FIELDS, "token_type", "issued_by"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        if self.expires_at is not None:
            data["expires_at"] = self.expires_at.isoformat()
        if self.scopes:
            data["scopes"] = list(self.scopes)
        if self.extra:
            data["extra"] = dict(self.extra)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Credentials:
        """Read the sealed form of any format this trickle knows (format 1: ``{"token": t}``)."""
        version = data.get("format", 1)
        if version == 1:
            return cls(access_token=_text(data.get("token")))
        if version != cls.FORMAT:
            raise SecretKeyError(
                f"stored credentials are in format {version!r}, which this trickle does not "
                "know (were they written by a newer trickle?)"
            )
        expires = data.get("expires_at")
        return cls(
            access_token=_text(data.get("access_token")),
            refresh_token=_text(data.get("refresh_token")),
            expires_at=datetime.fromisoformat(expires) if isinstance(expires, str) else None,
            token_secret=_text(data.get("token_secret")),
            token_type=_text(data.get("token_type")),
            scopes=tuple(str(s) for s in data.get("scopes") or ()),
            extra={str(k): str(v) for k, v in (data.get("extra") or {}).items()},
            issued_by=_text(data.get("issued_by")),
        )


_SECRET_FIELDS = ("access_token", "refresh_token", "token_secret")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def key_fingerprint(key: bytes | str) -> str:
    """A short public name for a key (16 hex digits of a hash of it): stored beside what the
    key sealed, so trickle can tell which key that was without holding it."""
    raw = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(b"trickle key id\0" + raw.strip()).hexdigest()[:16]


class CredentialBox:
    """Seals and opens :class:`Credentials` with one Fernet key."""

    def __init__(self, key: bytes | str) -> None:
        try:
            self._fernet = Fernet(key)
            self.key_id = key_fingerprint(key)
            """The fingerprint of this box's key (see :func:`key_fingerprint`)."""
        except (ValueError, TypeError):
            raise SecretKeyError(
                "the secret key is not a Fernet key (32 url-safe base64-encoded bytes); "
                "create one with `trickle init` or "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())'`"
            ) from None

    def seal(self, credentials: Credentials) -> bytes:
        """Encrypt credentials for storage, as a whole."""
        return self._fernet.encrypt(json.dumps(credentials.to_json(), sort_keys=True).encode())

    def open(self, sealed: bytes) -> Credentials:
        """Decrypt stored credentials; a wrong key is a clear error, not a traceback."""
        try:
            data = json.loads(self._fernet.decrypt(sealed))
        except InvalidToken:
            raise SecretKeyError(
                "stored credentials cannot be decrypted with the configured secret key "
                "(was TRICKLE_SECRET_KEY or the key file changed?)"
            ) from None
        except ValueError:
            raise SecretKeyError("stored credentials are not trickle's sealed JSON") from None
        if not isinstance(data, dict):
            raise SecretKeyError("stored credentials are not trickle's sealed JSON")
        return Credentials.from_json(data)


def load_key(secret_key: str | None, key_file: Path) -> bytes | None:
    """The configured key: ``secret_key`` when set, else the key file's content, else None.

    A key file that exists but cannot be read is a :class:`SecretKeyError` naming it.
    """
    if secret_key:
        return secret_key.strip().encode()
    try:
        return key_file.read_bytes().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SecretKeyError(
            f"cannot read the key file {key_file}: {exc.strerror or type(exc).__name__}"
        ) from None


def create_key_file(path: Path) -> bytes:
    """Write a new key to ``path``, readable and writable by its owner only."""
    key = Fernet.generate_key()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SecretKeyError(f"{path} exists already: it is kept, not overwritten") from None
    except OSError as exc:
        raise SecretKeyError(
            f"cannot create the key file {path}: {exc.strerror or type(exc).__name__}"
        ) from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key


REDACTED = "***"
"""What :func:`redact` puts where a secret stood."""

_ASCII_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")

# A whole token is not preceded by a letter or digit... unless that letter or digit ends
# an escape (``%20``, ``\\n``, ``\\x0a``, ``\\u000a``): the character it stands for
# is what precedes the token.
_WHOLE_START = (
    r"(?:(?<![^\W_])|(?<=%[0-9A-Fa-f]{2})|(?<=\\[nrtbfv0])"
    r"|(?<=\\x[0-9A-Fa-f]{2})|(?<=\\u[0-9A-Fa-f]{4}))"
)
_WHOLE_END = r"(?![^\W_])"


_HEX_ESCAPE = re.compile(r"\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\U[0-9a-fA-F]{8}|%[0-9a-fA-F]{2}")


def _form_pattern(form: str) -> str:
    """A pattern for the literal ``form`` whose hex escapes match in either case."""
    parts = []
    position = 0
    for match in _HEX_ESCAPE.finditer(form):
        escape = match.group()
        head = 1 if escape.startswith("%") else 2
        digits = "".join(f"[{d.upper()}{d.lower()}]" if d.isalpha() else d for d in escape[head:])
        parts += [re.escape(form[position : match.start()]), re.escape(escape[:head]), digits]
        position = match.end()
    parts.append(re.escape(form[position:]))
    return "".join(parts)


def _char_pattern(char: str) -> str:
    """``char`` as it is, or in any of the escaped forms a platform or library echoes it in."""
    if char.isascii() and char.isalnum():
        return char  # no escaping changes an ASCII letter or digit
    utf8 = char.encode("utf-8", "surrogatepass")
    forms = {
        char,
        "".join(f"%{byte:02X}" for byte in utf8),  # percent-encoded (URLs, form bodies)
        repr(char)[1:-1],  # Python's repr, as exception texts quote values
        ascii(char)[1:-1],
        repr(utf8)[2:-1],  # the repr of its bytes
        json.dumps(char)[1:-1],  # JSON
        {" ": "+", "/": "\\/", "'": "\\'", '"': '\\"'}.get(char, char),  # form bodies, PHP
    }
    patterns = sorted(_form_pattern(form) for form in forms)
    return patterns[0] if len(patterns) == 1 else "(?:" + "|".join(patterns) + ")"


def _secret_pattern(secret: str) -> str:
    body = "".join(_char_pattern(char) for char in secret)
    start = _WHOLE_START if secret[0].isalnum() else ""
    end = _WHOLE_END if secret[-1].isalnum() else ""
    return start + body + end


@functools.lru_cache(maxsize=512)
def _matcher(secrets: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern for ``secrets``, the longest first (so a secret containing another wins)."""
    ordered = sorted(set(secrets), key=lambda s: (-len(s), s))
    return re.compile("|".join(_secret_pattern(secret) for secret in ordered))


def _candidates(text: str, secrets: Iterable[str]) -> tuple[str, ...]:
    """The secrets that may occur in ``text``: those whose longest run of ASCII letters and
    digits (which every escaped form keeps as it is) does; a cheap test before the pattern."""
    found = []
    for secret in secrets:
        if not secret:
            continue
        runs = _ASCII_ALNUM_RUN.findall(secret)
        if not runs or max(runs, key=len) in text:
            found.append(secret)
    return tuple(found)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``, exactly.

    A secret is found as it is and in the forms text quoting it tends to hold:
    repr-escaped (``'Bearer t\\r\\n'``, as requests quotes an invalid header),
    JSON-escaped and percent-encoded, each character in any of them. It is found only
    where it stands as a whole token: not inside a longer run of letters and digits, so
    that a short secret such as ``t`` leaves ``https://api.github.com`` alone.
    """
    candidates = _candidates(text, secrets)
    if not candidates:
        return text
    return _matcher(candidates).sub(REDACTED, text)


def contains_secret(text: str, secrets: Iterable[str]) -> bool:
    """True when :func:`redact` would replace something in ``text``: one of ``secrets``
    stands in it as a whole token, as it is or escaped."""
    candidates = _candidates(text, secrets)
    return bool(candidates) and _matcher(candidates).search(text) is not None
