"""The linking service: every flow a connector declares, run alike for the terminal and the web.

A redirect flow is two calls: :meth:`Linker.authorize` makes the platform's
authorization URL (with an unguessable ``state``, and a PKCE S256 challenge
or an OAuth 1.0a request token) and records the attempt; the platform sends
the user back to the redirect URI, and :meth:`Linker.complete` checks the
``state`` against that record (once: it is deleted), exchanges the code or
verifier for credentials and links the account. The device flow is
:meth:`Linker.start_device` and :meth:`Linker.poll_device` (or
:meth:`Linker.wait_device`, which honours the platform's interval and its
``slow_down``). Nothing is stored half-done: an attempt that fails, is
refused, or expires (after :data:`ATTEMPT_LIFETIME`) links nothing.

OAuth is Authlib's (its OAuth 2 and OAuth 1.0a clients), sending through
trickle's HTTP layer (:class:`~trickle.connectors.auth.TokenTransport`), so
an authorization server is untrusted input like any platform: bounded in
time and size, its messages redacted and escaped. No token, code, verifier
or client secret is ever part of a message.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from authlib.integrations.requests_client import OAuth1Auth
from authlib.integrations.requests_client.oauth2_session import OAuth2ClientAuth
from authlib.oauth1.client import OAuth1Client
from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.client import OAuth2Client
from sqlalchemy import delete, select

from trickle.app import App
from trickle.connectors.auth import MAX_TOKEN_LIFETIME, TokenTransport, credentials_from_token
from trickle.connectors.base import Connector
from trickle.connectors.errors import AuthExpired, ConnectorError
from trickle.connectors.flows import (
    AuthorizationCode,
    DeviceAuthorization,
    LinkFlow,
    LogsIn,
    OAuth1Authorization,
    RegisteredApp,
    SecondFactor,
    SessionLogin,
    on_origin,
)
from trickle.connectors.http import HttpClient, Limits
from trickle.connectors.policy import TOKEN_ENDPOINT_POLICY, Action
from trickle.core.clock import clock
from trickle.core.credentials import Credentials, SecretKeyError, redact
from trickle.core.db import rowcount
from trickle.core.models import AccountStatus, LinkAttempt, LinkedAccount, OAuthApp
from trickle.core.text import printable
from trickle.core.users import get_user
from trickle.linking.accounts import LinkError, LinkResult, check_active, link_account
from trickle.linking.loopback import registered_redirect_uri

ATTEMPT_LIFETIME = timedelta(minutes=10)
"""How long a begun link waits for the user to come back (or enter the device code)."""
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
MAX_SESSION_FILE_BYTES = 64 * 1024
"""The largest session file read (one holds a few cookies: a few hundred bytes)."""
SLOW_DOWN_SECONDS = 5
"""What RFC 8628 adds to the polling interval on every ``slow_down``."""
APP_NAME = "trickle"


@dataclass(frozen=True)
class Authorization:
    """Where to send the user to approve a link, and the ``state`` that comes back with them."""

    url: str
    state: str
    redirect_uri: str
    expires_at: datetime


@dataclass(frozen=True)
class UnlinkResult:
    """The account unlinked, and whether its token was revoked at the platform."""

    account_id: int
    user: str
    platform: str
    handle: str
    revoked: bool
    note: str
    """What became of the token, for the user."""


@dataclass(frozen=True)
class Revocation:
    revoked: bool
    note: str


@dataclass(frozen=True)
class DeviceCode:
    """What the user is shown in the device flow: a code to enter at a URL before it expires;
    ``interval`` is how often trickle may ask whether they have."""

    state: str
    user_code: str
    verification_uri: str
    expires_at: datetime
    interval: int


class Linker:
    """Runs the link flows of every installed connector for one trickle process."""

    def __init__(self, app: App) -> None:
        self.app = app

    # -- which flow ------------------------------------------------------------

    def flows(self, platform: str) -> tuple[LinkFlow, ...]:
        """The flows ``platform``'s connector declares, the preferred first."""
        return tuple(self.app.connector(platform).link_flows)

    def flow(self, platform: str, kind: str | None = None, *, redirects: bool = False) -> LinkFlow:
        """The flow ``kind`` of ``platform``, or (None) the first it declares whose app
        credentials are set (of those through the browser, with ``redirects``); a clear
        error, saying what to register where, when there is none."""
        connector = self.app.connector(platform)
        flows = tuple(f for f in self.flows(platform) if f.redirects or not redirects)
        if not flows:
            how = " through the browser" if redirects else ""
            raise LinkError(f"{platform} declares no way of linking an account{how}")
        if kind is None:
            for flow in flows:
                if not self.missing(connector, flow):
                    return flow
            raise LinkError(self.setup_needed(connector, flows[0]))
        for flow in flows:
            if flow.kind == kind:
                if self.missing(connector, flow):
                    raise LinkError(self.setup_needed(connector, flow))
                return flow
        offered = ", ".join(f.kind for f in flows)
        raise LinkError(f"{platform} cannot be linked with {kind!r} (it offers: {offered})")

    def missing(self, connector: Connector, flow: LinkFlow) -> list[str]:
        """The settings ``flow`` needs that ``connector``'s table does not set."""
        return connector.settings.missing(flow.needs)

    def setup_needed(self, connector: Connector, flow: LinkFlow) -> str:
        """What the operator must do before ``flow`` can run: register the app where, with
        which redirect URI, and which settings to set."""
        platform = connector.name
        keys = self.missing(connector, flow)
        where = f" at {flow.register_at}" if flow.register_at else ""
        redirect = (
            f", with the redirect URI {registered_redirect_uri(self.app.settings.linking)}"
            if flow.redirects
            else ""
        )
        settings = " and ".join(f"[connectors.{platform}] {key}" for key in keys)
        return (
            f"{platform}: linking with {flow.describe()} needs trickle's app registered with "
            f"{connector.display_name}{where}{redirect}; then set {settings} in the settings "
            f"file (or TRICKLE_CONNECTORS__{platform.upper()}__{keys[0].upper()}...)"
        )

    # -- a token made elsewhere ------------------------------------------------

    def import_token(
        self,
        platform: str,
        user: str,
        access_token: str,
        *,
        refresh_token: str | None = None,
        expires_in: int | None = None,
        host: str | None = None,
    ) -> LinkResult:
        """Link the account whose token (and refresh token, valid ``expires_in`` seconds
        more) the user obtained at the platform."""
        self.flow(platform, "token")
        expires_at = None
        if expires_in is not None:
            if not 0 < expires_in <= MAX_TOKEN_LIFETIME.total_seconds():
                raise LinkError("the token's lifetime must be between 1 second and 10 years")
            expires_at = clock.now() + timedelta(seconds=expires_in)
        credentials = Credentials(
            access_token=access_token.strip(),
            refresh_token=refresh_token.strip() if refresh_token else None,
            expires_at=expires_at,
            issued_by="token",
        )
        return link_account(self.app, platform, user, credentials, host=host)

    # -- an app password ---------------------------------------------------------

    def sign_in(self, platform: str, user: str, identifier: str, password: str) -> LinkResult:
        """Link the account ``identifier`` names (a handle) with an app password the user
        made at the platform: the connector signs in once to prove the account is theirs and
        says what to keep; the password is never stored nor shown."""
        flow = self.flow(platform, "app-password")
        self._user_id(user)  # an active user, before the platform is asked anything
        connector = self.app.connector(platform)
        name = connector.display_name
        secrets = [password, password.strip(), *self._secrets(connector)]
        if not identifier.strip() or not password.strip():
            raise LinkError(f"both the {name} account and its app password are needed")
        try:
            signed = connector.sign_in(identifier, password)
        except AuthExpired as exc:
            raise LinkError(
                f"{name} did not accept that app password for {printable(identifier, 100)} "
                f"({redact(str(exc), secrets)}): nothing was linked"
            ) from None
        except ConnectorError as exc:
            raise LinkError(f"{name}: {redact(str(exc), secrets)}: nothing was linked") from None
        return link_account(
            self.app,
            platform,
            user,
            signed.credentials.changed(issued_by=flow.kind),
            identity=signed.identity,
        )

    # -- the platform's own login ---------------------------------------------

    def log_in(
        self, platform: str, user: str, username: str, password: str
    ) -> LinkResult | SecondFactor:
        """Log in to ``platform`` as ``username`` with ``password`` (a :class:`SessionLogin`
        flow) and link the session to ``user``; or the second factor the platform asks for,
        to answer with :meth:`confirm_login`. The password is used once: never stored, and
        redacted from every message."""
        connector, login, flow = self._session_login(platform)
        self._user_id(user)  # an existing, active user, before the platform is asked
        username = username.strip()
        if not username or not password:
            raise LinkError(f"a {connector.display_name} login needs a username and a password")
        try:
            outcome = login.log_in(username, password)
        except ConnectorError as exc:
            raise LinkError(_login_failed(connector, exc, [password])) from None
        if isinstance(outcome, SecondFactor):
            return outcome
        return link_account(self.app, platform, user, outcome.changed(issued_by=flow.kind))

    def confirm_login(
        self, platform: str, user: str, pending: SecondFactor, code: str
    ) -> LinkResult:
        """Finish a login :meth:`log_in` left waiting for the second-factor ``code``."""
        connector, login, flow = self._session_login(platform)
        code = code.strip()
        if not code:
            raise LinkError("no code given: nothing was linked, start the link again")
        try:
            credentials = login.confirm_login(pending, code)
        except ConnectorError as exc:
            secrets = [code, *pending.secret_values()]
            raise LinkError(_login_failed(connector, exc, secrets)) from None
        return link_account(self.app, platform, user, credentials.changed(issued_by=flow.kind))

    def import_session_file(self, platform: str, user: str, data: bytes) -> LinkResult:
        """Link the session of a session file (its bytes) the user made with the platform's
        own client, when the platform's :class:`SessionLogin` flow reads one."""
        connector, login, flow = self._session_login(platform)
        if not flow.session_file:
            raise LinkError(f"{platform} reads no session files")
        if len(data) > MAX_SESSION_FILE_BYTES:
            raise LinkError(
                f"that session file is larger than {MAX_SESSION_FILE_BYTES // 1024} KiB: "
                f"it is not a {connector.display_name} session file"
            )
        self._user_id(user)
        try:
            credentials = login.read_session_file(data)
        except ConnectorError as exc:
            raise LinkError(f"{platform}: {exc}: nothing was linked") from None
        return link_account(self.app, platform, user, credentials.changed(issued_by=flow.kind))

    def _session_login(self, platform: str) -> tuple[Connector, LogsIn, SessionLogin]:
        """The connector of ``platform``, as the one that logs in, and its login flow."""
        connector = self.app.connector(platform)
        flow = self.flow(platform, SessionLogin.kind)
        if not isinstance(flow, SessionLogin) or not isinstance(connector, LogsIn):
            raise LinkError(f"{platform}'s connector cannot log in: it does not implement LogsIn")
        return connector, connector, flow

    # -- unlinking --------------------------------------------------------------

    def unlink(self, platform: str, user: str, account: str | None = None) -> UnlinkResult:
        """Unlink ``user``'s ``platform`` account (``account``: its handle or id, needed when
        they have several): revoke the token where the platform lets trickle, drop the
        stored credentials, stop polling; its flattrs, shares and ledger stay."""
        connector = self.app.connector(platform)
        with self.app.db.reader() as session:
            user_id = get_user(session, user).id
            linked = session.scalars(
                select(LinkedAccount)
                .where(
                    LinkedAccount.user_id == user_id,
                    LinkedAccount.platform == platform,
                    LinkedAccount.status != AccountStatus.UNLINKED.value,
                )
                .order_by(LinkedAccount.id)
            ).all()
        chosen = [a for a in linked if account is None or account in (a.handle, a.platform_user_id)]
        if not chosen:
            which = f" {account!r}" if account else ""
            raise LinkError(f"{user} has no linked {platform} account{which}")
        if len(chosen) > 1:
            handles = ", ".join(a.handle for a in chosen)
            raise LinkError(
                f"{user} has several {platform} accounts ({handles}): say which with --account"
            )
        target = chosen[0]
        revocation = self._revoke_sealed(connector, target)
        with self.app.db.session() as session:
            row = session.get_one(LinkedAccount, target.id, with_for_update=True)
            row.credentials = None
            row.credentials_version = row.credentials_version + 1
            row.key_id = None
            row.status = AccountStatus.UNLINKED.value
            row.next_poll_at = None
            row.last_error = None
            row.failures = 0
        return UnlinkResult(
            account_id=target.id,
            user=user,
            platform=platform,
            handle=target.handle,
            revoked=revocation.revoked,
            note=revocation.note,
        )

    def _revoke_sealed(self, connector: Connector, account: LinkedAccount) -> Revocation:
        name = connector.display_name
        if account.credentials is None:
            return Revocation(False, "no credentials were stored")
        try:
            credentials = self.app.box.open(account.credentials)
        except SecretKeyError:
            return Revocation(
                False,
                f"the stored token cannot be opened with this key, so it was not revoked: "
                f"revoke trickle's access in your {name} settings",
            )
        try:
            revoked = self.revoke(connector, credentials, host=account.host)
        except (ConnectorError, LinkError) as exc:
            return Revocation(
                False,
                f"{name} did not revoke the token ({exc}); revoke trickle's access in your "
                f"{name} settings (trickle's copy is deleted either way)",
            )
        if revoked:
            return Revocation(True, f"the token was revoked at {name}")
        if not credentials.secret_values():
            return Revocation(
                False,
                f"trickle kept no {name} token of this account, so there was none to revoke "
                f"(an app password made for trickle can be deleted in your {name} settings)",
            )
        if credentials.issued_by in (None, "token"):
            return Revocation(False, f"the token was made at {name}: revoke it there")
        return Revocation(
            False, f"{name} offers no revocation: revoke trickle's access in your {name} settings"
        )

    def revoke(self, connector: Connector, credentials: Credentials, host: str | None) -> bool:
        """Revoke ``credentials`` at the platform: the connector's own way, else RFC 7009 at
        the endpoint of the flow that issued them. False when there is no way to."""
        own = connector.revoke(credentials)
        if own is not None:
            return own
        flow = next((f for f in connector.link_flows if f.kind == credentials.issued_by), None)
        token = credentials.access_token
        if token is None or flow is None:
            return False
        settings = connector.settings
        if isinstance(flow, (AuthorizationCode, DeviceAuthorization)) and flow.revoke_url:
            url = on_origin(flow.revoke_url, settings.oauth_base_url)
            client_id, secret = self._client(connector, flow)
            method = flow.client_auth
        elif isinstance(flow, RegisteredApp) and flow.revoke_path and host:
            url = host.rstrip("/") + flow.revoke_path
            client_id = credentials.extra.get("client_id", "")
            secret = credentials.extra.get("client_secret")
            method = "client_secret_post"
        else:
            return False
        client = _OAuth2Client(
            TokenTransport(
                self._http(connector),
                [*self._secrets(connector), token, secret or ""],
                connector.host_guard,
            ),
            client_id=client_id,
            client_secret=secret,
            token_endpoint_auth_method=method if secret else "none",
            revocation_endpoint_auth_method=method if secret else "none",
        )
        response = client.revoke_token(url, token=token, token_type_hint="access_token")  # noqa: S106
        if response.status_code != 200:
            raise LinkError(f"the revocation endpoint answered {response.status_code}")
        return True

    # -- redirect flows --------------------------------------------------------

    def authorize(
        self,
        platform: str,
        user: str | None,
        *,
        redirect_uri: str,
        host: str | None = None,
        kind: str | None = None,
    ) -> Authorization:
        """Begin a redirect flow for ``user``: the URL to send them to, recorded for
        :meth:`complete`. ``host`` is the account's server, for a platform of many. ``user``
        None begins a sign-in: the account that comes back decides the user (see
        :func:`~trickle.linking.accounts.link_account`)."""
        connector = self.app.connector(platform)
        flow = self.flow(platform, kind, redirects=True)
        user_id = self._user_id(user) if user is not None else None
        state = secrets.token_urlsafe(32)
        kept: dict[str, str] = {}
        if isinstance(flow, OAuth1Authorization):
            url, state, kept = self._oauth1_begin(connector, flow, redirect_uri)
        else:
            code_flow, client_id, client_secret = self._code_flow(
                connector, flow, host, redirect_uri
            )
            client = self._oauth2_client(
                connector, code_flow, client_id, client_secret, redirect_uri
            )
            verifier = secrets.token_urlsafe(64) if code_flow.pkce else None
            url, _ = client.create_authorization_url(
                on_origin(code_flow.authorize_url, self._oauth_origin(connector, host, flow)),
                state=state,
                code_verifier=verifier,
                scope=" ".join(code_flow.scopes) or None,
                **dict(code_flow.authorize_params),
            )
            if verifier is not None:
                kept["code_verifier"] = verifier
            if isinstance(flow, RegisteredApp):  # its code is good with this app only
                kept["client_id"] = client_id
                if client_secret:
                    kept["client_secret"] = client_secret
        waited = timedelta(seconds=self.app.settings.linking.timeout_seconds)
        expires_at = self._record(
            platform, user_id, flow, state, redirect_uri, host, kept,
            lifetime=max(ATTEMPT_LIFETIME, waited + timedelta(minutes=1)),
        )  # fmt: skip
        return Authorization(str(url), state, redirect_uri, expires_at)

    def complete(self, redirected: str | Mapping[str, str]) -> LinkResult:
        """Finish a redirect flow from where the platform sent the user back (the whole URL, or
        its query parameters): check the state, exchange the code, link the account."""
        query = _query(redirected)
        # OAuth 1.0a's callback names its request token; a refusal may send it as "denied"
        state = query.get("state") or query.get("oauth_token") or query.get("denied")
        if not state:
            raise LinkError(
                "the address the platform sent back has no state: it is not the answer to a "
                "link begun here"
            )
        attempt, kept = self._claim(state)
        platform = attempt.platform
        connector = self.app.connector(platform)
        flow = self.flow(platform, attempt.flow)
        if "error" in query:
            raise LinkError(_refusal(platform, query))
        if "denied" in query:
            raise LinkError(_refusal(platform, {"error": "access_denied"}))
        user = self._user_name(attempt.user_id) if attempt.user_id is not None else None
        if isinstance(flow, OAuth1Authorization):
            credentials = self._oauth1_finish(connector, flow, attempt, kept, query)
        else:
            code = query.get("code")
            if not code:
                raise LinkError(f"{platform} sent the user back without a code: start again")
            credentials = self._exchange(connector, flow, attempt, kept, code)
        credentials = credentials.changed(issued_by=flow.kind)
        return link_account(self.app, platform, user, credentials, host=attempt.host)

    # -- the device flow -------------------------------------------------------

    def start_device(self, platform: str, user: str) -> DeviceCode:
        """Begin RFC 8628's device flow: the code the user enters, and where."""
        connector = self.app.connector(platform)
        flow = self.flow(platform, "device")
        assert isinstance(flow, DeviceAuthorization)
        user_id = self._user_id(user)
        client_id, client_secret = self._client(connector, flow)
        origin = connector.settings.oauth_base_url
        response = self._http(connector).request(
            "POST",
            on_origin(flow.device_url, origin),
            data={"scope": " ".join(flow.scopes)},
            auth=OAuth2ClientAuth(client_id, client_secret, flow.client_auth),
            headers={"Accept": "application/json"},
            secrets=self._secrets(connector),
            policy=TOKEN_ENDPOINT_POLICY.with_statuses({404: Action.OK}),
        )
        if response.status_code == 404:  # GitHub's answer to a client id it does not know
            raise LinkError(self._unknown_app(connector, flow))
        answer = _json_object(response, platform, "the device code request")
        if answer.get("error") == "device_flow_disabled":
            raise LinkError(self._device_flow_disabled(connector, flow))
        if "error" in answer:
            raise LinkError(
                _refusal(
                    platform, answer, doing="starting the device flow",
                    secrets=self._secrets(connector),
                )
            )  # fmt: skip
        try:
            device_code = _text(answer, "device_code")
            user_code = _text(answer, "user_code")
            uri = answer.get("verification_uri") or answer.get("verification_url")
            lifetime = int(answer.get("expires_in", 900))
            interval = int(answer.get("interval", 5))
        except (TypeError, ValueError, KeyError):
            raise LinkError(
                f"{platform}'s answer to the device code request is malformed"
            ) from None
        if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
            raise LinkError(f"{platform}'s device flow named no page to enter the code at")
        state = secrets.token_urlsafe(32)
        expires_at = self._record(
            platform, user_id, flow, state, None, None, {"device_code": device_code},
            lifetime=timedelta(seconds=max(1, min(lifetime, 3600))),
        )  # fmt: skip
        return DeviceCode(state, user_code, uri, expires_at, max(1, min(interval, 60)))

    def poll_device(self, device: DeviceCode) -> tuple[LinkResult | None, int]:
        """Ask once whether the user has entered the code: (the linked account, or None while
        pending; the interval to wait before asking again)."""
        attempt, kept = self._read(device.state)
        platform = attempt.platform
        connector = self.app.connector(platform)
        flow = self.flow(platform, "device")
        assert isinstance(flow, DeviceAuthorization)
        client = self._oauth2_client(connector, flow, *self._client(connector, flow), None)
        try:
            token = client.fetch_token(
                on_origin(flow.token_url, connector.settings.oauth_base_url),
                grant_type=DEVICE_GRANT,
                device_code=kept["device_code"],
            )
        except OAuth2Error as exc:
            if exc.error == "authorization_pending":
                return None, device.interval
            if exc.error == "slow_down":
                return None, device.interval + SLOW_DOWN_SECONDS
            self._forget(device.state)
            if exc.error == "expired_token":
                raise LinkError(
                    f"the {platform} code expired before it was entered: start the link again"
                ) from None
            if exc.error == "access_denied":
                raise LinkError(
                    f"you did not allow trickle to read your {platform} likes"
                ) from None
            if exc.error == "device_flow_disabled":
                raise LinkError(self._device_flow_disabled(connector, flow)) from None
            if exc.error in ("incorrect_client_credentials", "invalid_client"):
                raise LinkError(self._unknown_app(connector, flow)) from None
            raise LinkError(
                _refusal(
                    platform,
                    {"error": exc.error, "error_description": exc.description},
                    doing="the device flow",
                    secrets=[*self._secrets(connector), kept["device_code"]],
                )
            ) from None
        except (requests.HTTPError, ValueError):
            raise LinkError(
                f"{platform}'s answer in the device flow is not an OAuth token"
            ) from None
        self._forget(device.state)
        credentials = credentials_from_token(token, previous=None, now=clock.now())
        credentials = credentials.changed(issued_by=flow.kind)
        user = self._user_name(attempt.user_id) if attempt.user_id is not None else None
        return link_account(self.app, platform, user, credentials), 0

    def wait_device(
        self,
        device: DeviceCode,
        *,
        sleep: Callable[[float], None] = time.sleep,
        waiting: Callable[[int], None] | None = None,
    ) -> LinkResult:
        """Poll until the user has entered the code, at the platform's interval (lengthened by
        each ``slow_down``), until the code expires; ``waiting(seconds_left)`` is told as it
        goes."""
        interval = device.interval
        while True:
            left = self._seconds_left(device)
            if waiting is not None:
                waiting(left)
            sleep(min(interval, left))
            self._seconds_left(device)
            linked, interval = self.poll_device(
                DeviceCode(
                    device.state, device.user_code, device.verification_uri,
                    device.expires_at, interval,
                )
            )  # fmt: skip
            if linked is not None:
                return linked

    def _unknown_app(self, connector: Connector, flow: LinkFlow) -> str:
        where = f" (see {flow.register_at})" if flow.register_at else ""
        return (
            f"{connector.display_name} knows no app with the client id in "
            f"[connectors.{connector.name}] client_id: check it against the app's settings"
            f"{where}; nothing was linked"
        )

    def _device_flow_disabled(self, connector: Connector, flow: LinkFlow) -> str:
        where = f" at {flow.register_at}" if flow.register_at else ""
        return (
            f"{connector.display_name}'s app does not allow the device flow: the operator must "
            f"enable it in the app's settings{where} (GitHub: tick 'Enable Device Flow'), or "
            "link with another flow; nothing was linked"
        )

    def _seconds_left(self, device: DeviceCode) -> int:
        """Whole seconds until ``device``'s code expires; once it has, a clear error."""
        left = int((device.expires_at - clock.now()).total_seconds())
        if left <= 0:
            self._forget(device.state)
            raise LinkError("the code expired before it was entered: start the link again")
        return left

    # -- what the flows share --------------------------------------------------

    def _code_flow(
        self,
        connector: Connector,
        flow: LinkFlow,
        host: str | None,
        redirect_uri: str,
        app: tuple[str, str | None] | None = None,
    ) -> tuple[AuthorizationCode, str, str | None]:
        """The authorization code flow to run, with the app's client id and secret: the
        connector's settings', or for a RegisteredApp flow ``app`` (the one the link began
        with) or else the app registered on ``host``."""
        if isinstance(flow, AuthorizationCode):
            return flow, *self._client(connector, flow)
        if isinstance(flow, RegisteredApp):
            if not host:
                raise LinkError(f"{connector.name} accounts live on servers: say which one")
            if app is None:
                app = self._registered_app(connector, flow, host, redirect_uri)
            code_flow = AuthorizationCode(
                authorize_url=host.rstrip("/") + flow.authorize_path,
                token_url=host.rstrip("/") + flow.token_path,
                scopes=flow.scopes,
                pkce=flow.pkce,
                client_auth="client_secret_post",
                revoke_url=host.rstrip("/") + flow.revoke_path if flow.revoke_path else None,
            )
            return code_flow, app[0], app[1]
        raise LinkError(f"{connector.name}'s {flow.kind} flow is not an OAuth 2 redirect")

    def _exchange(
        self,
        connector: Connector,
        flow: LinkFlow,
        attempt: LinkAttempt,
        kept: Mapping[str, str],
        code: str,
    ) -> Credentials:
        """The authorization code (and PKCE verifier) exchanged for credentials."""
        redirect_uri = attempt.redirect_uri or ""
        began_with = (kept["client_id"], kept.get("client_secret")) if "client_id" in kept else None
        code_flow, client_id, secret = self._code_flow(
            connector, flow, attempt.host, redirect_uri, began_with
        )
        client = self._oauth2_client(connector, code_flow, client_id, secret, redirect_uri)
        try:
            token = client.fetch_token(
                on_origin(code_flow.token_url, self._oauth_origin(connector, attempt.host, flow)),
                grant_type="authorization_code",
                code=code,
                redirect_uri=redirect_uri,
                **({"code_verifier": kept["code_verifier"]} if "code_verifier" in kept else {}),
            )
        except OAuth2Error as exc:
            if exc.error == "invalid_client" and isinstance(flow, RegisteredApp):
                self._forget_app(connector.name, attempt.host or "", redirect_uri)
                raise LinkError(
                    f"{printable(attempt.host or '', 100)} forgot trickle's app while the link "
                    "was waiting: nothing was linked; start the link again (trickle registers "
                    "a new app)"
                ) from None
            raise LinkError(
                _refusal(
                    connector.name,
                    {"error": exc.error, "error_description": exc.description},
                    doing="exchanging the code",
                    secrets=[*self._secrets(connector), code, secret or "", *kept.values()],
                )
            ) from None
        except (requests.HTTPError, ValueError):
            raise LinkError(
                f"{connector.name}'s answer to the code exchange is not an OAuth token"
            ) from None
        credentials = credentials_from_token(token, previous=None, now=clock.now())
        if isinstance(flow, RegisteredApp):  # the server's app: what revoking the token needs
            app = {"client_id": client_id, **({"client_secret": secret} if secret else {})}
            credentials = credentials.changed(extra={**credentials.extra, **app})
        return credentials

    def _client(
        self, connector: Connector, flow: AuthorizationCode | DeviceAuthorization
    ) -> tuple[str, str | None]:
        """The app's client id, and its secret unless the flow's client is a public one."""
        settings = connector.settings
        client_id = settings.secret("client_id", platform=connector.name)
        if flow.client_auth == "none":
            return client_id, None
        return client_id, settings.secret("client_secret", platform=connector.name)

    def _oauth2_client(
        self,
        connector: Connector,
        flow: AuthorizationCode | DeviceAuthorization,
        client_id: str,
        client_secret: str | None,
        redirect_uri: str | None,
    ) -> OAuth2Client:
        method = flow.client_auth
        pkce = isinstance(flow, AuthorizationCode) and flow.pkce
        return _OAuth2Client(
            self._transport(connector),
            client_id=client_id,
            client_secret=client_secret,
            token_endpoint_auth_method=method if client_secret or method == "none" else "none",
            redirect_uri=redirect_uri,
            code_challenge_method="S256" if pkce else None,
        )

    # -- OAuth 1.0a ------------------------------------------------------------

    def _oauth1_begin(
        self, connector: Connector, flow: OAuth1Authorization, redirect_uri: str
    ) -> tuple[str, str, dict[str, str]]:
        client = self._oauth1_client(connector, redirect_uri=redirect_uri)
        origin = connector.settings.oauth_base_url
        try:
            token = client.fetch_request_token(on_origin(flow.request_token_url, origin))
        except Exception as exc:  # authlib raises its OAuthError, or ValueError on a bad body
            raise LinkError(
                _oauth1_problem(
                    connector.name, exc, "asking for a request token", self._secrets(connector)
                )
            ) from None
        request_token = str(token.get("oauth_token") or "")
        secret = str(token.get("oauth_token_secret") or "")
        if not request_token or not secret:
            raise LinkError(f"{connector.name} gave no request token")
        url = client.create_authorization_url(
            on_origin(flow.authorize_url, origin),
            request_token=request_token,
            **dict(flow.authorize_params),
        )
        return str(url), request_token, {"token_secret": secret}

    def _oauth1_finish(
        self,
        connector: Connector,
        flow: OAuth1Authorization,
        attempt: LinkAttempt,
        kept: Mapping[str, str],
        query: Mapping[str, str],
    ) -> Credentials:
        verifier = query.get("oauth_verifier")
        if not verifier:
            raise LinkError(f"{connector.name} sent the user back without a verifier: start again")
        client = self._oauth1_client(
            connector, token=attempt.state, token_secret=kept.get("token_secret")
        )
        try:
            token = client.fetch_access_token(
                on_origin(flow.access_token_url, connector.settings.oauth_base_url),
                verifier=verifier,
            )
        except Exception as exc:  # authlib's OAuthError, or ValueError on a bad body
            raise LinkError(
                _oauth1_problem(
                    connector.name,
                    exc,
                    "exchanging the verifier",
                    [*self._secrets(connector), verifier, *kept.values()],
                )
            ) from None
        access, secret = token.get("oauth_token"), token.get("oauth_token_secret")
        if not access or not secret:
            raise LinkError(f"{connector.name} gave no access token for the verifier")
        return Credentials(access_token=str(access), token_secret=str(secret))

    def _oauth1_client(
        self,
        connector: Connector,
        *,
        redirect_uri: str | None = None,
        token: str | None = None,
        token_secret: str | None = None,
    ) -> OAuth1Client:
        settings = connector.settings
        return _OAuth1Client(
            self._transport(connector),
            client_id=settings.secret("consumer_key", platform=connector.name),
            client_secret=settings.secret("consumer_secret", platform=connector.name),
            token=token,
            token_secret=token_secret,
            redirect_uri=redirect_uri,
        )

    # -- apps registered per server --------------------------------------------

    def _registered_app(
        self, connector: Connector, flow: RegisteredApp, host: str, redirect_uri: str
    ) -> tuple[str, str | None]:
        """The app trickle holds on ``host`` for ``redirect_uri``: the stored one if the
        server still knows it, else a new registration, stored sealed."""
        platform = connector.name
        with self.app.db.reader() as session:
            stored = session.scalars(
                select(OAuthApp).where(
                    OAuthApp.platform == platform,
                    OAuthApp.host == host,
                    OAuthApp.redirect_uri == redirect_uri,
                )
            ).one_or_none()
        if stored is not None:
            secret = (
                self.app.box.open(stored.client_secret).access_token
                if stored.client_secret
                else None
            )
            if self._app_still_known(connector, flow, host, stored.client_id, secret):
                return stored.client_id, secret
            self._forget_app(platform, host, redirect_uri)
        return self._register(connector, flow, host, redirect_uri)

    def _register(
        self, connector: Connector, flow: RegisteredApp, host: str, redirect_uri: str
    ) -> tuple[str, str | None]:
        response = self._http(connector).request(
            "POST",
            host.rstrip("/") + flow.registration_path,
            data={
                "client_name": APP_NAME,
                "redirect_uris": redirect_uri,
                "scopes": " ".join(flow.scopes),
                "website": "https://github.com/trickle-pay/trickle",
            },
            headers={"Accept": "application/json"},
            secrets=self._secrets(connector),
            policy=TOKEN_ENDPOINT_POLICY,
            guard=connector.host_guard,
        )
        answer = _json_object(response, connector.name, "registering trickle's app")
        client_id = answer.get("client_id")
        secret = answer.get("client_secret")
        if not isinstance(client_id, str) or not client_id:
            raise LinkError(
                f"{printable(host, 100)} did not register trickle's app: is it really a "
                f"{connector.display_name} server?"
            )
        with self.app.db.session() as session:
            session.add(
                OAuthApp(
                    platform=connector.name,
                    host=host,
                    redirect_uri=redirect_uri,
                    client_id=client_id,
                    client_secret=self.app.box.seal(Credentials(access_token=secret))
                    if isinstance(secret, str) and secret
                    else None,
                    key_id=self.app.box.key_id,
                    scopes=" ".join(flow.scopes),
                    registered_at=clock.now(),
                )
            )
        return client_id, secret if isinstance(secret, str) and secret else None

    def _app_still_known(
        self,
        connector: Connector,
        flow: RegisteredApp,
        host: str,
        client_id: str,
        secret: str | None,
    ) -> bool:
        """Whether the server still knows the app: a client-credentials token is granted to
        a known app and refused (``invalid_client``) to one it forgot."""
        client = _OAuth2Client(
            self._transport(connector),
            client_id=client_id,
            client_secret=secret,
            token_endpoint_auth_method="client_secret_post" if secret else "none",
        )
        try:
            client.fetch_token(
                host.rstrip("/") + flow.token_path,
                grant_type="client_credentials",
                scope=" ".join(flow.scopes),
            )
        except OAuth2Error as exc:
            return bool(exc.error != "invalid_client")
        except (requests.HTTPError, ValueError):
            return True  # not a clear "forgotten": try the stored app
        return True

    def _forget_app(self, platform: str, host: str, redirect_uri: str) -> None:
        with self.app.db.session() as session:
            session.execute(
                delete(OAuthApp).where(
                    OAuthApp.platform == platform,
                    OAuthApp.host == host,
                    OAuthApp.redirect_uri == redirect_uri,
                )
            )

    # -- attempts ---------------------------------------------------------------

    def _record(
        self,
        platform: str,
        user_id: int | None,
        flow: LinkFlow,
        state: str,
        redirect_uri: str | None,
        host: str | None,
        kept: Mapping[str, str],
        *,
        lifetime: timedelta = ATTEMPT_LIFETIME,
    ) -> datetime:
        now = clock.now()
        with self.app.db.session() as session:
            session.execute(delete(LinkAttempt).where(LinkAttempt.expires_at < now))
            session.add(
                LinkAttempt(
                    state=state,
                    platform=platform,
                    user_id=user_id,
                    flow=flow.kind,
                    redirect_uri=redirect_uri,
                    host=host,
                    secrets=self.app.box.seal(Credentials(extra=dict(kept))),
                    created_at=now,
                    expires_at=now + lifetime,
                )
            )
        return now + lifetime

    def _read(self, state: str) -> tuple[LinkAttempt, dict[str, str]]:
        with self.app.db.reader() as session:
            attempt = session.get(LinkAttempt, state)
        if attempt is None or attempt.expires_at <= clock.now():
            raise LinkError(
                "this link was not begun here, was already used, or has expired: start again"
            )
        return attempt, dict(self.app.box.open(attempt.secrets).extra)

    def _claim(self, state: str) -> tuple[LinkAttempt, dict[str, str]]:
        """The attempt for ``state``, deleted as it is read: a state is good once."""
        attempt, kept = self._read(state)
        with self.app.db.session() as session:
            taken = rowcount(session.execute(delete(LinkAttempt).where(LinkAttempt.state == state)))
        if not taken:
            raise LinkError("this link was already completed: start again to link once more")
        return attempt, kept

    def cancel(self, state: str) -> None:
        """Forget the attempt ``state`` (the user gave up): its answer will link nothing."""
        self._forget(state)

    def _forget(self, state: str) -> None:
        with self.app.db.session() as session:
            session.execute(delete(LinkAttempt).where(LinkAttempt.state == state))

    def _user_id(self, name: str) -> int:
        """The id of the user a link is begun for: one who exists and is not deactivated."""
        with self.app.db.reader() as session:
            return check_active(get_user(session, name)).id

    def _user_name(self, user_id: int) -> str:
        from trickle.core.models import User

        with self.app.db.reader() as session:
            return session.get_one(User, user_id).name

    def _oauth_origin(self, connector: Connector, host: str | None, flow: LinkFlow) -> str | None:
        """Where the OAuth endpoints are: the account's server for a RegisteredApp flow,
        else the ``oauth_base_url`` setting (a fake in tests) or the platform's own."""
        if isinstance(flow, RegisteredApp):
            return None
        return connector.settings.oauth_base_url

    def _transport(self, connector: Connector) -> TokenTransport:
        """The HTTP layer with the connector's limits, as Authlib's clients use it."""
        return TokenTransport(self._http(connector), self._secrets(connector), connector.host_guard)

    def _http(self, connector: Connector) -> HttpClient:
        return self.app.http.with_limits(Limits.of(connector.settings))

    def _secrets(self, connector: Connector) -> list[str]:
        return connector.settings.secret_values()


class _OAuth2Client(OAuth2Client):  # type: ignore[misc]
    client_auth_class = OAuth2ClientAuth


class _OAuth1Client(OAuth1Client):  # type: ignore[misc]
    auth_class = OAuth1Auth


MAX_SERVER_LENGTH = 300
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


def normalize_server(text: str) -> str:
    """The origin (``https://mastodon.social``) of the server a user named: a host name, or
    an https URL of nothing but a host and port; http only on this machine (a fake server).
    Host names are lowercased and internationalised ones IDNA-encoded."""
    given = text.strip()
    if not given:
        raise LinkError("the server is empty: give its name, e.g. mastodon.social")
    if len(given) > MAX_SERVER_LENGTH:
        raise LinkError(f"that server name is longer than {MAX_SERVER_LENGTH} characters")
    shown = printable(given, 100)
    not_a_server = LinkError(f"{shown} is not a server: give its name, e.g. mastodon.social")
    try:
        parts = urlsplit(given if "://" in given else f"https://{given}")
        host = parts.hostname or ""
    except ValueError:  # brackets that hold no IPv6 address
        raise not_a_server from None
    try:
        port = parts.port
    except ValueError:
        raise LinkError(f"{shown} has a port that is not a number from 0 to 65535") from None
    if (
        parts.scheme not in ("https", "http")
        or not host
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or any(c.isspace() or not c.isprintable() for c in host)
    ):
        raise not_a_server
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise LinkError(f"{shown} is not a valid host name") from None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    if parts.scheme == "http" and host not in _LOOPBACK_HOSTS:
        raise LinkError(f"{shown}: trickle talks to servers over https only")
    return f"{parts.scheme}://{host}{f':{port}' if port is not None else ''}"


def _query(redirected: str | Mapping[str, str]) -> dict[str, str]:
    if isinstance(redirected, Mapping):
        return {str(k): str(v) for k, v in redirected.items()}
    text = redirected.strip()
    if len(text) > 8000:
        raise LinkError("that address is too long to be where the platform sent you back")
    return dict(parse_qsl(urlsplit(text).query, keep_blank_values=True))


def _refusal(
    platform: str,
    answer: Mapping[str, Any],
    *,
    doing: str = "the link",
    secrets: Iterable[str] = (),
) -> str:
    """What the user reads when the platform said no: its error code and description,
    redacted of every secret in play and printed literally."""
    error = printable(str(answer.get("error") or "error"), 60)
    described = answer.get("error_description")
    description = (
        printable(redact(str(described), [s for s in secrets if s]), 200) if described else ""
    )
    if error == "access_denied":
        return f"you did not allow trickle to read your {platform} likes: nothing was linked"
    said = f": {description}" if description else ""
    return f"{platform} refused {doing} ({error}{said}): nothing was linked, start the link again"


def _login_failed(connector: Connector, exc: ConnectorError, secrets: Iterable[str]) -> str:
    """What the user reads when a login failed: the connector's reason, redacted of the
    password (and code, and half-done session) even if a platform echoed it."""
    said = printable(redact(str(exc), [s for s in secrets if s]), 300)
    return f"{connector.display_name} login failed: {said}; nothing was linked"


def _json_object(response: requests.Response, platform: str, what: str) -> dict[str, Any]:
    try:
        answer = response.json()
    except (ValueError, RecursionError):
        answer = None
    if not isinstance(answer, dict):
        raise LinkError(f"{platform}'s answer to {what} is not JSON")
    return answer


def _text(answer: Mapping[str, Any], key: str) -> str:
    value = answer[key]
    if not isinstance(value, str) or not value:
        raise ValueError(key)
    return value


def _oauth1_problem(platform: str, exc: Exception, doing: str, secrets: Iterable[str]) -> str:
    """An OAuth 1.0a server's refusal (Authlib's error carries its ``oauth_problem``)."""
    if isinstance(exc, ConnectorError):
        return f"{platform}: {doing} failed: {exc}"
    return _refusal(
        platform,
        {
            "error": getattr(exc, "error", None) or type(exc).__name__,
            "error_description": getattr(exc, "description", None),
        },
        doing=doing,
        secrets=secrets,
    )
