"""printable: outside text shown as one harmless, bounded line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trickle.core.text import ELLIPSIS, printable


def test_ordinary_text_is_kept_as_it_is() -> None:
    assert printable("Bad credentials") == "Bad credentials"
    assert printable("") == ""


def test_every_script_and_emoji_is_kept() -> None:
    text = "Zugriff verweigert: Grüße, 東京, مرحبا, Ωμέγα 🚀"
    assert printable(text) == text


def test_newline_carriage_return_and_tab_are_escaped_by_name() -> None:
    forged = "Not Found\n2026-10-15 12:00:00 INFO account 7 polled fine\r\t"
    assert printable(forged) == "Not Found\\n2026-10-15 12:00:00 INFO account 7 polled fine\\r\\t"


def test_escape_and_other_c0_controls_are_escaped_as_hex() -> None:
    assert printable("\x1b[2J\x1b]0;pwned\x07\x00") == "\\x1b[2J\\x1b]0;pwned\\x07\\x00"


def test_del_and_the_c1_controls_are_escaped() -> None:
    # \x9b is the one-byte CSI: a terminal takes it for ESC [
    assert printable("a\x7fb\x85c\x9b31md") == "a\\x7fb\\x85c\\x9b31md"


def test_unicode_line_separators_are_escaped() -> None:
    assert printable("one\u2028two\u2029three") == "one\\u2028two\\u2029three"
    assert len(printable("one\u2028two").splitlines()) == 1


def test_bidirectional_overrides_and_isolates_are_escaped() -> None:
    """U+202E reverses what follows on screen: ``alice\u202e00.5`` reads as ``alice5.00``."""
    assert printable("alice\u202e00.5") == "alice\\u202e00.5"
    assert printable("a\u2066b\u2069c\u202ad") == "a\\u2066b\\u2069c\\u202ad"


def test_lone_surrogates_are_escaped_so_the_text_can_be_written_as_utf8() -> None:
    result = printable("bad \ud83d half")
    assert result == "bad \\ud83d half"
    result.encode("utf-8")  # does not raise


def test_a_text_within_the_limit_is_not_cut() -> None:
    assert printable("abcde", 5) == "abcde"


def test_a_longer_text_is_cut_to_the_limit_and_ends_with_an_ellipsis() -> None:
    assert printable("abcdefgh", 5) == "abcd" + ELLIPSIS
    assert len(printable("x" * 10_000, 200)) == 200


def test_the_limit_counts_the_escapes_and_never_splits_one() -> None:
    assert printable("ab\ncd", 5) == "ab\\n" + ELLIPSIS
    assert printable("ab\x1bcd", 5) == "ab" + ELLIPSIS  # \x1b (4 characters) does not fit
    assert printable("\n", 2) == "\\n"


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        printable("abc", limit)


@given(st.text(), st.integers(min_value=1, max_value=300))
def test_the_result_is_always_one_line_of_writable_text_within_the_limit(
    text: str, limit: int
) -> None:
    result = printable(text, limit)
    assert len(result) <= limit
    assert len(result.splitlines()) <= 1
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in result)
    result.encode("utf-8")


@given(st.text(alphabet=st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"))))
def test_text_without_controls_comes_back_unchanged(text: str) -> None:
    assert printable(text) == text
