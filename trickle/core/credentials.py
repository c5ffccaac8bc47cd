"""Linked accounts' tokens: encrypted at rest, redacted everywhere else.

Tokens are sealed with Fernet (from ``cryptography``) under the operator's
key, which comes from ``TRICKLE_SECRET_KEY`` or a key file that ``trickle
init`` creates readable only by its owner. In memory a token lives in a
:class:`Credentials` mapping whose ``repr`` never shows a value, so a token
cannot reach a log line or an error message by accident.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from trickle.core.errors import TrickleError


class SecretKeyError(TrickleError):
    """No usable key to encrypt or decrypt credentials."""


class Credentials(Mapping[str, str]):
    """What a connector needs to act for an account (``{"token": ...}``), never printed."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str] | None = None, **kwargs: str) -> None:
        self._values = dict(values or {}, **kwargs)

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return "Credentials(" + ", ".join(f"{k}=***" for k in sorted(self._values)) + ")"

    __str__ = __repr__

    def secret_values(self) -> list[str]:
        """The raw values, for redacting them from text that might echo them."""
        return [v for v in self._values.values() if v]


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
        """Encrypt credentials for storage."""
        return self._fernet.encrypt(json.dumps(dict(credentials), sort_keys=True).encode())

    def open(self, sealed: bytes) -> Credentials:
        """Decrypt stored credentials; a wrong key is a clear error, not a traceback."""
        try:
            return Credentials(json.loads(self._fernet.decrypt(sealed)))
        except InvalidToken:
            raise SecretKeyError(
                "stored credentials cannot be decrypted with the configured secret key "
                "(was TRICKLE_SECRET_KEY or the key file changed?)"
            ) from None


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


def redact(text: str, secrets: list[str]) -> str:
    """Replace every occurrence of a secret in ``text`` with ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
