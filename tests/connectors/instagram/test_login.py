"""Logging in to Instagram (instaloader's exchange, through trickle's HTTP layer) and reading
instaloader's session files; the password never leaves the one request that carries it."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses

from trickle.connectors.errors import AuthExpired, PlatformError, RateLimited
from trickle.connectors.flows import SecondFactor
from trickle.connectors.http import HttpClient
from trickle.connectors.instagram import InstagramConnector
from trickle.connectors.instagram.client import session_cookies
from trickle.connectors.instagram.connector import InstagramSettings
from trickle.connectors.instagram.login import LOGIN_PATH, TWO_FACTOR_PATH

FIXTURES = Path(__file__).resolve().parent / "fixtures"
HOME = "https://www.instagram.com/"
LOGIN = "https://www.instagram.com" + LOGIN_PATH
TWO_FACTOR = "https://www.instagram.com" + TWO_FACTOR_PATH
PASSWORD = "c0rrect-h0rse-battery-staple"
CSRF = "Hn3wCsrfT0kenFr0mTheStartPage00"
SESSION_ID = "25025320%3AnEwSeSsIoN0123%3A27"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def connector() -> InstagramConnector:
    return InstagramConnector(InstagramSettings(), HttpClient(retries=0))


def home_sets_csrf() -> None:
    responses.get(HOME, body="<html></html>", headers={"Set-Cookie": f"csrftoken={CSRF}; Path=/"})


def session_set() -> dict[str, str]:
    return {"Set-Cookie": f"sessionid={SESSION_ID}; Path=/; HttpOnly; Secure"}


@responses.activate
def test_a_login_posts_the_web_apps_password_form_and_keeps_the_sessions_cookies() -> None:
    home_sets_csrf()
    responses.post(LOGIN, json=load("login_ok.json"), headers=session_set())

    credentials = connector().log_in("ada.makes", PASSWORD)

    assert not isinstance(credentials, SecondFactor)
    assert credentials.access_token == SESSION_ID
    assert session_cookies(credentials)["csrftoken"] == CSRF
    assert PASSWORD not in json.dumps(credentials.to_json())
    login = responses.calls[1].request
    form = parse_qs(login.body if isinstance(login.body, str) else login.body.decode())
    assert form["username"] == ["ada.makes"]
    prefix, version, _, sent = form["enc_password"][0].split(":", 3)
    assert (prefix, version, sent) == ("#PWD_INSTAGRAM_BROWSER", "0", PASSWORD)
    assert login.headers["X-CSRFToken"] == CSRF
    assert f"csrftoken={CSRF}" in login.headers["Cookie"]


@responses.activate
def test_a_second_factor_is_asked_for_and_the_code_finishes_the_login() -> None:
    home_sets_csrf()
    responses.post(LOGIN, status=400, json=load("login_two_factor_required.json"))
    responses.post(TWO_FACTOR, json=load("two_factor_ok.json"), headers=session_set())
    conn = connector()

    pending = conn.log_in("ada.makes", PASSWORD)
    assert isinstance(pending, SecondFactor)
    assert PASSWORD not in json.dumps(dict(pending.pending))
    credentials = conn.confirm_login(pending, "246810")

    assert credentials.access_token == SESSION_ID
    form = parse_qs(responses.calls[2].request.body)
    assert form == {
        "username": ["ada.makes"],
        "verificationCode": ["246810"],
        "identifier": ["RzVtQ0hKZ3ZrV2dyMmtETjZ0"],
    }


@responses.activate
def test_a_wrong_code_is_refused_saying_so() -> None:
    home_sets_csrf()
    responses.post(LOGIN, status=400, json=load("login_two_factor_required.json"))
    responses.post(TWO_FACTOR, status=400, json=load("two_factor_bad_code.json"))
    conn = connector()
    pending = conn.log_in("ada.makes", PASSWORD)
    assert isinstance(pending, SecondFactor)

    with pytest.raises(AuthExpired, match=r"refused the code .*security code"):
        conn.confirm_login(pending, "000000")


@responses.activate
@pytest.mark.parametrize(
    ("fixture", "status", "said"),
    [
        ("login_wrong_password.json", 200, "wrong password"),
        ("login_no_such_user.json", 200, "no user ada.makes"),
        ("login_checkpoint_required.json", 400, "confirmed first"),
    ],
)
def test_a_refused_login_says_why_and_never_the_password(
    fixture: str, status: int, said: str
) -> None:
    home_sets_csrf()
    responses.post(LOGIN, status=status, json={**load(fixture), "echo": PASSWORD})

    with pytest.raises(AuthExpired, match=said) as refused:
        connector().log_in("ada.makes", PASSWORD)

    assert PASSWORD not in str(refused.value)


@responses.activate
def test_a_login_told_to_wait_is_rate_limited() -> None:
    home_sets_csrf()
    responses.post(LOGIN, status=401, json=load("error_401_please_wait.json"))

    with pytest.raises(RateLimited):
        connector().log_in("ada.makes", PASSWORD)


@responses.activate
def test_a_start_page_without_a_csrf_cookie_stops_the_login_before_the_password() -> None:
    responses.get(HOME, body="<html></html>")

    with pytest.raises(PlatformError, match="no csrftoken"):
        connector().log_in("ada.makes", PASSWORD)
    assert len(responses.calls) == 1


def test_an_instaloader_session_file_is_read() -> None:
    data = pickle.dumps({"sessionid": SESSION_ID, "csrftoken": CSRF, "ds_user_id": "25025320"})

    credentials = connector().read_session_file(data)

    assert credentials.access_token == SESSION_ID
    assert session_cookies(credentials)["ds_user_id"] == "25025320"


class _Boom:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("touch /tmp/trickle-instagram-pwned",))


@pytest.mark.parametrize(
    "data",
    [
        pickle.dumps(_Boom()),
        pickle.dumps(["sessionid", SESSION_ID]),
        b"not a pickle at all",
        b"",
        pickle.dumps({"sessionid": SESSION_ID})[:-3],
    ],
)
def test_a_file_that_is_no_session_file_is_refused_and_never_runs(data: bytes) -> None:
    with pytest.raises(PlatformError, match="not an instaloader session file"):
        connector().read_session_file(data)
    assert not Path("/tmp/trickle-instagram-pwned").exists()


def test_a_session_file_of_a_logged_out_session_is_refused() -> None:
    with pytest.raises(AuthExpired, match="no sessionid"):
        connector().read_session_file(pickle.dumps({"sessionid": "", "csrftoken": CSRF}))
