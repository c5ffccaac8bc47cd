"""One account's way to its platform: the connector's HTTP client, auth and policy, bound together.

A connector never handles an account's secrets itself. It is handed an
:class:`AccountSession`, and every request it makes through it is signed by
the connector's auth kind, bounded by its HTTP limits, read through its error
policy, counted, and redacted of every secret involved (the account's and the
operator's). The session reads the rate-limit headers of every answer, so the
worker sees how much budget a poll left, not only when it ran out.

Credentials that expire are renewed here, in one place: before a request
when they are about to expire, and once after a 401. The order is fixed:
**refresh, save, retry**. The renewed credentials are handed to ``save``
(the worker's writes them sealed in their own committed transaction, guarded
by the account's lease and the credentials' version) *before* the request is
retried with them, so a single-use refresh token that the platform has just
rotated is never held only in memory while more requests go out. If saving
fails the session stops there, and the new credentials are never used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from trickle.connectors.auth import Auth, AuthContext
from trickle.connectors.errors import AuthExpired, PlatformError, RateLimitScope
from trickle.connectors.hosts import HostGuard
from trickle.connectors.http import HttpClient, json_body
from trickle.connectors.policy import DEFAULT_POLICY, ErrorPolicy
from trickle.connectors.ratelimits import RateLimit, parse_rate_limit
from trickle.connectors.settings import ConnectorSettings
from trickle.core.clock import clock
from trickle.core.credentials import Credentials, redact
from trickle.core.text import printable

SaveCredentials = Callable[[Credentials, Credentials], None]
"""Called with (old, new) credentials after a refresh, before ``new`` is used; raises if it
could not store ``new`` durably (then ``new`` is never used)."""


class AccountSession:
    """The HTTP client of one connector bound to one account's credentials (see the module)."""

    def __init__(
        self,
        *,
        http: HttpClient,
        platform: str,
        auth: Auth,
        settings: ConnectorSettings,
        credentials: Credentials,
        base_url: str,
        policy: ErrorPolicy = DEFAULT_POLICY,
        rate_limit_scope: RateLimitScope = "account",
        save: SaveCredentials | None = None,
        until: float | None = None,
        guard: HostGuard | None = None,
    ) -> None:
        self.http = http
        self.until = until
        self.guard = guard
        """Every request of the session is held to it (a user-named host), when set."""
        """No request of the session runs past this ``time.monotonic()`` (None: no budget)."""
        self.platform = platform
        self.auth = auth
        self.settings = settings
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self.rate_limit_scope = rate_limit_scope
        self._credentials = credentials
        self._save = save
        self._secrets: list[str] = []
        self._remember(credentials)
        self._app_secrets = auth.app_secrets(settings)
        self.requests = 0
        """Requests sent so far (a retry counts again), token endpoint included."""
        self.refreshes = 0
        """Times the credentials were renewed in this session."""
        self.rate_limit: RateLimit | None = None
        """The rate-limit state the platform's latest answer reported (None: it said none)."""

    # -- what the session holds ----------------------------------------------

    @property
    def credentials(self) -> Credentials:
        """The account's credentials as they are now (renewed ones after a refresh)."""
        return self._credentials

    @property
    def secrets(self) -> list[str]:
        """Every secret value this session has held or sends, for redaction."""
        return [*self._secrets, *self._app_secrets]

    def _remember(self, credentials: Credentials) -> None:
        for value in credentials.secret_values():
            if value not in self._secrets:
                self._secrets.append(value)

    def url(self, path: str) -> str:
        """An absolute URL for ``path`` on the API root; an absolute URL must stay on its origin
        (the credentials go with every request)."""
        if "://" not in path:
            return self.base_url + (path if path.startswith("/") else "/" + path)
        if path.startswith(self.base_url + "/"):
            return path
        target, home = urlsplit(urljoin(self.base_url + "/", path)), urlsplit(self.base_url)
        if (target.scheme, target.netloc) != (home.scheme, home.netloc):
            raise PlatformError(
                f"{self.platform}: {printable(target.netloc, 100)} is not the API's host; "
                "not sending the account's credentials there"
            )
        return path

    # -- requests --------------------------------------------------------------

    def get(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        etag: str | None = None,
    ) -> requests.Response:
        """GET ``path`` (or a URL on the API's origin) for the account: signed, bounded, read
        through the policy, renewing the credentials as the module says."""
        return self._with_renewal(lambda: self._get(path, params, headers, etag))

    def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """:meth:`get` and the answer's JSON, checked by the policy's ``error_in_body`` hook."""
        return self.json(self.get(path, params=params, headers=headers))

    def json(self, response: requests.Response) -> Any:
        """``response``'s JSON (:class:`PlatformError` if it is none), and the error the policy
        finds inside it raised (an error in a 200 body)."""
        body = json_body(response)
        if self.policy.error_in_body is not None:
            error = self.policy.error_in_body(response, body)
            if error is not None:
                # The hook quotes the platform's own words, which may echo a credential.
                error.args = tuple(
                    printable(redact(arg, self.secrets), 500) if isinstance(arg, str) else arg
                    for arg in error.args
                )
                raise error
        return body

    def _get(
        self,
        path: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        etag: str | None,
    ) -> requests.Response:
        signed = self.auth.sign(self._credentials, self._context())
        return self.http.get(
            self.url(path),
            params={**(params or {}), **signed.params} if signed.params else params,
            headers={**(headers or {}), **signed.headers},
            etag=etag,
            secrets=self.secrets,
            policy=self.policy,
            rate_limit_scope=self.rate_limit_scope,
            auth=signed.auth,
            observer=self,
            until=self.until,
            guard=self.guard,
        )

    def _with_renewal(self, send: Callable[[], requests.Response]) -> requests.Response:
        renewed = False
        if self.auth.needs_refresh(self._credentials, clock.now()):
            self.refresh()
            renewed = True
        try:
            return send()
        except AuthExpired:
            if renewed or not self.auth.refreshes or not self._credentials.refresh_token:
                raise
        self.refresh()
        return send()

    def refresh(self) -> None:
        """Renew the credentials now, save them, and only then use them (see the module)."""
        old = self._credentials
        new = self.auth.refresh(old, self._context())
        self._remember(new)
        if self._save is not None:
            self._save(old, new)
        self._credentials = new
        self.refreshes += 1

    def _context(self) -> AuthContext:
        return AuthContext(
            platform=self.platform,
            settings=self.settings,
            http=_Counted(self.http, self),
            secrets=self.secrets,
        )

    # -- the HTTP layer's observer -------------------------------------------

    def sent(self) -> None:
        """One attempt went out."""
        self.requests += 1

    def answered(self, response: requests.Response) -> None:
        """Read the rate-limit state of every answer the platform gives."""
        limits = parse_rate_limit(response.headers)
        if limits.remaining is not None or limits.retry_after is not None:
            self.rate_limit = limits


class _Counted:
    """The HTTP client as auth kinds see it: the token endpoint's requests count as the
    session's too."""

    def __init__(self, http: HttpClient, session: AccountSession) -> None:
        self._http = http
        self._session = session

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        guard = kwargs.pop("guard", None) or self._session.guard
        return self._http.request(
            method, url, observer=self._session, until=self._session.until, guard=guard, **kwargs
        )
