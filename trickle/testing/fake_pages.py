"""What a person's browser meets at a fake authorization server: its pages, its redirects,
and who is signed in there.

The person is test state (:class:`Browser`): who is signed in at the
platform and whether they allow an app that asks. A test plays the
browser with ``requests`` (``allow_redirects=False``), reads the page or
the redirect, and follows it where it wants to.

Pages are plain HTML with every value escaped (a client id or a state is
the requester's text), never cached, never framed (RFC 6749 section 10.13:
a consent page in a frame is clickjacking) and sent with no referrer (the
address of an authorization page holds a request token, a callback's
holds a code). Redirects keep the query the redirect URI already has and
add their parameters to it (RFC 6749 section 3.1.2).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

from trickle.testing.fakeplatform import FakeResponse

Consent = Literal["approve", "deny"]
"""What the signed-in person answers when an app asks for access."""

PAGE_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1>
{paragraphs}{form}</body></html>
"""


@dataclass
class Browser:
    """The test's browser at the platform: who is signed in there (None: nobody) and what
    they answer when an app asks for access."""

    username: str | None = None
    consent: Consent = "approve"


def page(
    status: int,
    title: str,
    *paragraphs: str,
    form: tuple[str, str] | None = None,
) -> FakeResponse:
    """An HTML page: a title, paragraphs and, with ``form=(action, field)``, a one-field
    form that GETs ``action`` with ``field``; everything escaped."""
    body = "".join(f"<p>{html.escape(text)}</p>\n" for text in paragraphs)
    entry = ""
    if form is not None:
        action, field = form
        entry = (
            f'<form method="get" action="{html.escape(action)}">'
            f'<input name="{html.escape(field)}" autocomplete="off">'
            '<button type="submit">Continue</button></form>\n'
        )
    text = _PAGE.format(title=html.escape(title), paragraphs=body, form=entry)
    return FakeResponse(status, text, dict(PAGE_HEADERS))


def with_query(uri: str, params: Mapping[str, str] | Sequence[tuple[str, str]]) -> str:
    """``uri`` with ``params`` added to the query it already has (its fragment dropped)."""
    parts = urlsplit(uri)
    added = urlencode(list(params.items()) if isinstance(params, Mapping) else list(params))
    query = f"{parts.query}&{added}" if parts.query and added else parts.query or added
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def redirect(uri: str, params: Mapping[str, str] | Sequence[tuple[str, str]]) -> FakeResponse:
    """``302 Found`` to ``uri`` with ``params`` added to its query, never cached."""
    headers = {"Location": with_query(uri, params), "Cache-Control": "no-store"}
    headers["Referrer-Policy"] = "no-referrer"
    return FakeResponse(302, b"", headers)
