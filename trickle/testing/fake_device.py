"""RFC 8628's device authorization grant on 127.0.0.1, strictly.

:class:`FakeDeviceServer` is the
:class:`~trickle.testing.fake_authorize.FakeAuthorizationServer` (code flow,
refresh, revocation, the likes API) with the device flow a terminal without
a browser links by:

- ``POST /oauth/device/code`` (section 3.1): the client authenticated as at
  the token endpoint (a public client by its ``client_id``), an optional
  ``scope``; the answer (section 3.2) has ``device_code``, ``user_code``
  (eight letters of RFC 8628 section 6.1's base-20 alphabet, ``WDJB-MJHT``),
  ``verification_uri``, ``verification_uri_complete``, ``expires_in``
  (``device_expires_in``, 900 s) and ``interval`` (``device_interval``, 5 s).
- The device grant at the token endpoint (``grant_type=
  urn:ietf:params:oauth:grant-type:device_code``, section 3.4) for the
  client the code was issued to: ``authorization_pending`` while the person
  has not answered; ``slow_down`` when it is asked sooner than the interval
  after the previous poll (or after the code was issued), on trickle's clock,
  and from then on the interval is 5 s longer (section 3.5);
  ``access_denied`` once the person refused; ``expired_token`` once the code
  expired; the tokens once approved, and ``invalid_grant`` after that: a
  device code is good for one token.
- The person enters the code at ``GET /oauth/device`` (a form, or
  ``?user_code=`` as ``verification_uri_complete`` has it; codes are read
  case-insensitively, dashes ignored, section 6.1): the browser's signed-in
  user then approves or denies as :meth:`sign_in` said. Tests may skip the
  page: :meth:`FakeDeviceServer.enter_code`, :meth:`FakeDeviceServer.deny_code`.

Tests read :attr:`FakeDeviceServer.devices` (every device code issued, with
its polls and slow-downs).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Unpack

from trickle.core.clock import clock
from trickle.testing.fake_authorize import AuthorizeOptions, FakeAuthorizationServer
from trickle.testing.fake_oauth import (
    NO_STORE,
    OAuthClient,
    OAuthError,
    TokenSet,
    check_form,
    given,
)
from trickle.testing.fake_pages import page, with_query
from trickle.testing.fakeplatform import Answer, FakeResponse, Request, route

DEVICE_CODE_PATH = "/oauth/device/code"
VERIFICATION_PATH = "/oauth/device"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
"""RFC 8628 section 6.1's example: no vowels (no words), no digits (no 0/O, 1/I)."""
SLOW_DOWN_SECONDS = 5
"""What every ``slow_down`` adds to the interval (section 3.5)."""

DeviceStatus = Literal["pending", "approved", "denied", "spent"]


@dataclass
class IssuedDeviceCode:
    """One device authorization: its codes, for whom, until when, and how it is going."""

    device_code: str
    user_code: str
    client_id: str
    scope: tuple[str, ...]
    expires_at: datetime
    interval: int
    """The seconds the client must now wait between polls (grows with each slow_down)."""
    last_poll: datetime
    """When the client last asked (at first: when the code was issued)."""
    status: DeviceStatus = "pending"
    username: str | None = None
    polls: int = 0
    slow_downs: int = 0


def normalize_user_code(text: str) -> str:
    """A user code as typed, as the server compares it: upper case, no dashes or spaces."""
    return "".join(char for char in text.upper() if char not in "- \t")


class FakeDeviceServer(FakeAuthorizationServer):
    """The authorization server with RFC 8628's device flow as well (see the module)."""

    def __init__(
        self,
        *,
        device_expires_in: int = 900,
        device_interval: int = 5,
        **options: Unpack[AuthorizeOptions],
    ) -> None:
        super().__init__(**options)
        self.device_expires_in = device_expires_in
        self.device_interval = device_interval
        self.devices: list[IssuedDeviceCode] = []
        """Every device code issued, in order."""
        self.grant_types[DEVICE_GRANT] = self._device_grant
        self._devices: dict[str, IssuedDeviceCode] = {}  # by device code

    # -- what the person does -----------------------------------------------------

    def enter_code(self, user_code: str, username: str) -> IssuedDeviceCode:
        """``username`` entered ``user_code`` at the verification page and approved."""
        with self.lock:
            if username not in self.accounts:
                raise KeyError(f"no account {username!r} here")
            device = self._pending(user_code)
            device.status, device.username = "approved", username
            return device

    def deny_code(self, user_code: str) -> IssuedDeviceCode:
        """The person entered ``user_code`` and refused: the device is told ``access_denied``."""
        with self.lock:
            device = self._pending(user_code)
            device.status = "denied"
            return device

    def _pending(self, user_code: str) -> IssuedDeviceCode:
        """The device code awaiting an answer whose user code this is (under the lock)."""
        wanted = normalize_user_code(user_code)
        for device in self.devices:
            if normalize_user_code(device.user_code) == wanted:
                if device.status != "pending":
                    raise ValueError(f"the code {user_code} was answered already")
                if device.expires_at <= clock.now():
                    raise ValueError(f"the code {user_code} expired")
                return device
        raise ValueError(f"no code {user_code} was issued")

    # -- the device authorization endpoint -------------------------------------

    @route("POST", DEVICE_CODE_PATH)
    def device_authorization(self, request: Request) -> Answer:
        """``POST /oauth/device/code``: a device code and the user code to enter for it."""
        try:
            check_form(request)
            client = self.authenticate_client(request)
            scope = self.requested_scope(client, given(request, "scope"))
        except OAuthError as error:
            return error.response()
        verification_uri = self.base_url + VERIFICATION_PATH
        with self.lock:
            now = clock.now()
            device = IssuedDeviceCode(
                device_code=f"fo-dc-{secrets.token_urlsafe(24)}",
                user_code=self._new_user_code(),
                client_id=client.client_id,
                scope=scope,
                expires_at=now + timedelta(seconds=self.device_expires_in),
                interval=self.device_interval,
                last_poll=now,
            )
            self._devices[device.device_code] = device
            self.devices.append(device)
        body = {
            "device_code": device.device_code,
            "user_code": device.user_code,
            "verification_uri": verification_uri,
            "verification_uri_complete": with_query(
                verification_uri, {"user_code": device.user_code}
            ),
            "expires_in": self.device_expires_in,
            "interval": self.device_interval,
        }
        return FakeResponse(200, body, dict(NO_STORE))

    def _new_user_code(self) -> str:
        """Eight letters, ``XXXX-XXXX``, unlike any other code still pending (under the lock)."""
        taken = {normalize_user_code(d.user_code) for d in self.devices if d.status == "pending"}
        while True:
            letters = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
            if letters not in taken:
                return f"{letters[:4]}-{letters[4:]}"

    # -- the verification page ---------------------------------------------------

    @route("GET", VERIFICATION_PATH)
    def verification(self, request: Request) -> Answer:
        """``GET /oauth/device``: the code entry form, or (``?user_code=``) the signed-in
        person's answer for that code."""
        entry = (VERIFICATION_PATH, "user_code")
        typed = request.query.get("user_code", "")
        if not typed:
            return page(200, "Connect a device", "Enter the code your device shows.", form=entry)
        with self.lock:
            person = self.browser
            if person.username is None:
                return page(200, "Sign in", "Sign in to connect your device.")
            try:
                device = self._pending(typed)
            except ValueError:
                return page(
                    400, "Connect a device", "That code is unknown, expired or used.", form=entry
                )
            if person.consent == "deny":
                device.status = "denied"
                return page(200, "Not connected", "You did not allow the device.")
            device.status, device.username = "approved", person.username
        return page(200, "Device connected", "You may go back to your device.")

    # -- the device grant ------------------------------------------------------------

    def _device_grant(self, request: Request, client: OAuthClient) -> TokenSet:
        """``grant_type=urn:ietf:params:oauth:grant-type:device_code`` (sections 3.4, 3.5)."""
        code = given(request, "device_code")
        if not code:
            raise OAuthError("invalid_request", "device_code is missing")
        with self.lock:
            device = self._devices.get(code)
            if device is None or device.client_id != client.client_id:
                raise OAuthError("invalid_grant", "unknown device code")
            now = clock.now()
            device.polls += 1
            if device.status == "spent":
                raise OAuthError("invalid_grant", "the device code was used already")
            if device.expires_at <= now:
                raise OAuthError("expired_token", "the device code expired")
            if device.status == "denied":
                raise OAuthError("access_denied", "the user did not allow the device")
            if device.status == "approved" and device.username is not None:
                device.status = "spent"
                account = self.accounts[device.username]
                grant = self.new_grant(account, client.client_id, device.scope)
                return self.tokens(grant, device.scope, from_refresh=False)
            too_soon = now - device.last_poll < timedelta(seconds=device.interval)
            device.last_poll = now
            if too_soon:
                device.interval += SLOW_DOWN_SECONDS
                device.slow_downs += 1
                raise OAuthError("slow_down", f"poll every {device.interval} s at most")
            raise OAuthError("authorization_pending", "the user has not answered yet")
