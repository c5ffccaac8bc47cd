"""Credentials: sealed at rest, never shown in memory, under a key only its owner can read."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from trickle.core.credentials import (
    CredentialBox,
    Credentials,
    SecretKeyError,
    create_key_file,
    load_key,
    redact,
)

TOKEN = "ghp_s3cr3tT0kenValue1234567890"


def test_sealed_credentials_open_to_the_same_values() -> None:
    box = CredentialBox(Fernet.generate_key())
    creds = Credentials(token=TOKEN, refresh_token="r-456")
    assert dict(box.open(box.seal(creds))) == {"token": TOKEN, "refresh_token": "r-456"}


def test_a_sealed_token_is_not_readable_in_the_stored_bytes() -> None:
    sealed = CredentialBox(Fernet.generate_key()).seal(Credentials(token=TOKEN))
    assert isinstance(sealed, bytes)
    assert TOKEN.encode() not in sealed


def test_sealing_twice_gives_different_ciphertexts() -> None:
    box = CredentialBox(Fernet.generate_key())
    creds = Credentials(token=TOKEN)
    assert box.seal(creds) != box.seal(creds)


def test_the_key_may_be_given_as_text() -> None:
    key = Fernet.generate_key()
    sealed = CredentialBox(key.decode()).seal(Credentials(token=TOKEN))
    assert CredentialBox(key).open(sealed)["token"] == TOKEN


def test_opening_with_another_key_is_a_secret_key_error_without_the_token() -> None:
    sealed = CredentialBox(Fernet.generate_key()).seal(Credentials(token=TOKEN))
    with pytest.raises(
        SecretKeyError, match="cannot be decrypted with the configured secret key"
    ) as caught:
        CredentialBox(Fernet.generate_key()).open(sealed)
    assert TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_opening_damaged_bytes_is_a_secret_key_error() -> None:
    box = CredentialBox(Fernet.generate_key())
    sealed = bytearray(box.seal(Credentials(token=TOKEN)))
    sealed[-5] ^= 0x01
    with pytest.raises(SecretKeyError):
        box.open(bytes(sealed))


@pytest.mark.parametrize(
    "key", ["", "too-short", b"x" * 44, "not base64 at all !!!!!!!!!!!!!!!!!!!!!!!!"]
)
def test_a_key_that_is_not_a_fernet_key_is_refused_with_how_to_make_one(key: str | bytes) -> None:
    with pytest.raises(SecretKeyError, match=r"not a Fernet key .*trickle init"):
        CredentialBox(key)


def test_repr_and_str_show_the_keys_but_never_a_value() -> None:
    creds = Credentials({"token": TOKEN}, secret="hunter2")
    for text in (
        repr(creds),
        str(creds),
        f"{creds}",
        f"{creds!r}",
        repr([creds]),
        repr({"c": creds}),
    ):
        assert TOKEN not in text
        assert "hunter2" not in text
    assert repr(creds) == "Credentials(secret=***, token=***)"


def test_logging_credentials_does_not_log_the_token(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("trickle.test").info("linking with %s", Credentials(token=TOKEN))
    assert "token=***" in caplog.text
    assert TOKEN not in caplog.text


def test_credentials_read_like_a_mapping() -> None:
    creds = Credentials({"token": TOKEN}, user="carol")
    assert creds["token"] == TOKEN
    assert set(creds) == {"token", "user"}
    assert len(creds) == 2
    assert creds.get("missing") is None
    with pytest.raises(KeyError):
        creds["missing"]


def test_secret_values_lists_the_non_empty_values_for_redaction() -> None:
    assert sorted(Credentials(token=TOKEN, user="carol", empty="").secret_values()) == sorted(
        [TOKEN, "carol"]
    )


def test_redact_replaces_every_occurrence_of_every_secret() -> None:
    text = f"GET /?access_token={TOKEN} failed; token {TOKEN} and pw hunter2"
    assert (
        redact(text, [TOKEN, "hunter2", ""])
        == "GET /?access_token=*** failed; token *** and pw ***"
    )


def test_load_key_prefers_the_configured_key_over_the_file(tmp_path: Path) -> None:
    key_file = tmp_path / "trickle.key"
    key_file.write_bytes(b"from-the-file\n")
    assert load_key(" from-the-env \n", key_file) == b"from-the-env"
    assert load_key(None, key_file) == b"from-the-file"
    assert load_key("", key_file) == b"from-the-file"


def test_load_key_without_a_key_or_file_is_none(tmp_path: Path) -> None:
    assert load_key(None, tmp_path / "missing.key") is None


def test_create_key_file_writes_a_usable_key_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "trickle.key"
    key = create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(None, path) == key
    box = CredentialBox(load_key(None, path) or b"")
    assert box.open(CredentialBox(key).seal(Credentials(token=TOKEN)))["token"] == TOKEN


def test_create_key_file_is_owner_only_even_under_a_permissive_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0)
    try:
        create_key_file(tmp_path / "trickle.key")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "trickle.key").stat().st_mode) == 0o600


def test_create_key_file_refuses_to_overwrite_an_existing_key(tmp_path: Path) -> None:
    path = tmp_path / "trickle.key"
    first = create_key_file(path)
    with pytest.raises(SecretKeyError, match="exists already"):
        create_key_file(path)
    assert path.read_bytes().strip() == first
