"""An OAuth 2 authorization endpoint and the authorization code grant, with PKCE, on 127.0.0.1.

:class:`FakeAuthorizationServer` is :class:`~trickle.testing.fake_oauth.FakeOAuth`
(token endpoint, refresh, revocation, the likes API) with what a person
linking an account goes through, kept strictly to the RFCs so that what
trickle gets wrong shows:

- **The authorization endpoint**, ``GET /oauth/authorize`` (RFC 6749
  section 4.1.1): ``response_type=code``, ``client_id``, ``redirect_uri``,
  ``scope``, ``state``, and PKCE's ``code_challenge`` and
  ``code_challenge_method`` (RFC 7636; S256 only, and required unless
  ``require_pkce`` is off; ``plain``, also when it is the default of a
  challenge sent without a method, is refused). No parameter may come twice.
- **Redirect URIs** are the client's registered ones, matched exactly
  (RFC 6749 section 3.1.2.3), except that an ``http://127.0.0.1/...`` or
  ``http://[::1]/...`` registration matches any port (RFC 8252 section
  7.3); without a ``redirect_uri`` the client must have exactly one, with a
  port. A request whose client is unknown or whose redirect URI does not
  match gets a 400 page and no redirect (section 4.1.2.1); any other bad
  request goes back to the redirect URI with ``error`` (``invalid_request``,
  ``unsupported_response_type``, ``invalid_scope``) and the ``state``.
- **The person** is test state (:meth:`~FakeAuthorizationServer.sign_in`):
  nobody signed in is a sign-in page; signed in, they approve (302 with
  ``code`` and ``state``) or deny (302 with ``error=access_denied`` and
  ``state``). The state is echoed, never checked: that is the client's job.
- **The authorization code grant** (section 4.1.3) at the token endpoint: a
  code is good once (presented again it is ``invalid_grant`` and the tokens
  issued for it are revoked, section 4.1.2), for ``code_lifetime`` (10
  minutes) on trickle's clock, for the client it was issued to and with the
  very ``redirect_uri`` of its authorization request; with a challenge, the
  ``code_verifier`` must be 43 to 128 unreserved characters whose S256 is
  the challenge, and without one no verifier may be sent (RFC 9700 section
  2.1.1: a downgrade). A failed exchange leaves the code as it was.

Tests read :attr:`~FakeAuthorizationServer.codes` (every code issued) and
:attr:`~FakeAuthorizationServer.code_reuses`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Unpack
from urllib.parse import urlsplit

from trickle.core.clock import clock
from trickle.testing.fake_oauth import (
    FakeOAuth,
    Grant,
    OAuthClient,
    OAuthError,
    OAuthOptions,
    TokenSet,
    given,
)
from trickle.testing.fake_pages import Browser, Consent, page, redirect
from trickle.testing.fakeplatform import Answer, FakeResponse, Request, route

AUTHORIZE_PATH = "/oauth/authorize"
CODE_LIFETIME = timedelta(minutes=10)
"""RFC 6749 section 4.1.2 recommends at most ten minutes."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1"})
"""The loopback IP literals of RFC 8252 section 7.3 (``localhost`` is not one: section 8.3)."""

_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # BASE64URL of 32 bytes, no padding
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 section 4.1
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 section 3.3


def redirect_uri_matches(registered: str, uri: str) -> bool:
    """Whether ``uri`` is the registered redirect URI ``registered``: the same string (RFC
    6749 section 3.1.2.3), or for a loopback IP registration the same but for the port
    (RFC 8252 section 7.3: a native app listens on whichever port is free)."""
    if uri == registered:
        return True
    mine, theirs = urlsplit(registered), urlsplit(uri)
    try:
        theirs.port  # noqa: B018 - a port out of range is no URI
    except ValueError:
        return False
    if mine.scheme != "http" or mine.hostname not in LOOPBACK_HOSTS:
        return False
    return (
        theirs.scheme == "http"
        and theirs.hostname == mine.hostname
        and theirs.username is None
        and theirs.password is None
        and (theirs.path, theirs.query) == (mine.path, mine.query)
        and not theirs.fragment
        and "#" not in uri
    )


def s256(verifier: str) -> str:
    """RFC 7636 section 4.2: ``BASE64URL(SHA256(ASCII(code_verifier)))``."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class IssuedCode:
    """An authorization code: to whom and where it was sent, for what, and what became of it."""

    code: str
    client_id: str
    username: str
    redirect_uri: str
    redirect_uri_given: bool
    """True when the authorization request named it: the token request must then too."""
    scope: tuple[str, ...]
    challenge: str | None
    expires_at: datetime
    spent: bool = False
    grant: Grant | None = None
    """The grant its exchange created (revoked if the code is presented again)."""


class AuthorizeOptions(OAuthOptions, total=False):
    """:class:`FakeAuthorizationServer`'s keyword arguments, for the subclasses that pass
    them on."""

    require_pkce: bool
    code_lifetime: timedelta


class FakeAuthorizationServer(FakeOAuth):
    """FakeOAuth with an authorization endpoint and the authorization code grant (see the
    module)."""

    def __init__(
        self,
        *,
        require_pkce: bool = True,
        code_lifetime: timedelta = CODE_LIFETIME,
        **options: Unpack[OAuthOptions],
    ) -> None:
        super().__init__(**options)
        self.require_pkce = require_pkce
        self.code_lifetime = code_lifetime
        self.browser = Browser()
        self.codes: list[IssuedCode] = []
        """Every code issued, in order."""
        self.code_reuses = 0
        """Codes presented again after their exchange."""
        self.grant_types["authorization_code"] = self._code_grant
        self._codes: dict[str, IssuedCode] = {}

    # -- the person at the browser -----------------------------------------------

    def sign_in(self, username: str, *, consent: Consent = "approve") -> None:
        """``username`` is signed in at the platform in the test's browser and answers
        ``consent`` when an app asks for access."""
        with self.lock:
            if username not in self.accounts:
                raise KeyError(f"no account {username!r} here")
            self.browser = Browser(username, consent)

    def sign_out(self) -> None:
        """Nobody is signed in: the authorization endpoint shows its sign-in page."""
        with self.lock:
            self.browser = Browser()

    def covers(self, granted: Iterable[str], scope: str) -> bool:
        """Whether the scopes ``granted`` include ``scope`` (here: as one of them)."""
        return scope in set(granted)

    # -- the authorization endpoint ------------------------------------------------

    @route("GET", AUTHORIZE_PATH)
    def authorize(self, request: Request) -> Answer:
        """``GET /oauth/authorize``: the client and its redirect URI first (a 400 page when
        either is wrong), then the request (errors go back to the client), then the person."""
        pairs = [(name, value) for name, value in request.query_pairs if value != ""]
        counts = Counter(name for name, _ in pairs)
        params = dict(pairs)
        for name in ("client_id", "redirect_uri"):
            if counts[name] > 1:
                return refusal(f"The parameter {name} is given more than once.")
        client_id = params.get("client_id")
        if client_id is None:
            return refusal("The request names no application (client_id is missing).")
        with self.lock:
            client = self.clients.get(client_id)
        if client is None:
            return refusal(f"No application {client_id!r} is registered here.")
        target = _redirect_target(client, params.get("redirect_uri"))
        if isinstance(target, FakeResponse):
            return target
        back = _Back(target, params.get("state"))
        repeated = sorted(name for name, count in counts.items() if count > 1)
        try:
            if repeated:
                raise OAuthError("invalid_request", f"{repeated[0]} is repeated")
            response_type = params.get("response_type")
            if response_type is None:
                raise OAuthError("invalid_request", "response_type is missing")
            if response_type != "code":
                raise OAuthError("unsupported_response_type", f"{response_type} is not offered")
            scope = self.requested_scope(client, params.get("scope"))
            challenge = self._challenge(params)
        except OAuthError as error:
            return back.error(error.error, error.description)
        with self.lock:
            person = self.browser
            if person.username is None:
                return page(
                    200,
                    "Sign in",
                    f"Sign in to let {client_id} use your account.",
                )
            if person.consent == "deny":
                return back.error("access_denied", "the user did not allow the application")
            issued = IssuedCode(
                code=f"fo-code-{secrets.token_urlsafe(24)}",
                client_id=client_id,
                username=person.username,
                redirect_uri=target,
                redirect_uri_given="redirect_uri" in params,
                scope=scope,
                challenge=challenge,
                expires_at=clock.now() + self.code_lifetime,
            )
            self._codes[issued.code] = issued
            self.codes.append(issued)
        return back.answer({"code": issued.code})

    def requested_scope(self, client: OAuthClient, asked: str | None) -> tuple[str, ...]:
        """The scope asked for (RFC 6749 section 3.3: space-separated tokens; absent: the
        default, :attr:`scope`), each offered here and allowed to the client; else
        ``invalid_scope``."""
        tokens = tuple(asked.split(" ")) if asked is not None else self.scope
        if not all(_SCOPE_TOKEN.fullmatch(token) for token in tokens):
            raise OAuthError("invalid_scope", "the scope is not space-separated scope tokens")
        for token in tokens:
            if not self.covers(self.offered_scopes, token):
                raise OAuthError("invalid_scope", f"{token} is not a scope offered here")
            if client.scopes is not None and not self.covers(client.scopes, token):
                raise OAuthError("invalid_scope", f"{token} is not a scope of this client")
        return tuple(dict.fromkeys(tokens))

    def _challenge(self, params: dict[str, str]) -> str | None:
        """The PKCE challenge of an authorization request (RFC 7636 section 4.3), if any."""
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if challenge is None:
            if method is not None:
                raise OAuthError("invalid_request", "code_challenge_method without a challenge")
            if self.require_pkce:
                raise OAuthError("invalid_request", "PKCE is required: send a S256 challenge")
            return None
        if method != "S256":
            named = method or "plain (the default)"
            raise OAuthError("invalid_request", f"code_challenge_method {named} is refused: S256")
        if not _CHALLENGE.fullmatch(challenge):
            raise OAuthError("invalid_request", "the code_challenge is not a BASE64URL SHA-256")
        return challenge

    # -- the authorization code grant ------------------------------------------

    def _code_grant(self, request: Request, client: OAuthClient) -> TokenSet:
        """``grant_type=authorization_code`` (RFC 6749 section 4.1.3, RFC 7636 section 4.6)."""
        code = given(request, "code")
        if not code:
            raise OAuthError("invalid_request", "code is missing")
        redirect_uri = given(request, "redirect_uri")
        verifier = given(request, "code_verifier")
        with self.lock:
            issued = self._codes.get(code)
            if issued is None or issued.client_id != client.client_id:
                raise OAuthError("invalid_grant", "unknown authorization code")
            if issued.spent:
                self.code_reuses += 1
                if issued.grant is not None:
                    issued.grant.revoked = True
                raise OAuthError(
                    "invalid_grant", "the code was used already: its tokens are revoked"
                )
            if issued.expires_at <= clock.now():
                raise OAuthError("invalid_grant", "the authorization code expired")
            if issued.redirect_uri_given and redirect_uri is None:
                raise OAuthError("invalid_request", "redirect_uri is missing")
            if redirect_uri is not None and redirect_uri != issued.redirect_uri:
                raise OAuthError("invalid_grant", "redirect_uri is not the authorization's")
            _check_verifier(issued.challenge, verifier)
            issued.spent = True
            grant = self.new_grant(self.accounts[issued.username], client.client_id, issued.scope)
            issued.grant = grant
            return self.tokens(grant, issued.scope, from_refresh=False)


def _check_verifier(challenge: str | None, verifier: str | None) -> None:
    if challenge is None:
        if verifier is not None:
            raise OAuthError("invalid_grant", "a code_verifier for a code without a challenge")
        return
    if verifier is None:
        raise OAuthError("invalid_grant", "code_verifier is missing")
    if not _VERIFIER.fullmatch(verifier):
        raise OAuthError("invalid_grant", "the code_verifier is not 43 to 128 unreserved chars")
    if not hmac.compare_digest(s256(verifier), challenge):
        raise OAuthError("invalid_grant", "the code_verifier does not match the challenge")


def refusal(text: str) -> FakeResponse:
    """The 400 page of an authorization request that cannot be answered by a redirect."""
    return page(400, "This request cannot be answered", text, "Nothing was sent back.")


def _redirect_target(client: OAuthClient, asked: str | None) -> str | FakeResponse:
    """Where to send the browser back: the redirect URI asked for if it is registered, or
    the client's only one; else the 400 page (RFC 6749 section 3.1.2.3)."""
    registered = client.redirect_uris
    if not registered:
        return refusal(f"{client.client_id} has registered no redirect URI.")
    if asked is not None:
        if any(redirect_uri_matches(uri, asked) for uri in registered):
            return asked
        return refusal(f"The redirect URI {asked!r} is not registered for {client.client_id}.")
    if len(registered) == 1 and urlsplit(registered[0]).hostname not in LOOPBACK_HOSTS:
        return registered[0]
    return refusal(f"The request must name one of {client.client_id}'s redirect URIs.")


@dataclass(frozen=True)
class _Back:
    """The way back to the client: its redirect URI, and the state to echo."""

    uri: str
    state: str | None

    def answer(self, params: dict[str, str]) -> FakeResponse:
        if self.state is not None:
            params["state"] = self.state
        return redirect(self.uri, params)

    def error(self, error: str, description: str) -> FakeResponse:
        return self.answer({"error": error, "error_description": description})
