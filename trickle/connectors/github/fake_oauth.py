"""github.com's OAuth side, as GitHub documents it, for the fake GitHub (:mod:`.fake`).

:class:`FakeGitHub` serves these endpoints on the same 127.0.0.1 origin as its
API, so a test points both ``base_url`` and ``oauth_base_url`` at one fake.
What they do is what GitHub's documentation says (``github/docs``:
``content/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps.md``,
the two ``troubleshooting-*`` pages beside it under ``maintaining-oauth-apps/``,
``content/apps/creating-github-apps/authenticating-with-a-github-app/
generating-a-user-access-token-for-a-github-app.md`` and the REST reference of
``DELETE /applications/{client_id}/token``), quirks included:

- ``POST /login/device/code`` and ``POST /login/oauth/access_token`` answer
  form-encoded (``access_token=gho_...&scope=&token_type=bearer``) unless the
  request says ``Accept: application/json``; their parameters may come in the
  query string or the form body.
- The device flow (opt-in per app: "Enable Device Flow"): a 40-character
  ``device_code``, an 8-character ``user_code`` with a hyphen in the middle,
  ``expires_in`` 900 and ``interval`` 5; polling with the device grant and no
  client secret answers, **with HTTP 200**, ``authorization_pending``,
  ``slow_down`` (5 seconds added to the interval, the new ``interval`` in the
  answer), ``expired_token``, ``access_denied``, ``incorrect_device_code``,
  ``incorrect_client_credentials``, ``device_flow_disabled`` or
  ``unsupported_grant_type``.
- The web flow: ``GET /login/oauth/authorize`` redirects back with a ``code``
  (10 minutes, single use) and the ``state``, or with ``error=access_denied``;
  a ``redirect_uri`` the app's callback URL does not allow sends the browser
  to the *registered callback URL* with ``error=redirect_uri_mismatch``. The
  exchange needs the client secret and answers errors with HTTP 200 too:
  ``incorrect_client_credentials``, ``redirect_uri_mismatch`` and GitHub's
  ``bad_verification_code`` (not RFC 6749's ``invalid_grant``).
- PKCE with ``S256`` only, optional (GitHub's changelog of 2025-07-14; the
  stored docs page still says it is not supported).
- A redirect URI matches the callback URL when its host (or a subdomain of
  it) and port match exactly and its path is the callback's or below it; on
  a loopback callback (``127.0.0.1``, ``::1``) any port is accepted.
- A user who already authorized the app is not asked again: the flow completes
  with every scope they authorized.
- ``DELETE /applications/{client_id}/token`` with the app's credentials in
  HTTP Basic and ``{"access_token": ...}`` revokes one token (204).

Tests play GitHub's users with the test API: :meth:`GitHubOAuth.register_app`,
:meth:`~GitHubOAuth.set_device_flow`, :meth:`~GitHubOAuth.sign_in`,
:meth:`~GitHubOAuth.consent`, :meth:`~GitHubOAuth.enter_code`,
:meth:`~GitHubOAuth.deny_code`, :meth:`~GitHubOAuth.expire_code`,
:meth:`~GitHubOAuth.revoke_grant`, and read :attr:`~GitHubOAuth.tokens_issued`,
:attr:`~GitHubOAuth.tokens_revoked` and :attr:`~GitHubOAuth.slow_downs`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import secrets
import string
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import SplitResult, urlencode, urlsplit, urlunsplit

from trickle.core.clock import clock
from trickle.testing.fakeplatform import FakeResponse, Request

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_CODE_LIFETIME = timedelta(seconds=900)
DEVICE_INTERVAL = 5
SLOW_DOWN_SECONDS = 5
CODE_LIFETIME = timedelta(minutes=10)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1"})
USER_CODE_LETTERS = "BCDFGHJKLMNPQRSTVWXZ"  # RFC 8628 section 6.1: no vowels, no look-alikes
TOKEN_LETTERS = string.ascii_letters + string.digits
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
DEVICE_ERRORS_URI = (
    "https://docs.github.com/developers/apps/authorizing-oauth-apps#error-codes-for-the-device-flow"
)
EXCHANGE_ERRORS_URI = (
    "https://docs.github.com/apps/managing-oauth-apps/"
    "troubleshooting-oauth-app-access-token-request-errors/"
)
AUTHORIZE_ERRORS_URI = (
    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/"
)
REVOKE_DOCS = "https://docs.github.com/rest/apps/oauth-applications#delete-an-app-token"

Consent = Literal["approve", "deny"]
Flow = Literal["device", "web"]


@dataclass
class FakeOAuthApp:
    """An OAuth app registered on the fake GitHub, with the settings its owner can change."""

    client_id: str
    client_secret: str
    callback_url: str
    device_flow: bool = True
    """GitHub's "Enable Device Flow" checkbox: off, the device flow answers
    ``device_flow_disabled``."""


@dataclass
class DeviceAuthorization:
    """One device code and what became of it: entered by a user, denied, spent."""

    device_code: str
    user_code: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: datetime
    interval: int
    last_poll: datetime
    login: str | None = None
    denied: bool = False
    spent: bool = False


@dataclass
class AuthorizationCode:
    """A web flow's code: who approved it, for which redirect URI and PKCE challenge."""

    code: str
    client_id: str
    login: str
    scopes: tuple[str, ...]
    redirect_uri: str | None
    code_challenge: str | None
    expires_at: datetime
    used: bool = False


@dataclass
class IssuedToken:
    """An OAuth token the fake issued to an app for a user (``gho_`` and 36 characters)."""

    token: str
    login: str
    client_id: str
    scopes: tuple[str, ...]
    flow: Flow
    revoked: bool = False


class GitHubOAuth:
    """github.com's OAuth apps, its device and web flows, and token revocation (see the
    module). ``accounts`` says whether a login is a GitHub account, ``origin`` is where the
    fake serves (for the device page's URL); the fake's lock guards every change."""

    def __init__(
        self,
        *,
        accounts: Callable[[str], bool],
        origin: Callable[[], str],
        lock: threading.RLock,
    ) -> None:
        self._accounts = accounts
        self._origin = origin
        self.lock = lock
        self.apps: dict[str, FakeOAuthApp] = {}
        self.issued: list[IssuedToken] = []
        self.tokens_revoked = 0
        """Tokens revoked by their app (``DELETE /applications/{client_id}/token``)."""
        self.slow_downs = 0
        """Device-flow polls answered ``slow_down``."""
        self.signed_in: str | None = None
        self.verifiers: list[str] = []
        """Every PKCE verifier presented at the code exchange (secrets a test looks for)."""
        self.device_interval = DEVICE_INTERVAL
        """The polling interval new device codes are given (GitHub's: 5 seconds)."""
        self._consent: Consent = "approve"
        self._devices: dict[str, DeviceAuthorization] = {}  # by device code
        self._codes: dict[str, AuthorizationCode] = {}
        self._tokens: dict[str, IssuedToken] = {}
        self._grants: dict[tuple[str, str], set[str]] = {}  # (login, client_id): scopes

    # -- the test API --------------------------------------------------------------

    def register_app(
        self,
        client_id: str,
        client_secret: str,
        *,
        callback_url: str = "http://127.0.0.1/callback",
        device_flow: bool = True,
    ) -> FakeOAuthApp:
        """Register an OAuth app, as its owner does at github.com/settings/applications/new
        (a loopback callback URL by default, so any port of 127.0.0.1 is accepted)."""
        app = FakeOAuthApp(client_id, client_secret, callback_url, device_flow)
        with self.lock:
            self.apps[client_id] = app
        return app

    def set_device_flow(self, client_id: str, enabled: bool) -> None:
        """Tick or untick the app's "Enable Device Flow" setting."""
        with self.lock:
            self.apps[client_id].device_flow = enabled

    def delete_app(self, client_id: str) -> None:
        """The owner deleted the app: GitHub no longer knows its client id."""
        with self.lock:
            del self.apps[client_id]

    def sign_in(self, login: str) -> None:
        """The browser that visits the fake's pages is signed in as ``login``."""
        if not self._accounts(login):
            raise LookupError(f"the fake GitHub has no account {login!r}")
        with self.lock:
            self.signed_in = login

    def sign_out(self) -> None:
        """Nobody is signed in: the pages ask the browser to sign in first."""
        with self.lock:
            self.signed_in = None

    def consent(self, answer: Consent) -> None:
        """What the signed-in user answers when the authorization page asks them."""
        with self.lock:
            self._consent = answer

    def enter_code(self, user_code: str, login: str) -> None:
        """``login`` enters ``user_code`` at the device page and authorizes the app."""
        if not self._accounts(login):
            raise LookupError(f"the fake GitHub has no account {login!r}")
        with self.lock:
            device = self._pending_device(user_code)
            device.login = login
            self._grants.setdefault((login, device.client_id), set()).update(device.scopes)

    def deny_code(self, user_code: str) -> None:
        """The user entered ``user_code`` and clicked Cancel: the code is refused for good."""
        with self.lock:
            self._pending_device(user_code).denied = True

    def expire_code(self, user_code: str) -> None:
        """``user_code``'s 15 minutes are over at GitHub (whatever trickle's clock says)."""
        with self.lock:
            self._device_by_user_code(user_code).expires_at = clock.now()

    def revoke_grant(self, login: str, client_id: str) -> None:
        """``login`` revoked the app's access in their settings (Applications, Authorized
        OAuth Apps): every token it holds for them stops working, and the next
        authorization asks them again."""
        with self.lock:
            self._grants.pop((login, client_id), None)
            for issued in self.issued:
                if issued.login == login and issued.client_id == client_id:
                    issued.revoked = True

    @property
    def tokens_issued(self) -> int:
        """How many tokens the fake has issued, by either flow."""
        with self.lock:
            return len(self.issued)

    def tokens_of(self, login: str) -> list[str]:
        """The tokens issued to ``login`` that still work."""
        with self.lock:
            return [t.token for t in self.issued if t.login == login and not t.revoked]

    def token_owner(self, token: str) -> str | None:
        """The login an issued, unrevoked token acts for (the API's authentication)."""
        with self.lock:
            issued = self._tokens.get(token)
            return issued.login if issued is not None and not issued.revoked else None

    # -- POST /login/device/code -------------------------------------------------------

    def device_code(self, request: Request) -> FakeResponse:
        """Step 1 of the device flow: a device code, and the user code to enter at the device
        page. An unknown client id is a 404; an app without the device flow a 400."""
        params = _params(request)
        with self.lock:
            app = self.apps.get(params.get("client_id", ""))
            if app is None:
                return _answer(request, {"error": "Not Found"}, status=404)
            if not app.device_flow:
                return _answer(
                    request,
                    {
                        "error": "device_flow_disabled",
                        "error_description": "Device Flow must be explicitly enabled for this App",
                        "error_uri": DEVICE_ERRORS_URI,
                    },
                    status=400,
                )
            now = clock.now()
            device = DeviceAuthorization(
                device_code=secrets.token_hex(20),
                user_code=self._new_user_code(),
                client_id=app.client_id,
                scopes=_scopes(params.get("scope", "")),
                expires_at=now + DEVICE_CODE_LIFETIME,
                interval=self.device_interval,
                last_poll=now,
            )
            self._devices[device.device_code] = device
        return _answer(
            request,
            {
                "device_code": device.device_code,
                "user_code": device.user_code,
                "verification_uri": f"{self._origin()}/login/device",
                "expires_in": int(DEVICE_CODE_LIFETIME.total_seconds()),
                "interval": device.interval,
            },
        )

    # -- POST /login/oauth/access_token --------------------------------------------------

    def access_token(self, request: Request) -> FakeResponse:
        """The token endpoint of both flows; every error is answered with HTTP 200."""
        params = _params(request)
        grant_type = params.get("grant_type", "")
        with self.lock:
            if grant_type == DEVICE_GRANT:
                return self._device_token(request, params)
            if "device_code" in params or grant_type not in ("", "authorization_code"):
                return _error(
                    request,
                    "unsupported_grant_type",
                    f"The grant type must be {DEVICE_GRANT} for the device flow.",
                    DEVICE_ERRORS_URI,
                )
            return self._code_token(request, params)

    def _device_token(self, request: Request, params: Mapping[str, str]) -> FakeResponse:
        app = self.apps.get(params.get("client_id", ""))
        if app is None:
            return _error(
                request,
                "incorrect_client_credentials",
                "The client_id is not that of an OAuth app.",
                DEVICE_ERRORS_URI,
            )
        if not app.device_flow:
            return _error(
                request,
                "device_flow_disabled",
                "Device Flow must be explicitly enabled for this App",
                DEVICE_ERRORS_URI,
            )
        device = self._devices.get(params.get("device_code", ""))
        if device is None or device.client_id != app.client_id or device.spent:
            return _error(
                request,
                "incorrect_device_code",
                "The device_code provided is not valid.",
                DEVICE_ERRORS_URI,
            )
        now = clock.now()
        if now >= device.expires_at:
            return _error(
                request, "expired_token", "The device_code has expired.", DEVICE_ERRORS_URI
            )
        early = now - device.last_poll < timedelta(seconds=device.interval)
        device.last_poll = now
        if early:
            device.interval += SLOW_DOWN_SECONDS
            self.slow_downs += 1
            return _error(
                request,
                "slow_down",
                "Too many requests have been made in the same timeframe.",
                DEVICE_ERRORS_URI,
                interval=device.interval,
            )
        if device.denied:
            return _error(
                request,
                "access_denied",
                "The authorization request was denied.",
                DEVICE_ERRORS_URI,
            )
        if device.login is None:
            return _error(
                request,
                "authorization_pending",
                "The authorization request is still pending.",
                DEVICE_ERRORS_URI,
            )
        device.spent = True
        return self._token_answer(request, self._issue(device.login, app.client_id, "device"))

    def _code_token(self, request: Request, params: Mapping[str, str]) -> FakeResponse:
        if params.get("code_verifier"):
            self.verifiers.append(params["code_verifier"])
        app = self.apps.get(params.get("client_id", ""))
        if app is None or params.get("client_secret") != app.client_secret:
            return _error(
                request,
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
                EXCHANGE_ERRORS_URI + "#incorrect-client-credentials",
            )
        code = self._codes.get(params.get("code", ""))
        if (
            code is None
            or code.used
            or code.client_id != app.client_id
            or clock.now() >= code.expires_at
            or not _verifier_fits(code.code_challenge, params.get("code_verifier"))
        ):
            return _bad_code(request)
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is not None and not (
            redirect_uri == code.redirect_uri
            if code.redirect_uri is not None
            else redirect_allowed(app.callback_url, redirect_uri)
        ):
            return _error(
                request,
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
                AUTHORIZE_ERRORS_URI + "#redirect-uri-mismatch2",
            )
        code.used = True
        return self._token_answer(request, self._issue(code.login, app.client_id, "web"))

    # -- GET /login/oauth/authorize ----------------------------------------------------

    def authorize(self, request: Request) -> FakeResponse:
        """Step 1 of the web flow, in the browser: a signed-in user approves (302 back with a
        code) or denies (302 back with ``error=access_denied``); nobody signed in, a sign-in
        page; an unknown app, a 404 page."""
        query = request.query
        with self.lock:
            app = self.apps.get(query.get("client_id", ""))
            if app is None:
                return _page(404, "Page not found", "There is no OAuth app with this client ID.")
            state = query.get("state")
            given = query.get("redirect_uri")
            if given is not None and not redirect_allowed(app.callback_url, given):
                return _redirect(
                    app.callback_url,
                    error="redirect_uri_mismatch",
                    error_description=(
                        "The redirect_uri MUST match the registered callback URL for this "
                        "application."
                    ),
                    error_uri=AUTHORIZE_ERRORS_URI + "#redirect-uri-mismatch",
                    state=state,
                )
            back = given or app.callback_url
            challenge = query.get("code_challenge")
            method = query.get("code_challenge_method")
            if (challenge is not None or method is not None) and (
                method != "S256" or challenge is None or len(challenge) != 43
            ):
                return _redirect(
                    back,
                    error="invalid_request",
                    error_description="Only the S256 code_challenge_method is supported, with "
                    "a 43-character code_challenge.",
                    state=state,
                )
            login = self.signed_in
            if login is None:
                return _page(200, "Sign in to GitHub", f"to continue to {app.client_id}")
            requested = set(_scopes(query.get("scope", "")))
            granted = self._grants.get((login, app.client_id))
            if (granted is None or not requested <= granted) and self._consent == "deny":
                return _redirect(
                    back,
                    error="access_denied",
                    error_description="The user has denied your application access.",
                    error_uri=AUTHORIZE_ERRORS_URI + "#access-denied",
                    state=state,
                )
            scopes = self._grants.setdefault((login, app.client_id), set())
            scopes.update(requested)
            code = AuthorizationCode(
                code=secrets.token_hex(10),
                client_id=app.client_id,
                login=login,
                scopes=tuple(sorted(scopes)),
                redirect_uri=given,
                code_challenge=challenge,
                expires_at=clock.now() + CODE_LIFETIME,
            )
            self._codes[code.code] = code
        return _redirect(back, code=code.code, state=state)

    # -- GET and POST /login/device ------------------------------------------------------

    def device_page(self, request: Request) -> FakeResponse:
        """The page a user enters their code at (a form, once signed in)."""
        with self.lock:
            login = self.signed_in
        if login is None:
            return _page(200, "Sign in to GitHub", "to continue to the device activation page")
        form = (
            '<form method="post" action="/login/device">'
            '<input name="user_code" autocomplete="off" placeholder="XXXX-XXXX">'
            '<button name="authorize" value="allow">Authorize</button>'
            '<button name="authorize" value="cancel">Cancel</button></form>'
        )
        signed = html.escape(f"Signed in as {login}.")
        return _page(200, "Device activation", f"{signed} {form}", raw=True)

    def device_submit(self, request: Request) -> FakeResponse:
        """The device page's form: the signed-in user authorizes or cancels a user code."""
        with self.lock:
            login = self.signed_in
        if login is None:
            return _page(200, "Sign in to GitHub", "to continue to the device activation page")
        user_code = request.field("user_code") or ""
        try:
            if request.field("authorize") == "cancel":
                self.deny_code(user_code)
                return _page(200, "Authorization canceled", "The device was not authorized.")
            self.enter_code(user_code, login)
        except LookupError:
            return _page(404, "Code not found", "This code is incorrect or has expired.")
        return _page(200, "Congratulations, you're all set!", "Your device is now connected.")

    # -- DELETE /applications/{client_id}/token -----------------------------------------

    def delete_token(self, request: Request) -> FakeResponse:
        """Revoke one token of the app, authenticated with the app's credentials in HTTP
        Basic: 204; 401 for other credentials, 422 for a body without an ``access_token``,
        404 for a token the app did not issue or that no longer works."""
        client_id = request.path_params.get("client_id", "")
        with self.lock:
            app = self.apps.get(client_id)
            if app is None or _basic(request) != (app.client_id, app.client_secret):
                return FakeResponse(
                    401, {"message": "Bad credentials", "documentation_url": REVOKE_DOCS}
                )
            try:
                body = json.loads(request.body or b"null")
            except ValueError:
                body = None
            token = body.get("access_token") if isinstance(body, dict) else None
            if not isinstance(token, str) or not token:
                return FakeResponse(
                    422,
                    {
                        "message": 'Invalid request.\n\n"access_token" wasn\'t supplied.',
                        "documentation_url": REVOKE_DOCS,
                    },
                )
            issued = self._tokens.get(token)
            if issued is None or issued.client_id != app.client_id or issued.revoked:
                return FakeResponse(404, {"message": "Not Found", "documentation_url": REVOKE_DOCS})
            issued.revoked = True
            self.tokens_revoked += 1
        return FakeResponse(204)

    # -- what the endpoints share --------------------------------------------------------

    def _issue(self, login: str, client_id: str, flow: Flow) -> IssuedToken:
        token = "gho_" + "".join(secrets.choice(TOKEN_LETTERS) for _ in range(36))
        scopes = tuple(sorted(self._grants.get((login, client_id), set())))
        issued = IssuedToken(token, login, client_id, scopes, flow)
        self.issued.append(issued)
        self._tokens[token] = issued
        return issued

    def _token_answer(self, request: Request, issued: IssuedToken) -> FakeResponse:
        return _answer(
            request,
            {
                "access_token": issued.token,
                "token_type": "bearer",
                "scope": ",".join(issued.scopes),
            },
        )

    def _new_user_code(self) -> str:
        taken = {d.user_code for d in self._devices.values()}
        while True:
            letters = "".join(secrets.choice(USER_CODE_LETTERS) for _ in range(8))
            code = f"{letters[:4]}-{letters[4:]}"
            if code not in taken:
                return code

    def _device_by_user_code(self, user_code: str) -> DeviceAuthorization:
        wanted = _normal_user_code(user_code)
        for device in self._devices.values():
            if device.user_code == wanted and not device.spent:
                return device
        raise LookupError(f"no device code waits for the user code {user_code!r}")

    def _pending_device(self, user_code: str) -> DeviceAuthorization:
        device = self._device_by_user_code(user_code)
        if clock.now() >= device.expires_at or device.denied or device.login is not None:
            raise LookupError(f"the user code {user_code!r} has expired or was already used")
        return device


def redirect_allowed(callback_url: str, redirect_uri: str) -> bool:
    """Whether GitHub lets an app with ``callback_url`` send the user to ``redirect_uri``:
    the same scheme; the same host or a subdomain of it, and the same port, except that a
    loopback callback (``127.0.0.1``, ``::1``) takes any port; the callback's path or one
    below it."""
    callback, redirect = urlsplit(callback_url), urlsplit(redirect_uri)
    try:
        ports = (_port(callback), _port(redirect))
    except ValueError:
        return False
    host = (callback.hostname or "").lower()
    given = (redirect.hostname or "").lower()
    if redirect.scheme != callback.scheme or not given or redirect.fragment:
        return False
    if host in LOOPBACK_HOSTS:
        if given != host:
            return False
    elif (given != host and not given.endswith("." + host)) or ports[0] != ports[1]:
        return False
    base = callback.path.rstrip("/")
    path = redirect.path or "/"
    if ".." in path.split("/"):
        return False
    return path == (callback.path or "/") or path.startswith(base + "/")


def _port(parts: SplitResult) -> int:
    """The URL's port, the scheme's default if it names none (ValueError if it is not one)."""
    port = parts.port
    if port is not None:
        return port
    return 443 if parts.scheme == "https" else 80


def _params(request: Request) -> dict[str, str]:
    """The request's parameters: GitHub reads them from the query string or the form body
    (a form field given twice counts as not given)."""
    params = dict(request.query)
    params.update({name: values[0] for name, values in request.form.items() if len(values) == 1})
    return params


def _scopes(scope: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(scope.replace(",", " ").split()))


def _wants_json(request: Request) -> bool:
    accept = (request.header("Accept") or "").lower()
    return "application/json" in accept


def _answer(
    request: Request, fields: Mapping[str, str | int], *, status: int = 200
) -> FakeResponse:
    """An answer of the OAuth endpoints: JSON when asked for, else form-encoded."""
    if _wants_json(request):
        return FakeResponse(status, dict(fields))
    body = urlencode({name: str(value) for name, value in fields.items()})
    return FakeResponse(status, body, {"Content-Type": FORM_TYPE})


def _error(
    request: Request, error: str, description: str, uri: str, **more: str | int
) -> FakeResponse:
    """An OAuth error as GitHub answers it: with HTTP 200."""
    fields: dict[str, str | int] = {
        "error": error,
        "error_description": description,
        "error_uri": uri,
        **more,
    }
    return _answer(request, fields)


def _bad_code(request: Request) -> FakeResponse:
    return _error(
        request,
        "bad_verification_code",
        "The code passed is incorrect or expired.",
        EXCHANGE_ERRORS_URI + "#bad-verification-code",
    )


def _verifier_fits(challenge: str | None, verifier: str | None) -> bool:
    """RFC 7636 section 4.6 for S256; a code issued without a challenge needs no verifier."""
    if challenge is None:
        return True
    if not verifier:
        return False
    digest = hashlib.sha256(verifier.encode("ascii", errors="replace")).digest()
    return secrets.compare_digest(base64.urlsafe_b64encode(digest).rstrip(b"=").decode(), challenge)


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.header("Authorization") or ""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    return (client_id, secret) if colon else None


def _normal_user_code(user_code: str) -> str:
    letters = user_code.replace("-", "").strip().upper()
    return f"{letters[:4]}-{letters[4:]}"


def _redirect(url: str, **query: str | None) -> FakeResponse:
    """A 302 to ``url`` with ``query`` added to any query it has (None values left out)."""
    parts = urlsplit(url)
    extra = urlencode({name: value for name, value in query.items() if value is not None})
    joined = f"{parts.query}&{extra}" if parts.query else extra
    return FakeResponse(302, b"", {"Location": urlunsplit(parts._replace(query=joined))})


def _page(status: int, title: str, text: str, *, raw: bool = False) -> FakeResponse:
    body = text if raw else html.escape(text)
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title></head><body><h1>{html.escape(title)}</h1><p>{body}</p></body></html>"
    )
    return FakeResponse(status, page, {"Content-Type": HTML_TYPE})
