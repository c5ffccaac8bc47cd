"""Credentials: sealed at rest, never shown in memory, under a key only its owner can read."""

from __future__ import annotations

import json
import logging
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import requests
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from trickle.core.credentials import (
    CredentialBox,
    Credentials,
    SecretKeyError,
    contains_secret,
    create_key_file,
    load_key,
    redact,
)

TOKEN = "ghp_s3cr3tT0kenValue1234567890"


def test_sealed_credentials_open_to_the_same_value_whole() -> None:
    box = CredentialBox(Fernet.generate_key())
    creds = Credentials(
        access_token=TOKEN,
        refresh_token="r-456",
        expires_at=datetime(2026, 10, 15, 13, tzinfo=UTC),
        token_secret="ts-789",
        token_type="bearer",
        scopes=("read", "like.read"),
        extra={"session": "blob-1"},
    )
    assert box.open(box.seal(creds)) == creds


def test_the_sealed_form_carries_its_format_version() -> None:
    data = Credentials(access_token=TOKEN).to_json()
    assert data == {"format": 2, "access_token": TOKEN}


def test_credentials_sealed_before_the_typed_form_still_open() -> None:
    key = Fernet.generate_key()
    old = Fernet(key).encrypt(json.dumps({"token": TOKEN}).encode())
    assert CredentialBox(key).open(old) == Credentials(access_token=TOKEN)


def test_a_sealed_form_from_a_newer_trickle_is_a_clear_error() -> None:
    key = Fernet.generate_key()
    newer = Fernet(key).encrypt(json.dumps({"format": 99, "access_token": TOKEN}).encode())
    with pytest.raises(SecretKeyError, match="format 99"):
        CredentialBox(key).open(newer)


def test_expiry_is_read_against_a_given_now() -> None:
    now = datetime(2026, 10, 15, 12, tzinfo=UTC)
    creds = Credentials(access_token=TOKEN, expires_at=now + timedelta(seconds=45))
    assert creds.expires_within(60, now)
    assert not creds.expires_within(30, now)
    assert not Credentials(access_token=TOKEN).expires_within(60, now)  # no expiry: never


def test_a_sealed_token_is_not_readable_in_the_stored_bytes() -> None:
    sealed = CredentialBox(Fernet.generate_key()).seal(Credentials(access_token=TOKEN))
    assert isinstance(sealed, bytes)
    assert TOKEN.encode() not in sealed


def test_sealing_twice_gives_different_ciphertexts() -> None:
    box = CredentialBox(Fernet.generate_key())
    creds = Credentials(access_token=TOKEN)
    assert box.seal(creds) != box.seal(creds)


def test_the_key_may_be_given_as_text() -> None:
    key = Fernet.generate_key()
    sealed = CredentialBox(key.decode()).seal(Credentials(access_token=TOKEN))
    assert CredentialBox(key).open(sealed).access_token == TOKEN


def test_opening_with_another_key_is_a_secret_key_error_without_the_token() -> None:
    sealed = CredentialBox(Fernet.generate_key()).seal(Credentials(access_token=TOKEN))
    with pytest.raises(
        SecretKeyError, match="cannot be decrypted with the configured secret key"
    ) as caught:
        CredentialBox(Fernet.generate_key()).open(sealed)
    assert TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_opening_damaged_bytes_is_a_secret_key_error() -> None:
    box = CredentialBox(Fernet.generate_key())
    sealed = bytearray(box.seal(Credentials(access_token=TOKEN)))
    sealed[-5] ^= 0x01
    with pytest.raises(SecretKeyError):
        box.open(bytes(sealed))


@pytest.mark.parametrize(
    "key", ["", "too-short", b"x" * 44, "not base64 at all !!!!!!!!!!!!!!!!!!!!!!!!"]
)
def test_a_key_that_is_not_a_fernet_key_is_refused_with_how_to_make_one(key: str | bytes) -> None:
    with pytest.raises(SecretKeyError, match=r"not a Fernet key .*trickle init"):
        CredentialBox(key)


def test_repr_and_str_show_the_fields_held_but_never_a_value() -> None:
    creds = Credentials(access_token=TOKEN, token_secret="hunter2", extra={"pin": "4321"})
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
        assert "4321" not in text
    assert repr(creds) == "Credentials(access_token=***, token_secret=***, extra.pin=***)"


def test_logging_credentials_does_not_log_the_token(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("trickle.test").info("linking with %s", Credentials(access_token=TOKEN))
    assert "access_token=***" in caplog.text
    assert TOKEN not in caplog.text


def test_secret_values_lists_the_non_empty_values_for_redaction() -> None:
    creds = Credentials(access_token=TOKEN, refresh_token="", extra={"pin": "4321", "x": ""})
    assert sorted(creds.secret_values()) == sorted([TOKEN, "4321"])


def test_redact_replaces_every_occurrence_of_every_secret() -> None:
    text = f"GET /?access_token={TOKEN} failed; token {TOKEN} and pw hunter2"
    assert (
        redact(text, [TOKEN, "hunter2", ""])
        == "GET /?access_token=*** failed; token *** and pw ***"
    )


def test_a_short_secret_leaves_the_words_it_is_part_of_alone() -> None:
    text = "GET https://api.github.com/user/starred: 401 (token t was refused)"
    assert (
        redact(text, ["t"])
        == "GET https://api.github.com/user/starred: 401 (token *** was refused)"
    )


@pytest.mark.parametrize(
    "text",
    [f"x{TOKEN}", f"{TOKEN}9", f"é{TOKEN}", f"{TOKEN}ß", f"ghp_{TOKEN}suffix"],
)
def test_a_secret_inside_a_longer_run_of_letters_and_digits_is_not_a_match(text: str) -> None:
    assert redact(text, [TOKEN]) == text
    assert not contains_secret(text, [TOKEN])


@pytest.mark.parametrize(
    "text",
    [
        f"_{TOKEN}_",
        f"({TOKEN})",
        f'"{TOKEN}".',
        f"Bearer {TOKEN}\n",
        f"token={TOKEN}&page=2",
        f"{TOKEN}",
    ],
)
def test_a_secret_next_to_anything_but_a_letter_or_digit_is_a_match(text: str) -> None:
    assert TOKEN not in redact(text, [TOKEN])
    assert "***" in redact(text, [TOKEN])
    assert contains_secret(text, [TOKEN])


def test_a_secret_echoed_repr_escaped_by_requests_is_redacted() -> None:
    token = "t0k\r\n"
    with pytest.raises(requests.exceptions.InvalidHeader) as caught:
        requests.Request(
            "GET", "https://x.test", headers={"Authorization": f"Bearer {token}"}
        ).prepare()
    message = str(caught.value)
    assert "t0k\\r\\n" in message  # requests quotes the value with backslash escapes
    assert redact(message, [token]).endswith("'Bearer ***'")
    assert contains_secret(message, [token])


SPECIAL = 'pw/with+special=chars "quoted" \\ back, é and 🚀\t'


@pytest.mark.parametrize(
    "echo",
    [
        json.dumps({"echo": SPECIAL}),
        json.dumps({"echo": SPECIAL}, ensure_ascii=False),
        json.dumps({"echo": SPECIAL}).replace("/", "\\/"),  # PHP's json_encode
        urlencode({"access_token": SPECIAL}),
        quote(SPECIAL, safe=""),
        quote(SPECIAL, safe="").lower(),  # hex digits in lower case
        f"Bearer%20{quote(SPECIAL)}",
        repr(SPECIAL),
        ascii(SPECIAL),
        repr(SPECIAL.encode()),
    ],
)
def test_a_secret_is_found_in_its_escaped_and_encoded_forms(echo: str) -> None:
    assert contains_secret(echo, [SPECIAL])
    redacted = redact(echo, [SPECIAL])
    assert "***" in redacted
    assert not contains_secret(redacted, [SPECIAL])
    for form in ("pw", "special", "quoted", "back"):
        assert form not in redacted


def test_a_secret_without_ascii_letters_or_digits_is_found_too() -> None:
    assert redact("Schlüssel: 日本語!", ["日本語"]) == "Schlüssel: ***!"


def test_the_longest_of_overlapping_secrets_is_replaced_whole() -> None:
    assert redact("refresh=abc-def; access=abc", ["abc", "abc-def"]) == "refresh=***; access=***"


def test_text_without_secrets_is_returned_unchanged() -> None:
    assert redact("GET /user: 404 Not Found", [TOKEN, "", "hunter2"]) == "GET /user: 404 Not Found"
    assert not contains_secret("GET /user: 404 Not Found", [TOKEN])
    assert not contains_secret("anything", [])


_SECRET_CHARS = st.characters(
    categories=("L", "N", "P", "S", "Zs"), exclude_characters="*", max_codepoint=0x1FFFF
)


@given(
    secret=st.text(_SECRET_CHARS, min_size=1, max_size=24),
    separators=st.lists(st.sampled_from([" ", ", ", "\n", "=", ": ", "(", ")"]), min_size=7),
)
def test_no_form_of_a_secret_survives_redaction(secret: str, separators: list[str]) -> None:
    forms = [
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        urlencode({"t": secret})[2:],
        repr(secret)[1:-1],
        repr(secret.encode())[2:-1],
    ]
    separators = [sep for sep in separators if not set(sep) & set(secret)] or ["\n"]
    text = separators[0] + "".join(
        form + separators[i % len(separators)] for i, form in enumerate(forms)
    )
    redacted = redact(text, [secret])
    assert not contains_secret(redacted, [secret])
    assert redacted.count("***") == len(forms)


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
    assert box.open(CredentialBox(key).seal(Credentials(access_token=TOKEN))).access_token == TOKEN


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
