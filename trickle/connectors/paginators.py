"""How a platform says where the next page of likes is: paginators chosen, not written.

A :class:`~trickle.connectors.rest.RestConnector` declares one of these and
the poll loop asks it, after each page, for the next page's request (or
``None`` at the end). Each reads the platform's raw answer (headers and JSON
body) and never the items themselves, because several platforms page by ids
that are not item ids (Mastodon's favourite ids, pnut.io's pagination ids).

- :class:`LinkHeader`: RFC 8288 ``Link: <...>; rel="next"`` (GitHub, Mastodon).
- :class:`NextUrl`: a next-page URL in the body (SoundCloud ``next_href``,
  Vimeo ``paging.next``, which is relative).
- :class:`NextToken`: an opaque token in the body sent back as a parameter
  (X ``meta.next_token`` -> ``pagination_token``, Bluesky ``cursor``).
- :class:`PageNumbers`: numbered pages with a page count (Flickr, whose
  ``pages`` may be a string).
- :class:`BeforeId`: ``before_id`` with ``meta.more`` and ``meta.min_id``
  (pnut.io, App.net).

A URL taken from a platform's answer is followed only on the API's own
origin: the account's credentials go with every request, so a next link to
another host is a :class:`PlatformError`, never a request.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from trickle.connectors.errors import PlatformError
from trickle.core.text import printable

Params = Mapping[str, str | int]


@dataclass(frozen=True)
class PageRequest:
    """Where one page is: a URL, and the query parameters to send with it (``None`` when the
    URL already carries them, as a next link does)."""

    url: str
    params: Params | None = field(default=None)

    def with_params(self, **changes: str | int) -> PageRequest:
        """This request with some parameters set (the others kept)."""
        return replace(self, params={**(self.params or {}), **changes})


class Paginator(abc.ABC):
    """Finds the next page's request in a page's answer."""

    @abc.abstractmethod
    def next_request(
        self, current: PageRequest, response: requests.Response, body: Any
    ) -> PageRequest | None:
        """The request for the page after ``current``, or None when ``current`` was the last.

        ``response`` is the platform's answer to ``current`` and ``body`` its parsed JSON.
        """


def dig(body: Any, path: Sequence[str]) -> Any:
    """The value at ``path`` in a JSON body (``("meta", "next_token")``), or None if absent.

    A value on the way that is not an object is a :class:`PlatformError` naming the path.
    """
    value = body
    for depth, key in enumerate(path):
        if value is None:
            return None
        if not isinstance(value, Mapping):
            where = ".".join(path[:depth]) or "(body)"
            raise PlatformError(f"malformed payload: {where}: expected an object for paging")
        value = value.get(key)
    return value


def same_origin(url: str, base_url: str, *, where: str) -> str:
    """``url`` (resolved against ``base_url``) if it stays on the API's own origin, else a
    :class:`PlatformError`: the account's credentials are sent with every request."""
    resolved = urljoin(base_url + "/", url)
    target, home = urlsplit(resolved), urlsplit(base_url)
    if (target.scheme, target.netloc) != (home.scheme, home.netloc):
        raise PlatformError(
            f"{where}: the next page is on another host ({printable(target.netloc, 100)}); "
            "not following it with the account's credentials"
        )
    return resolved


def _text(value: Any, path: Sequence[str]) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PlatformError(f"malformed payload: {'.'.join(path)}: expected a string for paging")
    return value


def _base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class LinkHeader(Paginator):
    """The ``rel="next"`` URL of the ``Link`` header; no header or no ``next``: last page."""

    def next_request(
        self, current: PageRequest, response: requests.Response, body: Any
    ) -> PageRequest | None:
        url = response.links.get("next", {}).get("url")
        if not url:
            return None
        return PageRequest(same_origin(str(url), _base(current.url), where="Link header"))


@dataclass(frozen=True)
class NextUrl(Paginator):
    """A next-page URL (absolute, or relative to the API root) at ``path`` in the body."""

    path: tuple[str, ...]

    def next_request(
        self, current: PageRequest, response: requests.Response, body: Any
    ) -> PageRequest | None:
        url = _text(dig(body, self.path), self.path)
        if url is None:
            return None
        return PageRequest(same_origin(url, _base(current.url), where=".".join(self.path)))


@dataclass(frozen=True)
class NextToken(Paginator):
    """An opaque token at ``path`` in the body, sent back as the ``param`` query parameter.

    Some platforms repeat the last token on the last page: a token equal to the one just
    sent ends the paging too.
    """

    path: tuple[str, ...]
    param: str

    def next_request(
        self, current: PageRequest, response: requests.Response, body: Any
    ) -> PageRequest | None:
        token = _text(dig(body, self.path), self.path)
        if token is None or (current.params or {}).get(self.param) == token:
            return None
        return current.with_params(**{self.param: token})


@dataclass(frozen=True)
class PageNumbers(Paginator):
    """Numbered pages: the page at ``page_path`` of ``pages_path`` pages (numbers or numeric
    strings), the next one asked for with the ``param`` query parameter."""

    pages_path: tuple[str, ...]
    page_path: tuple[str, ...]
    param: str = "page"

    def next_request(
        self, current: PageRequest, response: requests.Response, body: Any
    ) -> PageRequest | None:
        pages = _number(dig(body, self.pages_path), self.pages_path)
        page = _number(dig(body, self.page_path), self.page_path)
        if pages is None or page is None or page >= pages:
            return None
        return current.with_params(**{self.param: page + 1})


def _number(value: Any, path: Sequence[str]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PlatformError(f"malformed payload: {'.'.join(path)}: expected a page number")
    text = str(value).strip()
    if not text.isdigit() or len(text) > 9:
        raise PlatformError(f"malformed payload: {'.'.join(path)}: expected a page number")
    return int(text)


@dataclass(frozen=True)
class BeforeId(Paginator):
    """App.net-style paging: while ``more_path`` is true, the next page is everything before
    the page's ``min_id_path`` (a paging id, not an item id), sent as ``param``."""

    more_path: tuple[str, ...] = ("meta", "more")
    min_id_path: tuple[str, ...] = ("meta", "min_id")
    param: str = "before_id"

    def next_request(
        self, current: PageRequest, response: requests.Response, body: Any
    ) -> PageRequest | None:
        more = dig(body, self.more_path)
        if more is not True:
            if more not in (None, False):
                where = ".".join(self.more_path)
                raise PlatformError(f"malformed payload: {where}: expected true or false")
            return None
        min_id = dig(body, self.min_id_path)
        if isinstance(min_id, int) and not isinstance(min_id, bool):
            min_id = str(min_id)
        before = _text(min_id, self.min_id_path)
        if before is None or (current.params or {}).get(self.param) == before:
            return None
        return current.with_params(**{self.param: before})
