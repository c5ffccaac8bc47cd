"""Logging in to Instagram, and reading instaloader's session files: how an account is linked.

The exchange is instaloader's (``InstaloaderContext.login`` and
``two_factor_login`` in instaloader 4.16), spoken here through trickle's HTTP
layer, because instaloader's login opens a ``requests`` session of its own
that no caller can bound or point at another host:

1. ``GET /`` sets the ``csrftoken`` cookie;
2. ``POST /api/v1/web/accounts/login/ajax/`` with ``username`` and
   ``enc_password=#PWD_INSTAGRAM_BROWSER:0:{unix time}:{password}`` (the web
   app's unencrypted form), ``X-CSRFToken``; the answer is
   ``{"authenticated": true, "user": true, "status": "ok"}`` with the session's
   cookies set, or ``two_factor_required`` with a ``two_factor_identifier``, or
   a ``checkpoint_url`` (Instagram wants the login confirmed in its app or
   browser first), or ``authenticated: false`` (wrong password, or no such
   user);
3. for two factors, ``POST /accounts/login/ajax/two_factor/`` with
   ``username``, ``verificationCode`` and ``identifier``.

The password travels in that one request and is redacted from every message;
nothing here keeps it. An instaloader session file (``instaloader --login
USER`` saves one) is a pickled ``dict`` of cookie names to values; it is read
with an unpickler that builds plain data only, so a hostile file cannot run
code.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Mapping

import requests

from trickle.connectors.errors import AuthExpired, PlatformError
from trickle.connectors.flows import SecondFactor
from trickle.connectors.http import HttpClient, json_body
from trickle.connectors.instagram.client import credentials_from_cookies
from trickle.connectors.instagram.payloads import LOGIN, LoginAnswer
from trickle.connectors.payloads import parse_payload
from trickle.connectors.policy import DEFAULT_POLICY, Action, Answer
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.text import printable

LOGIN_PATH = "/api/v1/web/accounts/login/ajax/"
TWO_FACTOR_PATH = "/accounts/login/ajax/two_factor/"
FRESH_COOKIES = {"ig_pr": "1", "ig_vw": "1920", "ig_cb": "1"}
"""The cookies instaloader's login session starts with (it sets the others blank)."""
CODE_PROMPT = "Instagram security code (from your authentication app or text message): "


def _refusal(answer: Answer) -> Action:
    """A refused login answers 400 (or 401, 403) with its reason in JSON, read like a 200;
    "please wait a few minutes" is a rate limit, whatever the status."""
    if "wait a few minutes" in answer.detail.lower():
        return Action.RATE_LIMIT
    return Action.OK


LOGIN_POLICY = DEFAULT_POLICY.with_statuses({400: _refusal, 401: _refusal, 403: _refusal})


def _cookie_header(cookies: Mapping[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items() if value)


def _answer(response: requests.Response, where: str) -> LoginAnswer:
    return parse_payload(LOGIN, json_body(response), where=where)


def _said(answer: LoginAnswer) -> str:
    message = printable(answer.message or "", 200)
    return f"{printable(answer.status or 'no status', 40)}{': ' + message if message else ''}"


def log_in(
    http: HttpClient, base_url: str, headers: Mapping[str, str], username: str, password: str
) -> Credentials | SecondFactor:
    """Log in as ``username``: the session's credentials, or the second factor Instagram asks
    for. Errors say why, never quoting the password."""
    home = http.request(
        "GET",
        base_url + "/",
        headers={**headers, "Cookie": _cookie_header(FRESH_COOKIES)},
        secrets=[password],
    )
    csrf = home.cookies.get("csrftoken")
    if not csrf:
        raise PlatformError("instagram: the start page set no csrftoken cookie: cannot log in")
    encoded = f"#PWD_INSTAGRAM_BROWSER:0:{int(clock.now().timestamp())}:{password}"
    cookies = {**FRESH_COOKIES, "csrftoken": csrf}
    where = f"POST {LOGIN_PATH}"
    response = http.request(
        "POST",
        base_url + LOGIN_PATH,
        data={"enc_password": encoded, "username": username},
        headers={
            **headers,
            "Cookie": _cookie_header(cookies),
            "X-CSRFToken": csrf,
            "X-Requested-With": "XMLHttpRequest",
            "X-Instagram-AJAX": "1",
        },
        secrets=[password, encoded, csrf],
        policy=LOGIN_POLICY,
    )
    answer = _answer(response, where)
    cookies.update(response.cookies.get_dict())
    if answer.two_factor_required:
        if answer.two_factor_info is None:
            raise PlatformError(f"{where}: malformed payload: two_factor_info: missing")
        return SecondFactor(
            CODE_PROMPT,
            {
                "username": username,
                "identifier": answer.two_factor_info.two_factor_identifier,
                "cookies": json.dumps(cookies, separators=(",", ":")),
            },
        )
    if answer.checkpoint_url:
        raise AuthExpired(
            "Instagram wants this login confirmed first (a checkpoint): confirm it in the "
            "Instagram app or at instagram.com from this network, then link again"
        )
    if answer.status != "ok":
        raise AuthExpired(f"Instagram refused the login ({_said(answer)})")
    if answer.authenticated is None:
        raise PlatformError(
            "Instagram answered the login unexpectedly: this may be a blocked address"
        )
    if not answer.authenticated:
        raise AuthExpired(
            "wrong password" if answer.user else f"Instagram has no user {printable(username, 60)}"
        )
    return credentials_from_cookies(cookies)


def confirm_login(
    http: HttpClient, base_url: str, headers: Mapping[str, str], pending: SecondFactor, code: str
) -> Credentials:
    """Finish a login with the second-factor ``code``."""
    try:
        cookies = json.loads(pending.pending["cookies"])
        username, identifier = pending.pending["username"], pending.pending["identifier"]
        csrf = cookies["csrftoken"]
    except (KeyError, TypeError, ValueError):
        raise PlatformError("that login is not one waiting for a code: start again") from None
    where = f"POST {TWO_FACTOR_PATH}"
    response = http.request(
        "POST",
        base_url + TWO_FACTOR_PATH,
        data={"username": username, "verificationCode": code, "identifier": identifier},
        headers={
            **headers,
            "Cookie": _cookie_header(cookies),
            "X-CSRFToken": csrf,
            "X-Requested-With": "XMLHttpRequest",
        },
        secrets=[code, *pending.secret_values()],
        policy=LOGIN_POLICY,
    )
    answer = _answer(response, where)
    if answer.status != "ok":
        raise AuthExpired(f"Instagram refused the code ({_said(answer)})")
    return credentials_from_cookies({**cookies, **response.cookies.get_dict()})


class _PlainData(pickle.Unpickler):
    """Builds dicts, lists, strings and numbers only: no class, no function, no code."""

    def find_class(self, module: str, name: str) -> type:
        raise pickle.UnpicklingError("only plain data is read")


def read_session_file(data: bytes) -> Credentials:
    """The credentials of an instaloader session file's bytes (untrusted)."""
    not_one = PlatformError("that is not an instaloader session file (a pickled dict of cookies)")
    try:
        loaded = _PlainData(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, MemoryError, RecursionError, OverflowError):  # fmt: skip
        raise not_one from None
    if not isinstance(loaded, dict):
        raise not_one
    return credentials_from_cookies(loaded)
