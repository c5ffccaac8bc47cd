"""A made-up OAuth 1.0a platform (RFC 5849) on 127.0.0.1: three legs and a signed likes API.

Flickr and 500px link by OAuth 1.0a; :class:`FakeOAuth1` plays such a
platform strictly, checking every signature with its own implementation of
RFC 5849 section 3.4 (:mod:`trickle.testing.rfc5849`), so it is a check on
what Authlib signs for trickle, not Authlib agreeing with itself:

- ``POST /oauth/request_token`` (section 2.1): signed with the consumer's
  credentials alone, with an ``oauth_callback`` (an absolute ``http(s)``
  URI or ``oob``); answers ``oauth_token``, ``oauth_token_secret`` and
  ``oauth_callback_confirmed=true`` as a form.
- ``GET /oauth/authorize?oauth_token=...`` (section 2.2; Flickr's ``perms``
  of ``read``, ``write`` or ``delete`` if given): the browser's signed-in
  person approves (302 to the callback with ``oauth_token`` and
  ``oauth_verifier``, or a page showing the verifier for ``oob``) or
  refuses (a page saying so, as Flickr does; ``denial="callback"`` sends the
  browser to the callback with ``denied=TOKEN`` instead, as Twitter did). An
  unknown, used or expired request token is a 400 page. An ``oauth_callback``
  in this URL (OAuth 1.0's) is ignored: only the signed one is followed.
- ``POST /oauth/access_token`` (section 2.3): signed with the request token
  and its secret, with the ``oauth_verifier``; a request token is good for
  one exchange and ``request_token_lifetime`` (10 minutes on trickle's clock).
- The likes API (:mod:`~trickle.testing.fake_likes`), signed with the token
  credentials.

Every signed request is checked as section 3.2 says: protocol parameters
from the ``Authorization`` header, the query and a form body, none twice;
``HMAC-SHA1`` only; a known consumer; a timestamp within
``timestamp_window`` seconds of the wall clock (``wall_clock``, what the
client signs with, not trickle's settable clock); a nonce not used before
with that timestamp and token; the right token; the signature. A refusal is
400 or 401 with an ``oauth_problem`` (the OAuth problem reporting
extension's names) in a form body; :attr:`FakeOAuth1.refusals` lists them.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlencode, urlsplit

from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.testing import rfc5849
from trickle.testing.fake_likes import FakeLikesPlatform, FakeOAuthAccount
from trickle.testing.fake_pages import Browser, Consent, page, redirect
from trickle.testing.fakeplatform import Answer, FakeResponse, Request, route

REQUEST_TOKEN_PATH = "/oauth/request_token"  # noqa: S105 - a path, not a secret
AUTHORIZE_PATH = "/oauth/authorize"
ACCESS_TOKEN_PATH = "/oauth/access_token"  # noqa: S105 - a path, not a secret
SIGNATURE_METHOD = "HMAC-SHA1"
PERMS = ("read", "write", "delete")
TIMESTAMP_WINDOW = 300
REQUEST_TOKEN_LIFETIME = timedelta(minutes=10)
REALM = "fake-oauth1"

TokenKind = Literal["none", "request", "access"]
RequestStatus = Literal["issued", "authorized", "denied", "spent"]
Denial = Literal["page", "callback"]


@dataclass
class RequestToken:
    """Temporary credentials (section 2.1): for which consumer, where to send the person
    back, until when, and what became of them."""

    token: str
    secret: str
    consumer_key: str
    callback: str
    expires_at: datetime
    status: RequestStatus = "issued"
    username: str | None = None
    verifier: str | None = None
    perms: str = "read"


@dataclass
class AccessToken:
    """Token credentials (section 2.3): a consumer's access to a person's account."""

    token: str
    secret: str
    consumer_key: str
    username: str
    perms: str = "read"
    revoked: bool = False

    def credentials(self) -> Credentials:
        """The token and its secret as trickle stores them."""
        return Credentials(access_token=self.token, token_secret=self.secret)


@dataclass(frozen=True)
class Refusal:
    """A signed request refused: where, with which ``oauth_problem`` and status."""

    path: str
    problem: str
    status: int


class Refused(Exception):
    """A request the server refuses (section 3.2), with the OAuth problem it reports."""

    def __init__(self, status: int, problem: str, advice: str, **extra: str) -> None:
        super().__init__(f"{problem}: {advice}")
        self.status, self.problem, self.advice, self.extra = status, problem, advice, extra

    def response(self) -> FakeResponse:
        """The problem as a form body; a 401 says how to authenticate."""
        body = urlencode(
            {"oauth_problem": self.problem, "oauth_problem_advice": self.advice, **self.extra}
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.status == 401:
            headers["WWW-Authenticate"] = f'OAuth realm="{REALM}"'
        return FakeResponse(self.status, body, headers)


@dataclass(frozen=True)
class Signed:
    """A request whose signature held: the consumer, its protocol parameters and the token."""

    consumer_key: str
    protocol: dict[str, str]
    request_token: RequestToken | None = None
    access_token: AccessToken | None = None


@dataclass
class _Nonces:
    """Nonces seen, per (consumer, token, timestamp), forgotten once outside the window."""

    seen: dict[tuple[str, str, str, str], int] = field(default_factory=dict)

    def use(self, key: tuple[str, str, str, str], timestamp: int, oldest: int) -> bool:
        for old, at in list(self.seen.items()):
            if at < oldest:
                del self.seen[old]
        if key in self.seen:
            return False
        self.seen[key] = timestamp
        return True


class FakeOAuth1(FakeLikesPlatform):
    """An OAuth 1.0a platform and its likes API on 127.0.0.1 (see the module)."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        timestamp_window: int = TIMESTAMP_WINDOW,
        request_token_lifetime: timedelta = REQUEST_TOKEN_LIFETIME,
        denial: Denial = "page",
    ) -> None:
        super().__init__(latency=latency)
        self.timestamp_window = timestamp_window
        self.request_token_lifetime = request_token_lifetime
        self.denial: Denial = denial
        self.wall_clock: Callable[[], float] = time.time
        """What the server compares ``oauth_timestamp`` with (a test may skew it)."""
        self.consumers: dict[str, str] = {}  # key -> secret
        self.browser = Browser()
        self.request_tokens: list[RequestToken] = []
        """Every request token issued, in order."""
        self.access_tokens: list[AccessToken] = []
        """Every access token issued, in order."""
        self.refusals: list[Refusal] = []
        """Every signed request refused, in order."""
        self._requests: dict[str, RequestToken] = {}
        self._access: dict[str, AccessToken] = {}
        self._nonces = _Nonces()

    # -- setting the scene ---------------------------------------------------------

    def register_consumer(self, key: str, secret: str) -> None:
        """Register an application: its consumer key and secret (Flickr's API key and secret)."""
        with self.lock:
            self.consumers[key] = secret

    def sign_in(self, username: str, *, consent: Consent = "approve") -> None:
        """``username`` is signed in in the test's browser and answers ``consent``."""
        with self.lock:
            if username not in self.accounts:
                raise KeyError(f"no account {username!r} here")
            self.browser = Browser(username, consent)

    def sign_out(self) -> None:
        """Nobody is signed in: the authorization page asks to sign in."""
        with self.lock:
            self.browser = Browser()

    def issue(self, username: str, consumer_key: str, *, perms: str = "read") -> AccessToken:
        """Token credentials of ``username``'s for ``consumer_key``, as the three legs end."""
        with self.lock:
            if consumer_key not in self.consumers:
                raise KeyError(f"no consumer {consumer_key!r} is registered")
            if username not in self.accounts:
                raise KeyError(f"no account {username!r} here")
            issued = AccessToken(
                f"fo1-at-{secrets.token_urlsafe(18)}",
                secrets.token_urlsafe(24),
                consumer_key,
                username,
                perms,
            )
            self._access[issued.token] = issued
            self.access_tokens.append(issued)
            return issued

    def revoke(self, username: str) -> None:
        """The person revoked every application's access: their access tokens are refused."""
        with self.lock:
            for issued in self.access_tokens:
                if issued.username == username:
                    issued.revoked = True

    @property
    def problems(self) -> list[str]:
        """The ``oauth_problem`` of every refusal, in order."""
        with self.lock:
            return [refusal.problem for refusal in self.refusals]

    # -- checking a signed request -----------------------------------------------------

    def verify(self, request: Request, kind: TokenKind) -> Signed:
        """Check a signed request as section 3.2 says (see the module); :class:`Refused`
        if it fails. ``kind``: which token it must carry (none, a request or an access one)."""
        pairs = _parameters(request)
        protocol: dict[str, str] = {}
        for name, value in pairs:
            if name.startswith("oauth_"):
                if name in protocol:
                    raise Refused(400, "parameter_rejected", f"{name} is given more than once")
                protocol[name] = value
        needed = ["oauth_consumer_key", "oauth_signature_method", "oauth_signature"]
        needed += ["oauth_timestamp", "oauth_nonce"]
        if kind != "none":
            needed.append("oauth_token")
        absent = [name for name in needed if not protocol.get(name)]
        if absent:
            raise Refused(
                400, "parameter_absent", "a protocol parameter is missing",
                oauth_parameters_absent="&".join(absent),
            )  # fmt: skip
        if protocol.get("oauth_version", "1.0") != "1.0":
            raise Refused(
                400, "version_rejected", "only OAuth 1.0", oauth_acceptable_versions="1.0-1.0"
            )
        if protocol["oauth_signature_method"] != SIGNATURE_METHOD:
            raise Refused(400, "signature_method_rejected", "only HMAC-SHA1 is accepted")
        if kind == "none" and protocol.get("oauth_token"):
            raise Refused(400, "parameter_rejected", "a request token is asked for without a token")
        with self.lock:
            key = protocol["oauth_consumer_key"]
            consumer_secret = self.consumers.get(key)
            if consumer_secret is None:
                raise Refused(401, "consumer_key_unknown", "no such consumer key")
            timestamp = self._timestamp(protocol["oauth_timestamp"])
            signed = Signed(key, protocol, *self._token(kind, key, protocol.get("oauth_token", "")))
            token_secret = (
                signed.request_token.secret
                if signed.request_token is not None
                else signed.access_token.secret
                if signed.access_token is not None
                else ""
            )
            uri = rfc5849.base_string_uri("http", request.header("Host") or "", request.path)
            covered = [(n, v) for n, v in pairs if n != "oauth_signature"]
            expected = rfc5849.hmac_sha1(
                rfc5849.base_string(request.method, uri, covered), consumer_secret, token_secret
            )
            if not hmac.compare_digest(expected.encode(), protocol["oauth_signature"].encode()):
                raise Refused(401, "signature_invalid", "the signature does not match")
            once = (key, protocol.get("oauth_token", ""), str(timestamp), protocol["oauth_nonce"])
            if not self._nonces.use(once, timestamp, timestamp - 2 * self.timestamp_window):
                raise Refused(401, "nonce_used", "this nonce was used already")
        return signed

    def _timestamp(self, text: str) -> int:
        if not text.isdigit():
            raise Refused(400, "parameter_rejected", "oauth_timestamp is not a number of seconds")
        timestamp, now = int(text), int(self.wall_clock())
        window = self.timestamp_window
        if abs(timestamp - now) > window:
            raise Refused(
                401, "timestamp_refused", "the timestamp is too far from the server's clock",
                oauth_acceptable_timestamps=f"{now - window}-{now + window}",
            )  # fmt: skip
        return timestamp

    def _token(
        self, kind: TokenKind, consumer_key: str, token: str
    ) -> tuple[RequestToken | None, AccessToken | None]:
        """The token a request must carry, checked (under the lock)."""
        if kind == "request":
            issued = self._requests.get(token)
            if issued is None or issued.consumer_key != consumer_key:
                raise Refused(401, "token_rejected", "unknown request token")
            if issued.status == "spent":
                raise Refused(401, "token_used", "the request token was exchanged already")
            if issued.expires_at <= clock.now():
                raise Refused(401, "token_expired", "the request token expired")
            if issued.status == "denied":
                raise Refused(401, "permission_denied", "the user did not allow the application")
            if issued.status != "authorized":
                raise Refused(401, "permission_unknown", "the user has not authorized it yet")
            return issued, None
        if kind == "access":
            access = self._access.get(token)
            if access is None or access.consumer_key != consumer_key:
                raise Refused(401, "token_rejected", "unknown access token")
            if access.revoked:
                raise Refused(401, "token_revoked", "the user revoked the access")
            return None, access
        return None, None

    def _refused(self, request: Request, refused: Refused) -> FakeResponse:
        with self.lock:
            self.refusals.append(Refusal(request.path, refused.problem, refused.status))
        return refused.response()

    # -- the three legs ---------------------------------------------------------------

    @route("POST", REQUEST_TOKEN_PATH)
    def request_token(self, request: Request) -> Answer:
        """``POST /oauth/request_token``: temporary credentials for a signed consumer."""
        try:
            signed = self.verify(request, "none")
            callback = signed.protocol.get("oauth_callback", "")
            if not callback:
                raise Refused(
                    400, "parameter_absent", "oauth_callback is required",
                    oauth_parameters_absent="oauth_callback",
                )  # fmt: skip
            parts = urlsplit(callback)
            if callback != "oob" and (parts.scheme not in ("http", "https") or not parts.netloc):
                raise Refused(400, "parameter_rejected", "oauth_callback is not an absolute URI")
        except Refused as refused:
            return self._refused(request, refused)
        issued = RequestToken(
            f"fo1-rt-{secrets.token_urlsafe(18)}",
            secrets.token_urlsafe(24),
            signed.consumer_key,
            callback,
            clock.now() + self.request_token_lifetime,
        )
        with self.lock:
            self._requests[issued.token] = issued
            self.request_tokens.append(issued)
        body = {
            "oauth_token": issued.token,
            "oauth_token_secret": issued.secret,
            "oauth_callback_confirmed": "true",
        }
        return _form(body)

    @route("GET", AUTHORIZE_PATH)
    def authorize(self, request: Request) -> Answer:
        """``GET /oauth/authorize?oauth_token=...``: the signed-in person's answer."""
        token = request.query.get("oauth_token", "")
        perms = request.query.get("perms", "read")
        with self.lock:
            issued = self._requests.get(token)
            if issued is None:
                return page(400, "Unknown request", "This authorization request is not known here.")
            if issued.status != "issued" or issued.expires_at <= clock.now():
                return page(
                    400, "Expired request", "This authorization request was used or expired."
                )
            if perms not in PERMS:
                return page(400, "Unknown permission", f"There is no permission {perms!r}.")
            person = self.browser
            if person.username is None:
                return page(200, "Sign in", "Sign in to let the application use your account.")
            if person.consent == "deny":
                issued.status = "denied"
                if self.denial == "callback" and issued.callback != "oob":
                    return redirect(issued.callback, {"denied": issued.token})
                return page(200, "Not allowed", "You did not allow the application.")
            issued.status, issued.username, issued.perms = "authorized", person.username, perms
            issued.verifier = secrets.token_urlsafe(12)
        if issued.callback == "oob":
            return page(200, "Allowed", f"Give the application this code: {issued.verifier}")
        return redirect(
            issued.callback, {"oauth_token": issued.token, "oauth_verifier": issued.verifier}
        )

    @route("POST", ACCESS_TOKEN_PATH)
    def access_token(self, request: Request) -> Answer:
        """``POST /oauth/access_token``: token credentials for an authorized request token and
        its verifier."""
        try:
            signed = self.verify(request, "request")
            verifier = signed.protocol.get("oauth_verifier", "")
            issued = signed.request_token
            assert issued is not None
            with self.lock:
                if issued.verifier is None or not hmac.compare_digest(
                    verifier.encode(), issued.verifier.encode()
                ):
                    raise Refused(401, "verifier_invalid", "the verifier is not this token's")
                if issued.status != "authorized" or issued.username is None:
                    raise Refused(401, "token_used", "the request token was exchanged already")
                issued.status = "spent"
                username, perms = issued.username, issued.perms
        except Refused as refused:
            return self._refused(request, refused)
        access = self.issue(username, signed.consumer_key, perms=perms)
        account = self.accounts[username]
        body = {
            "oauth_token": access.token,
            "oauth_token_secret": access.secret,
            "user_nsid": account.id,
            "username": username,
        }
        return _form(body)

    # -- the API -------------------------------------------------------------------------

    def authenticate(self, request: Request) -> FakeOAuthAccount | FakeResponse:
        """The account of a request signed with its token credentials, else the refusal."""
        try:
            signed = self.verify(request, "access")
        except Refused as refused:
            return self._refused(request, refused)
        assert signed.access_token is not None
        return self.accounts[signed.access_token.username]

    def account_key(self, request: Request) -> str | None:
        """API requests are counted per account, by the access token they are signed with."""
        try:
            pairs = rfc5849.parse_authorization(request.header("Authorization") or "") or []
        except ValueError:
            return None
        token = dict(pairs).get("oauth_token", "")
        with self.lock:
            access = self._access.get(token)
            return access.username if access is not None else None


def _parameters(request: Request) -> rfc5849.Pairs:
    """Every parameter of a request as section 3.4.1.3.1 gathers them: the OAuth header's
    (``realm`` aside), the query's and a form body's."""
    try:
        header = rfc5849.parse_authorization(request.header("Authorization") or "") or []
        pairs = [(name, value) for name, value in header if name != "realm"]
        pairs += rfc5849.parse_form(request.query_string)
        if request.is_form:
            pairs += rfc5849.parse_form(request.body.decode())
    except ValueError:
        raise Refused(400, "parameter_rejected", "the parameters cannot be read") from None
    return pairs


def _form(body: dict[str, str]) -> FakeResponse:
    """An answer in ``application/x-www-form-urlencoded``, never cached."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cache-Control": "no-store"}
    return FakeResponse(200, urlencode(body), headers)
