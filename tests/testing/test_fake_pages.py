"""The fakes' pages escape what they show and are neither cached nor framed; their redirects add
to the query a redirect URI already has."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from trickle.testing.fake_pages import page, redirect, with_query


def test_a_page_escapes_its_title_paragraphs_and_form() -> None:
    answer = page(
        400,
        "<b>title</b>",
        'client "<script>x</script>"',
        form=('/go?a=1&b="2"', 'f"><img'),
    )
    text = str(answer.body)
    assert answer.status == 400
    assert "<script>" not in text
    assert "<b>" not in text
    assert "&lt;script&gt;" in text
    assert 'action="/go?a=1&amp;b=&quot;2&quot;"' in text
    assert 'name="f&quot;&gt;&lt;img"' in text


def test_a_page_is_html_never_cached_framed_or_referred() -> None:
    headers = page(200, "t").headers
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://app.example/cb", [("code", "a b&c"), ("state", "s")]),
        ("https://app.example/cb?from=x", [("from", "x"), ("code", "a b&c"), ("state", "s")]),
        ("https://app.example/cb#frag", [("code", "a b&c"), ("state", "s")]),
    ],
)
def test_a_redirect_adds_its_parameters_to_the_query_already_there(
    uri: str, expected: list[tuple[str, str]]
) -> None:
    answer = redirect(uri, {"code": "a b&c", "state": "s"})
    location = answer.headers["Location"]
    assert answer.status == 302
    assert answer.headers["Cache-Control"] == "no-store"
    assert parse_qsl(urlsplit(location).query) == expected
    assert "#" not in location
    assert location.startswith("https://app.example/cb?")


def test_with_query_of_nothing_leaves_the_uri_as_it_is() -> None:
    assert with_query("http://127.0.0.1:5/cb?x=1", {}) == "http://127.0.0.1:5/cb?x=1"
