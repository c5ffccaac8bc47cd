"""The fake GitHub's login side behaves as GitHub's documentation says, quirks included.

Sources (``github/docs``): ``content/apps/oauth-apps/building-oauth-apps/
authorizing-oauth-apps.md`` (both flows, the device flow's errors, redirect
URLs), ``content/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-*.md``
(the errors' names and texts), ``content/apps/creating-github-apps/
authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app.md``
("GitHub will respond with a 200 status and an error"), and the REST reference of
``DELETE /applications/{client_id}/token`` (``src/rest/data/fpt-2022-11-28/apps.json``).
Every request here is a plain ``requests`` call, as any client would make it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from trickle.connectors.github.fake import FakeGitHub, FakeRepo
from trickle.connectors.github.fake_oauth import DEVICE_GRANT, redirect_allowed
from trickle.core.clock import clock

CLIENT_ID = "Iv1.8a61f9b3a7aba766"
SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4"
OTHER_ID = "Iv1.0ther0ther0ther0"
OTHER_SECRET = "other-app-secret-0123456789abcdef01234567"
PERSONAL = "ghp_P3rs0nalT0kenOfOctocatXy7Qw2Lm9Zp4Kd"
CALLBACK = "http://127.0.0.1:8765/callback"
JSON = {"Accept": "application/json"}
GITHUB_TOKEN = re.compile(r"gho_[A-Za-z0-9]{36}")


@pytest.fixture
def github(now: datetime) -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_user("octocat", PERSONAL, user_id=583231)
        fake.add_user("hubot", "ghp_HubotsOwnPersonalTokenXy7Qw2Lm9Zp4Kd0")
        fake.star("octocat", FakeRepo(1296269, "Hello-World", "octocat", 583231))
        fake.oauth.register_app(CLIENT_ID, SECRET)
        fake.oauth.register_app(OTHER_ID, OTHER_SECRET, callback_url="https://other.example/cb")
        yield fake


def later(seconds: float = 5) -> None:
    """Let time pass on trickle's clock, which the fake keeps its times on."""
    clock.advance(timedelta(seconds=seconds))


def device_code(github: FakeGitHub, client_id: str = CLIENT_ID, **form: str) -> dict[str, Any]:
    answer = requests.post(
        f"{github.base_url}/login/device/code",
        data={"client_id": client_id, "scope": "", **form},
        headers=JSON,
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def token_request(
    github: FakeGitHub, form: dict[str, str], headers: dict[str, str] | None = None
) -> requests.Response:
    return requests.post(
        f"{github.base_url}/login/oauth/access_token",
        data=form,
        headers=JSON if headers is None else headers,
        timeout=5,
    )


def poll(github: FakeGitHub, code: str, client_id: str = CLIENT_ID, **form: str) -> Any:
    """One device-flow poll; GitHub answers every one of them with HTTP 200."""
    fields = {"client_id": client_id, "device_code": code, "grant_type": DEVICE_GRANT, **form}
    answer = token_request(github, fields)
    assert answer.status_code == 200
    return answer.json()


def authorize(github: FakeGitHub, **params: str) -> requests.Response:
    """The browser at the authorization page, not following the redirect."""
    query = {"client_id": CLIENT_ID, "redirect_uri": CALLBACK, "state": "st4te", **params}
    return requests.get(
        f"{github.base_url}/login/oauth/authorize",
        params=query,
        allow_redirects=False,
        timeout=5,
    )


def sent_back(answer: requests.Response) -> tuple[str, dict[str, str]]:
    """Where a 302 sends the browser: the address without its query, and the query."""
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    return f"{location.scheme}://{location.netloc}{location.path}", query


def code_from(github: FakeGitHub, **params: str) -> str:
    github.oauth.sign_in("octocat")
    return sent_back(authorize(github, **params))[1]["code"]


def exchange(github: FakeGitHub, code: str, **form: str) -> Any:
    fields = {"client_id": CLIENT_ID, "client_secret": SECRET, "code": code, **form}
    answer = token_request(github, fields)
    assert answer.status_code == 200
    return answer.json()


def api(github: FakeGitHub, token: str, path: str = "/user") -> requests.Response:
    return requests.get(
        f"{github.base_url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )


def revoke(
    github: FakeGitHub,
    body: bytes,
    auth: tuple[str, str] | None = (CLIENT_ID, SECRET),
    client_id: str = CLIENT_ID,
) -> requests.Response:
    return requests.delete(
        f"{github.base_url}/applications/{client_id}/token",
        data=body,
        auth=auth,
        headers={"Accept": "application/vnd.github+json", "Content-Type": "application/json"},
        timeout=5,
    )


def challenge_of(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def device_token(github: FakeGitHub) -> str:
    started = device_code(github)
    github.oauth.enter_code(started["user_code"], "octocat")
    later()
    token: str = poll(github, started["device_code"])["access_token"]
    return token


# ---------------------------------------------------------------------------
# POST /login/device/code


def test_the_device_code_answer_is_form_encoded_unless_json_is_asked_for(
    github: FakeGitHub,
) -> None:
    answer = requests.post(
        f"{github.base_url}/login/device/code", data={"client_id": CLIENT_ID}, timeout=5
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    form = parse_qs(answer.text)
    fields = ["device_code", "expires_in", "interval", "user_code", "verification_uri"]
    assert sorted(form) == fields
    assert form["expires_in"] == ["900"]
    assert form["interval"] == ["5"]


def test_a_device_code_is_40_characters_and_the_user_code_8_with_a_hyphen(
    github: FakeGitHub,
) -> None:
    started = device_code(github)
    assert len(started["device_code"]) == 40
    assert re.fullmatch(r"[A-Z]{4}-[A-Z]{4}", started["user_code"])
    assert started["expires_in"] == 900
    assert started["interval"] == 5
    # github.com's own /login/device, on the fake's origin: where the fake's codes are entered
    assert started["verification_uri"] == f"{github.base_url}/login/device"
    assert device_code(github)["user_code"] != started["user_code"]


def test_the_client_id_may_come_in_the_query_string_as_the_docs_show_it(
    github: FakeGitHub,
) -> None:
    answer = requests.post(
        f"{github.base_url}/login/device/code",
        params={"client_id": CLIENT_ID},
        headers=JSON,
        timeout=5,
    )
    assert answer.status_code == 200
    assert len(answer.json()["device_code"]) == 40


def test_an_unknown_client_id_is_not_found(github: FakeGitHub) -> None:
    answer = requests.post(
        f"{github.base_url}/login/device/code",
        data={"client_id": "Iv1.n0such4pp"},
        headers=JSON,
        timeout=5,
    )
    assert answer.status_code == 404


def test_an_app_without_the_device_flow_enabled_gets_device_flow_disabled(
    github: FakeGitHub,
) -> None:
    github.oauth.set_device_flow(CLIENT_ID, False)
    answer = requests.post(
        f"{github.base_url}/login/device/code",
        data={"client_id": CLIENT_ID},
        headers=JSON,
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "device_flow_disabled"
    github.oauth.set_device_flow(CLIENT_ID, True)
    assert "device_code" in device_code(github)


# ---------------------------------------------------------------------------
# Polling POST /login/oauth/access_token with the device grant


def test_until_the_code_is_entered_the_answer_is_authorization_pending_with_200(
    github: FakeGitHub,
) -> None:
    started = device_code(github)
    later()
    answer = poll(github, started["device_code"])
    assert answer["error"] == "authorization_pending"
    assert "access_token" not in answer


def test_once_the_code_is_entered_the_poll_gets_a_token_without_any_client_secret(
    github: FakeGitHub,
) -> None:
    started = device_code(github, scope="read:user")
    github.oauth.enter_code(started["user_code"], "octocat")
    later()
    answer = poll(github, started["device_code"])
    assert set(answer) == {"access_token", "token_type", "scope"}
    assert GITHUB_TOKEN.fullmatch(answer["access_token"])
    assert answer["token_type"] == "bearer"
    assert answer["scope"] == "read:user"
    assert github.oauth.tokens_issued == 1
    assert github.oauth.tokens_of("octocat") == [answer["access_token"]]


def test_a_device_token_works_on_the_api_for_the_user_who_entered_the_code(
    github: FakeGitHub,
) -> None:
    token = device_token(github)
    me = api(github, token)
    assert me.status_code == 200
    assert (me.json()["login"], me.json()["id"]) == ("octocat", 583231)
    stars = api(github, token, "/user/starred?per_page=10")
    assert [star["id"] for star in stars.json()] == [1296269]
    assert api(github, "gho_" + "x" * 36).status_code == 401


def test_a_device_code_gives_one_token_only(github: FakeGitHub) -> None:
    started = device_code(github)
    github.oauth.enter_code(started["user_code"], "octocat")
    later()
    assert "access_token" in poll(github, started["device_code"])
    later()
    assert poll(github, started["device_code"])["error"] == "incorrect_device_code"
    assert github.oauth.tokens_issued == 1


def test_polling_faster_than_the_interval_is_slow_down_with_five_seconds_more(
    github: FakeGitHub,
) -> None:
    started = device_code(github)
    later(4)
    first = poll(github, started["device_code"])
    assert (first["error"], first["interval"]) == ("slow_down", 10)
    later(5)  # the old interval is no longer enough
    second = poll(github, started["device_code"])
    assert (second["error"], second["interval"]) == ("slow_down", 15)
    later(15)
    assert poll(github, started["device_code"])["error"] == "authorization_pending"
    later(15)
    assert poll(github, started["device_code"])["error"] == "authorization_pending"
    assert github.oauth.slow_downs == 2


def test_a_code_not_entered_within_15_minutes_is_expired_token(github: FakeGitHub) -> None:
    started = device_code(github)
    later(899)
    assert poll(github, started["device_code"])["error"] == "authorization_pending"
    later(1)
    assert poll(github, started["device_code"])["error"] == "expired_token"
    with pytest.raises(LookupError, match="expired"):
        github.oauth.enter_code(started["user_code"], "octocat")


def test_expire_code_ends_a_code_at_github_whatever_the_clock_says(github: FakeGitHub) -> None:
    started = device_code(github)
    github.oauth.expire_code(started["user_code"])
    later()
    assert poll(github, started["device_code"])["error"] == "expired_token"


def test_a_user_who_cancels_gets_access_denied_and_the_code_is_used_up(
    github: FakeGitHub,
) -> None:
    started = device_code(github)
    github.oauth.deny_code(started["user_code"])
    later()
    assert poll(github, started["device_code"])["error"] == "access_denied"
    with pytest.raises(LookupError):
        github.oauth.enter_code(started["user_code"], "octocat")
    later()
    assert poll(github, started["device_code"])["error"] == "access_denied"
    assert github.oauth.tokens_issued == 0


def test_a_device_code_it_never_issued_or_issued_to_another_app_is_incorrect(
    github: FakeGitHub,
) -> None:
    assert poll(github, "0" * 40)["error"] == "incorrect_device_code"
    started = device_code(github)
    github.oauth.enter_code(started["user_code"], "octocat")
    later()
    other = poll(github, started["device_code"], client_id=OTHER_ID)
    assert other["error"] == "incorrect_device_code"


def test_a_poll_with_a_client_id_github_does_not_know_is_incorrect_client_credentials(
    github: FakeGitHub,
) -> None:
    started = device_code(github)
    github.oauth.delete_app(CLIENT_ID)
    later()
    answer = poll(github, started["device_code"])
    assert answer["error"] == "incorrect_client_credentials"


def test_turning_the_device_flow_off_stops_codes_already_issued(github: FakeGitHub) -> None:
    started = device_code(github)
    github.oauth.enter_code(started["user_code"], "octocat")
    github.oauth.set_device_flow(CLIENT_ID, False)
    later()
    assert poll(github, started["device_code"])["error"] == "device_flow_disabled"


@pytest.mark.parametrize("grant_type", ["", "authorization_code", "device_code"])
def test_a_device_code_without_the_device_grant_type_is_unsupported_grant_type(
    github: FakeGitHub, grant_type: str
) -> None:
    started = device_code(github)
    later()
    answer = poll(github, started["device_code"], grant_type=grant_type)
    assert answer["error"] == "unsupported_grant_type"


def test_errors_are_form_encoded_too_unless_json_is_asked_for(github: FakeGitHub) -> None:
    started = device_code(github)
    later()
    fields = {"client_id": CLIENT_ID, "device_code": started["device_code"]}
    answer = token_request(github, {**fields, "grant_type": DEVICE_GRANT}, headers={})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert parse_qs(answer.text)["error"] == ["authorization_pending"]


# ---------------------------------------------------------------------------
# The device page, for a person with a browser (demos)


def test_the_device_page_asks_to_sign_in_first_then_offers_a_form(github: FakeGitHub) -> None:
    page = requests.get(f"{github.base_url}/login/device", timeout=5)
    assert page.status_code == 200
    assert "Sign in" in page.text
    github.oauth.sign_in("octocat")
    page = requests.get(f"{github.base_url}/login/device", timeout=5)
    assert 'name="user_code"' in page.text
    assert "octocat" in page.text


def test_a_code_typed_at_the_device_page_in_any_case_authorizes_the_signed_in_user(
    github: FakeGitHub,
) -> None:
    started = device_code(github)
    github.oauth.sign_in("octocat")
    typed = started["user_code"].replace("-", "").lower()
    page = requests.post(
        f"{github.base_url}/login/device",
        data={"user_code": typed, "authorize": "allow"},
        timeout=5,
    )
    assert page.status_code == 200
    later()
    token = poll(github, started["device_code"])["access_token"]
    assert api(github, token).json()["login"] == "octocat"


def test_cancel_at_the_device_page_denies_and_a_wrong_code_is_not_found(
    github: FakeGitHub,
) -> None:
    started = device_code(github)
    github.oauth.sign_in("hubot")
    url = f"{github.base_url}/login/device"
    wrong = requests.post(url, data={"user_code": "BBBB-BBBB", "authorize": "allow"}, timeout=5)
    assert wrong.status_code == 404
    cancel = {"user_code": started["user_code"], "authorize": "cancel"}
    assert requests.post(url, data=cancel, timeout=5).status_code == 200
    later()
    assert poll(github, started["device_code"])["error"] == "access_denied"


# ---------------------------------------------------------------------------
# GET /login/oauth/authorize


def test_an_approving_user_is_sent_back_with_a_code_and_the_state(github: FakeGitHub) -> None:
    github.oauth.sign_in("octocat")
    back, query = sent_back(authorize(github))
    assert back == CALLBACK
    assert set(query) == {"code", "state"}
    assert query["state"] == "st4te"
    assert re.fullmatch(r"[0-9a-f]{20}", query["code"])


def test_a_denying_user_is_sent_back_with_access_denied_as_the_docs_show(
    github: FakeGitHub,
) -> None:
    github.oauth.sign_in("octocat")
    github.oauth.consent("deny")
    back, query = sent_back(authorize(github))
    assert back == CALLBACK
    assert query == {
        "error": "access_denied",
        "error_description": "The user has denied your application access.",
        "error_uri": "https://docs.github.com/apps/managing-oauth-apps/"
        "troubleshooting-authorization-request-errors/#access-denied",
        "state": "st4te",
    }


def test_a_user_who_already_authorized_the_app_is_not_asked_again(github: FakeGitHub) -> None:
    github.oauth.sign_in("octocat")
    sent_back(authorize(github))
    github.oauth.consent("deny")
    assert "code" in sent_back(authorize(github))[1]
    assert sent_back(authorize(github, scope="repo"))[1]["error"] == "access_denied"  # more asked


def test_a_redirect_uri_the_callback_url_does_not_allow_goes_to_the_callback_url_instead(
    github: FakeGitHub,
) -> None:
    github.oauth.sign_in("octocat")
    answer = authorize(github, redirect_uri="http://127.0.0.1:8765/elsewhere")
    back, query = sent_back(answer)
    assert back == "http://127.0.0.1/callback"  # the app's registered callback URL
    assert query["error"] == "redirect_uri_mismatch"
    assert query["error_description"] == (
        "The redirect_uri MUST match the registered callback URL for this application."
    )
    assert query["state"] == "st4te"


def test_without_a_redirect_uri_the_user_goes_back_to_the_callback_url(
    github: FakeGitHub,
) -> None:
    github.oauth.sign_in("octocat")
    answer = requests.get(
        f"{github.base_url}/login/oauth/authorize",
        params={"client_id": CLIENT_ID, "state": "st4te"},
        allow_redirects=False,
        timeout=5,
    )
    back, query = sent_back(answer)
    assert back == "http://127.0.0.1/callback"
    assert "code" in query


def test_nobody_signed_in_sees_the_sign_in_page_and_an_unknown_app_a_404(
    github: FakeGitHub,
) -> None:
    page = authorize(github)
    assert page.status_code == 200
    assert "Sign in to GitHub" in page.text
    github.oauth.sign_in("octocat")
    assert authorize(github, client_id="Iv1.n0such4pp").status_code == 404


@pytest.mark.parametrize(
    "pkce",
    [
        {"code_challenge": challenge_of("v" * 50), "code_challenge_method": "plain"},
        {"code_challenge": challenge_of("v" * 50)},  # RFC 7636's default method is plain
        {"code_challenge_method": "S256"},
        {"code_challenge": "short", "code_challenge_method": "S256"},
    ],
)
def test_pkce_is_s256_with_a_43_character_challenge_only(
    github: FakeGitHub, pkce: dict[str, str]
) -> None:
    github.oauth.sign_in("octocat")
    back, query = sent_back(authorize(github, **pkce))
    assert back == CALLBACK
    assert query["error"] == "invalid_request"
    assert query["state"] == "st4te"


@pytest.mark.parametrize(
    ("redirect", "allowed"),
    [  # the docs' own table, for the callback http://example.com/path
        ("http://example.com/path", True),
        ("http://example.com/path/subdir/other", True),
        ("http://oauth.example.com/path", True),
        ("http://oauth.example.com/path/subdir/other", True),
        ("http://example.com/bar", False),
        ("http://example.com/", False),
        ("http://example.com:8080/path", False),
        ("http://oauth.example.com:8080/path", False),
        ("http://example.org", False),
        ("http://example.com/pathology", False),
        ("http://example.com/path/../bar", False),
        ("https://example.com/path", False),
        ("http://badexample.com/path", False),
    ],
)
def test_a_redirect_uri_must_be_on_the_callbacks_host_port_and_path(
    redirect: str, allowed: bool
) -> None:
    assert redirect_allowed("http://example.com/path", redirect) is allowed


@pytest.mark.parametrize(
    ("callback", "redirect", "allowed"),
    [  # "The redirect_uri does not need to match the port specified in the callback URL"
        ("http://127.0.0.1/path", "http://127.0.0.1:1234/path", True),
        ("http://127.0.0.1:8765/callback", "http://127.0.0.1:50123/callback", True),
        ("http://[::1]/callback", "http://[::1]:50123/callback", True),
        ("http://127.0.0.1/callback", "http://127.0.0.1:1234/other", False),
        ("http://127.0.0.1/callback", "http://localhost:1234/callback", False),
        ("http://localhost/callback", "http://localhost:1234/callback", False),
    ],
)
def test_a_loopback_callback_takes_any_port(callback: str, redirect: str, allowed: bool) -> None:
    assert redirect_allowed(callback, redirect) is allowed


# ---------------------------------------------------------------------------
# Exchanging the code at POST /login/oauth/access_token


def test_a_code_is_exchanged_with_the_client_secret_for_a_token_of_the_user(
    github: FakeGitHub,
) -> None:
    code = code_from(github, scope="read:user")
    answer = exchange(github, code, redirect_uri=CALLBACK)
    assert set(answer) == {"access_token", "token_type", "scope"}
    assert GITHUB_TOKEN.fullmatch(answer["access_token"])
    assert (answer["token_type"], answer["scope"]) == ("bearer", "read:user")
    assert api(github, answer["access_token"]).json()["login"] == "octocat"
    assert github.oauth.tokens_issued == 1


def test_the_token_answer_is_form_encoded_unless_json_is_asked_for(github: FakeGitHub) -> None:
    code = code_from(github)
    form = {"client_id": CLIENT_ID, "client_secret": SECRET, "code": code}
    answer = token_request(github, form, headers={})
    assert answer.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    fields = parse_qs(answer.text, keep_blank_values=True)
    assert fields["token_type"] == ["bearer"]
    assert GITHUB_TOKEN.fullmatch(fields["access_token"][0])


def test_a_code_is_good_once_and_then_bad_verification_code_with_200(github: FakeGitHub) -> None:
    code = code_from(github)
    assert "access_token" in exchange(github, code)
    again = exchange(github, code)
    assert again == {
        "error": "bad_verification_code",
        "error_description": "The code passed is incorrect or expired.",
        "error_uri": "https://docs.github.com/apps/managing-oauth-apps/"
        "troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code",
    }


def test_a_code_expires_after_ten_minutes(github: FakeGitHub) -> None:
    code = code_from(github)
    later(600)
    assert exchange(github, code)["error"] == "bad_verification_code"
    fresh = code_from(github)
    later(599)
    assert "access_token" in exchange(github, fresh)


@pytest.mark.parametrize(
    "credentials",
    [{"client_secret": "wrong"}, {"client_secret": ""}, {"client_id": "Iv1.n0such4pp"}],
)
def test_wrong_app_credentials_are_incorrect_client_credentials(
    github: FakeGitHub, credentials: dict[str, str]
) -> None:
    answer = exchange(github, code_from(github), **credentials)
    assert answer["error"] == "incorrect_client_credentials"
    assert answer["error_description"] == (
        "The client_id and/or client_secret passed are incorrect."
    )
    assert github.oauth.tokens_issued == 0


def test_a_code_issued_to_another_app_is_a_bad_verification_code(github: FakeGitHub) -> None:
    code = code_from(github)
    answer = exchange(github, code, client_id=OTHER_ID, client_secret=OTHER_SECRET)
    assert answer["error"] == "bad_verification_code"
    assert "access_token" in exchange(github, code)


def test_the_redirect_uri_at_the_exchange_must_be_the_one_the_code_was_issued_for(
    github: FakeGitHub,
) -> None:
    code = code_from(github)
    answer = exchange(github, code, redirect_uri="http://127.0.0.1:9999/callback")
    assert answer["error"] == "redirect_uri_mismatch"
    assert "access_token" in exchange(github, code, redirect_uri=CALLBACK)


def test_with_a_pkce_challenge_the_exchange_needs_its_verifier(github: FakeGitHub) -> None:
    verifier = "a-high-entropy-verifier-" + "x" * 40
    pkce = {"code_challenge": challenge_of(verifier), "code_challenge_method": "S256"}
    code = code_from(github, **pkce)
    assert exchange(github, code)["error"] == "bad_verification_code"
    assert exchange(github, code, code_verifier="y" * 64)["error"] == "bad_verification_code"
    assert "access_token" in exchange(github, code, code_verifier=verifier)


@pytest.mark.parametrize("grant_type", ["refresh_token", "client_credentials", "password"])
def test_grant_types_github_does_not_offer_are_unsupported(
    github: FakeGitHub, grant_type: str
) -> None:
    answer = exchange(github, code_from(github), grant_type=grant_type)
    assert answer["error"] == "unsupported_grant_type"


# ---------------------------------------------------------------------------
# DELETE /applications/{client_id}/token


def test_an_app_revokes_its_token_with_basic_auth_and_the_token_stops_working(
    github: FakeGitHub,
) -> None:
    token = device_token(github)
    answer = revoke(github, f'{{"access_token": "{token}"}}'.encode())
    assert answer.status_code == 204
    assert answer.content == b""
    assert api(github, token).status_code == 401
    assert github.oauth.tokens_revoked == 1
    assert github.oauth.tokens_of("octocat") == []
    assert api(github, PERSONAL).status_code == 200  # the user's own token is not the app's
    assert revoke(github, f'{{"access_token": "{token}"}}'.encode()).status_code == 404


def test_a_user_who_revokes_the_apps_access_ends_its_tokens_and_is_asked_again(
    github: FakeGitHub,
) -> None:
    token = device_token(github)
    github.oauth.revoke_grant("octocat", CLIENT_ID)
    assert api(github, token).status_code == 401
    assert revoke(github, f'{{"access_token": "{token}"}}'.encode()).status_code == 404
    github.oauth.consent("deny")
    github.oauth.sign_in("octocat")
    assert sent_back(authorize(github))[1]["error"] == "access_denied"
    assert api(github, PERSONAL).status_code == 200


def test_a_token_the_app_did_not_issue_is_not_found(github: FakeGitHub) -> None:
    assert revoke(github, f'{{"access_token": "{PERSONAL}"}}'.encode()).status_code == 404
    token = device_token(github)
    other = revoke(
        github,
        f'{{"access_token": "{token}"}}'.encode(),
        auth=(OTHER_ID, OTHER_SECRET),
        client_id=OTHER_ID,
    )
    assert other.status_code == 404
    assert api(github, token).status_code == 200
    assert api(github, PERSONAL).status_code == 200
    assert github.oauth.tokens_revoked == 0


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[]", b"{}", b'{"access_token": ""}', b'{"access_token": 7}']
)
def test_a_body_without_an_access_token_is_unprocessable(github: FakeGitHub, body: bytes) -> None:
    answer = revoke(github, body)
    assert answer.status_code == 422
    assert "access_token" in answer.json()["message"]


@pytest.mark.parametrize(
    ("auth", "client_id"),
    [
        ((CLIENT_ID, "wrong-secret"), CLIENT_ID),
        (None, CLIENT_ID),
        ((OTHER_ID, OTHER_SECRET), CLIENT_ID),
        ((CLIENT_ID, SECRET), "Iv1.n0such4pp"),
    ],
)
def test_credentials_that_are_not_the_apps_are_unauthorized(
    github: FakeGitHub, auth: tuple[str, str] | None, client_id: str
) -> None:
    token = device_token(github)
    answer = revoke(github, f'{{"access_token": "{token}"}}'.encode(), auth, client_id)
    assert answer.status_code == 401
    assert answer.json()["message"] == "Bad credentials"
    assert api(github, token).status_code == 200
