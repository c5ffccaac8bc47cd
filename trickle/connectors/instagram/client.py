"""instaloader's queries, sent through trickle's HTTP layer; the session as an auth kind.

instaloader (``InstaloaderContext``) knows how Instagram's web client asks
for things: the GraphQL query hashes and their variables, the headers the
web app sends. It sends them on ``requests`` sessions of its own, with a
five-minute timeout, retries of its own and a rate controller that sleeps
for minutes after a 429: nothing a worker polling thousands of accounts in
bounded time can use. :class:`InstaloaderBridge` is an ``InstaloaderContext``
whose ``get_json``, the one funnel of every JSON query instaloader makes
(``graphql_query``, ``doc_id_graphql_query``, ``get_feed_posts``), sends
through the account's :class:`~trickle.connectors.session.AccountSession`
instead: trickle's timeouts, deadline, byte cap, retries, error policy,
redaction and request count. Anything instaloader would send any other way
is refused, not sent.

The account's credentials are its web session's cookies: :class:`SessionCookie`
signs each request with them (``Cookie``, and ``X-CSRFToken`` as the web app
sends it), so no cookie jar ever holds them and nothing else does either.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import requests

from trickle.connectors.auth import Auth, AuthContext, Signed
from trickle.connectors.errors import AuthExpired, PlatformError
from trickle.connectors.session import AccountSession
from trickle.core.credentials import Credentials, redact
from trickle.core.text import printable

try:
    from instaloader import InstaloaderContext
except ImportError as missing:  # the registry shows the connector unavailable, with this
    raise ImportError(
        "the instagram connector needs instaloader: pip install 'trickle[instagram]'"
    ) from missing

log = logging.getLogger(__name__)

INSTAGRAM_HOST = "www.instagram.com"
"""The only host instaloader's web queries go to; the bridge sends them to the API root."""
MAX_COOKIES = 40
MAX_COOKIE_LENGTH = 1024
_COOKIE_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")  # an RFC 6265 token
_COOKIE_VALUE = re.compile(r"^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*$")  # cookie-octets
_NOT_FORWARDED = frozenset({"cookie", "x-csrftoken", "host", "content-length", "connection"})
"""Headers of instaloader's sessions the bridge does not send: the auth kind sends the
cookies, and the HTTP layer frames the request."""


# ---------------------------------------------------------------------------
# The session's cookies


def credentials_from_cookies(cookies: Mapping[str, object]) -> Credentials:
    """Credentials for a web session's cookies (a login's, or a session file's): the
    ``sessionid`` as the access token, the other set cookies as one JSON object in
    ``extra["cookies"]`` (so each is a secret, and the account's id in ``ds_user_id`` is not
    one on its own). Cookies that are not well-formed are refused, by name only."""
    if len(cookies) > MAX_COOKIES:
        raise PlatformError(f"the session has {len(cookies)} cookies: no Instagram session has")
    kept: dict[str, str] = {}
    for name, value in cookies.items():
        if not isinstance(name, str) or not _COOKIE_NAME.match(name):
            raise PlatformError(f"the session has a cookie named {printable(str(name), 40)!r}")
        if not isinstance(value, str) or len(value) > MAX_COOKIE_LENGTH:
            raise PlatformError(f"the session's cookie {name} is not a short text")
        if not _COOKIE_VALUE.match(value):
            raise PlatformError(f"the session's cookie {name} holds characters no cookie may")
        if value:
            kept[name] = value
    session_id = kept.pop("sessionid", "")
    if not session_id:
        raise AuthExpired("the session has no sessionid cookie: it is not logged in")
    extra = {"cookies": json.dumps(kept, sort_keys=True, separators=(",", ":"))} if kept else {}
    return Credentials(access_token=session_id, extra=extra)


def session_cookies(credentials: Credentials) -> dict[str, str]:
    """The cookies :func:`credentials_from_cookies` stored, ``sessionid`` among them."""
    if not credentials.access_token:
        raise AuthExpired("no Instagram session is stored for this account: link it again")
    stored = credentials.extra.get("cookies")
    others: dict[str, str] = {}
    if stored:
        try:
            loaded = json.loads(stored)
        except ValueError:
            loaded = None
        if not isinstance(loaded, dict):
            raise AuthExpired("the stored Instagram session is unreadable: link it again")
        others = {str(k): str(v) for k, v in loaded.items()}
    return {**others, "sessionid": credentials.access_token}


@dataclass(frozen=True)
class SessionCookie(Auth):
    """The account's web session: every cookie of it in ``Cookie``, and its ``csrftoken`` as
    ``X-CSRFToken`` too, as Instagram's web app sends them."""

    def sign(self, credentials: Credentials, context: AuthContext) -> Signed:
        cookies = session_cookies(credentials)
        headers = {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}
        if cookies.get("csrftoken"):
            headers["X-CSRFToken"] = cookies["csrftoken"]
        return Signed(headers=headers)


# ---------------------------------------------------------------------------
# instaloader on trickle's HTTP layer


def instaloader_headers() -> dict[str, str]:
    """The headers instaloader's anonymous sessions send (a browser's user agent, the web
    app's id): what its login sends too. Making them sends nothing."""
    context = InstaloaderContext(sleep=False, quiet=True, iphone_support=False)
    with context.get_anonymous_session() as anonymous:
        return {
            str(name): str(value)
            for name, value in anonymous.headers.items()
            if str(name).lower() not in _NOT_FORWARDED
        }


class _Unsent(requests.Session):
    """The session instaloader holds: it keeps headers (instaloader copies them into each
    query's), but sends nothing. Every request the bridge makes goes through the account's
    session; one that would not is a bug, refused."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> NoReturn:
        raise PlatformError(
            "instagram: instaloader tried to send a request outside trickle's HTTP layer; not sent"
        )


class InstaloaderBridge(InstaloaderContext):
    """An ``InstaloaderContext`` for one account whose JSON queries go through ``session``
    (see the module): instaloader builds the request, trickle sends it."""

    def __init__(self, session: AccountSession) -> None:
        super().__init__(
            sleep=False,  # trickle's scheduler spaces polls; instaloader's naps would not
            quiet=True,
            max_connection_attempts=1,  # the HTTP layer retries, within its deadline
            request_timeout=session.settings.timeout_seconds,
            iphone_support=False,  # i.instagram.com is not asked anything
        )
        self.account = session
        unsent = _Unsent()
        unsent.headers.update(self._session.headers)
        self._session.close()
        self._session = unsent

    def get_json(
        self,
        path: str,
        params: dict[str, Any],
        host: str = INSTAGRAM_HOST,
        session: requests.Session | None = None,
        response_headers: dict[str, Any] | None = None,
        use_post: bool = False,
    ) -> dict[str, Any]:
        """instaloader's query ``GET https://{host}/{path}``, sent as ``GET {api root}/{path}``
        through the account's session with the headers instaloader gives it."""
        where = f"GET /{printable(path, 100)}"
        if use_post or host != INSTAGRAM_HOST:
            raise PlatformError(f"instagram: {where} on {printable(host, 60)} is not sent")
        given = (session or self._session).headers
        headers = {
            str(name): str(value)
            for name, value in given.items()
            if str(name).lower() not in _NOT_FORWARDED
        }
        response = self.account.get("/" + path, params=params, headers=headers)
        if response_headers is not None:
            response_headers.clear()
            response_headers.update(response.headers)
        body = self.account.json(response)
        if not isinstance(body, dict):
            raise PlatformError(f"{where}: malformed payload: (body): expected a JSON object")
        return body

    def error(self, msg: str, repeat_at_end: bool = True) -> None:
        """instaloader's complaints go to the log, redacted, not to stderr."""
        log.warning("instaloader: %s", printable(redact(str(msg), self.account.secrets), 300))
