"""The fake device flow keeps to RFC 8628: the device authorization answer, polling with
authorization_pending and slow_down, a denied or expired code, one token per code; and trickle's
Linker links through it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from tests.testing.linking_app import MakeApp, linked_accounts
from trickle.app import App
from trickle.core.clock import clock
from trickle.linking.accounts import LinkError
from trickle.linking.service import Linker
from trickle.testing.fake_device import DEVICE_GRANT, FakeDeviceServer
from trickle.testing.oauth_connector import FakeOAuthConnector, FakePublicOAuthConnector

SECRET = "s3cret-of-the-app-0123456789"
USER_CODE = re.compile(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}")


@pytest.fixture
def fake(now: datetime) -> Iterator[FakeDeviceServer]:
    with FakeDeviceServer() as server:
        server.register_client("tv")  # public, as RFC 8628 section 3.4 expects
        server.register_client("other-tv")
        server.register_client("app", SECRET)
        server.add_account("alice")
        yield server


def device_code(fake: FakeDeviceServer, client: str = "tv", **form: str) -> requests.Response:
    data = {"client_id": client, "scope": "likes:read", **form}
    return requests.post(f"{fake.base_url}/oauth/device/code", data=data, timeout=5)


def poll(fake: FakeDeviceServer, code: str, client: str = "tv") -> requests.Response:
    form = {"grant_type": DEVICE_GRANT, "device_code": code, "client_id": client}
    return requests.post(f"{fake.base_url}/oauth/token", data=form, timeout=5)


def error_of(answer: requests.Response) -> str:
    assert answer.status_code == 400, answer.text
    error: str = answer.json()["error"]
    return error


def later(seconds: float) -> None:
    clock.advance(timedelta(seconds=seconds))


# ---------------------------------------------------------------------------
# the device authorization request (sections 3.1 and 3.2)


def test_the_device_authorization_answer_has_every_field_rfc_8628_names(
    fake: FakeDeviceServer,
) -> None:
    answer = device_code(fake)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert set(body) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert USER_CODE.fullmatch(body["user_code"])
    assert body["verification_uri"] == f"{fake.base_url}/oauth/device"
    assert body["verification_uri_complete"] == (
        f"{fake.base_url}/oauth/device?user_code={body['user_code']}"
    )
    assert (body["expires_in"], body["interval"]) == (900, 5)
    (device,) = fake.devices
    assert (device.client_id, device.scope, device.status) == ("tv", ("likes:read",), "pending")


def test_the_lifetime_and_interval_are_the_servers_to_choose(now: datetime) -> None:
    with FakeDeviceServer(device_expires_in=60, device_interval=2) as fake:
        fake.register_client("tv")
        body = device_code(fake).json()
        assert (body["expires_in"], body["interval"]) == (60, 2)


def test_user_codes_differ(fake: FakeDeviceServer) -> None:
    codes = {device_code(fake).json()["user_code"] for _ in range(20)}
    assert len(codes) == 20


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"client_id": "nobody"}, 401, "invalid_client"),
        ({"client_id": "app"}, 401, "invalid_client"),  # confidential: must authenticate
        ({"scope": "likes:write"}, 400, "invalid_scope"),
    ],
)
def test_a_device_authorization_request_authenticates_the_client_and_checks_the_scope(
    fake: FakeDeviceServer, form: dict[str, str], status: int, error: str
) -> None:
    answer = device_code(fake, **form)
    assert (answer.status_code, answer.json()["error"]) == (status, error)
    assert fake.devices == []


def test_a_confidential_client_asks_for_a_device_code_with_its_secret(
    fake: FakeDeviceServer,
) -> None:
    assert device_code(fake, "app", client_secret=SECRET).status_code == 200


def test_a_device_authorization_request_must_be_a_form(fake: FakeDeviceServer) -> None:
    answer = requests.post(
        f"{fake.base_url}/oauth/device/code", json={"client_id": "tv"}, timeout=5
    )
    assert answer.json()["error"] == "invalid_request"


# ---------------------------------------------------------------------------
# polling (sections 3.4 and 3.5)


def test_polling_before_the_person_answers_is_authorization_pending(
    fake: FakeDeviceServer,
) -> None:
    code = device_code(fake).json()["device_code"]
    for _ in range(3):
        later(5)
        assert error_of(poll(fake, code)) == "authorization_pending"
    assert (fake.devices[0].polls, fake.devices[0].slow_downs) == (3, 0)


def test_polling_sooner_than_the_interval_is_slow_down_and_the_interval_grows_by_five(
    fake: FakeDeviceServer,
) -> None:
    code = device_code(fake).json()["device_code"]
    later(4)  # the first poll too: the interval counts from the answer
    assert error_of(poll(fake, code)) == "slow_down"
    later(9)  # the interval is now 10 s
    assert error_of(poll(fake, code)) == "slow_down"
    later(15)  # and now 15 s
    assert error_of(poll(fake, code)) == "authorization_pending"
    later(14)
    assert error_of(poll(fake, code)) == "slow_down"
    assert fake.devices[0].interval == 20
    assert fake.devices[0].slow_downs == 3


def test_an_entered_code_gives_its_tokens_once(fake: FakeDeviceServer) -> None:
    body = device_code(fake).json()
    fake.enter_code(body["user_code"], "alice")
    later(5)
    answer = poll(fake, body["device_code"])
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    tokens = answer.json()
    assert tokens["scope"] == "likes:read"
    me = requests.get(
        f"{fake.base_url}/api/me",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=5,
    )
    assert me.json()["username"] == "alice"
    later(5)
    assert error_of(poll(fake, body["device_code"])) == "invalid_grant"
    assert fake.devices[0].status == "spent"


def test_an_approved_code_is_answered_even_when_polled_too_soon(fake: FakeDeviceServer) -> None:
    body = device_code(fake).json()
    fake.enter_code(body["user_code"], "alice")
    assert poll(fake, body["device_code"]).status_code == 200


def test_a_denied_code_is_access_denied(fake: FakeDeviceServer) -> None:
    body = device_code(fake).json()
    fake.deny_code(body["user_code"])
    later(5)
    assert error_of(poll(fake, body["device_code"])) == "access_denied"
    with pytest.raises(ValueError, match="answered already"):
        fake.enter_code(body["user_code"], "alice")


def test_a_code_not_entered_in_time_is_expired_token(fake: FakeDeviceServer) -> None:
    body = device_code(fake).json()
    later(899)
    assert error_of(poll(fake, body["device_code"])) == "authorization_pending"
    later(1)
    assert error_of(poll(fake, body["device_code"])) == "expired_token"
    with pytest.raises(ValueError, match="expired"):
        fake.enter_code(body["user_code"], "alice")


def test_a_device_code_is_good_only_for_its_client(fake: FakeDeviceServer) -> None:
    body = device_code(fake).json()
    fake.enter_code(body["user_code"], "alice")
    later(5)
    assert error_of(poll(fake, body["device_code"], client="other-tv")) == "invalid_grant"
    assert poll(fake, body["device_code"]).status_code == 200


@pytest.mark.parametrize(("code", "error"), [("", "invalid_request"), ("fo-dc-x", "invalid_grant")])
def test_a_missing_or_unknown_device_code_is_refused(
    fake: FakeDeviceServer, code: str, error: str
) -> None:
    assert error_of(poll(fake, code)) == error


def test_a_user_code_is_read_case_insensitively_and_without_dashes(
    fake: FakeDeviceServer,
) -> None:
    body = device_code(fake).json()
    fake.enter_code(body["user_code"].replace("-", "").lower(), "alice")
    assert fake.devices[0].status == "approved"
    with pytest.raises(ValueError, match="no code"):
        fake.enter_code("AEIO-UAEI", "alice")  # vowels: never a user code


# ---------------------------------------------------------------------------
# the verification page


def verification(fake: FakeDeviceServer, **query: str) -> requests.Response:
    return requests.get(
        f"{fake.base_url}/oauth/device", params=query, allow_redirects=False, timeout=5
    )


def test_the_verification_page_asks_for_the_code(fake: FakeDeviceServer) -> None:
    answer = verification(fake)
    assert answer.status_code == 200
    assert '<input name="user_code"' in answer.text


def test_the_verification_uri_complete_approves_as_the_signed_in_person(
    fake: FakeDeviceServer,
) -> None:
    body = device_code(fake).json()
    assert "Sign in" in verification(fake, user_code=body["user_code"]).text
    assert fake.devices[0].status == "pending"
    fake.sign_in("alice")
    answer = requests.get(body["verification_uri_complete"], timeout=5)
    assert "Device connected" in answer.text
    assert (fake.devices[0].status, fake.devices[0].username) == ("approved", "alice")


def test_the_signed_in_person_may_deny_at_the_verification_page(fake: FakeDeviceServer) -> None:
    body = device_code(fake).json()
    fake.sign_in("alice", consent="deny")
    assert "did not allow" in verification(fake, user_code=body["user_code"]).text
    assert fake.devices[0].status == "denied"


def test_an_unknown_code_at_the_verification_page_is_said_and_escaped(
    fake: FakeDeviceServer,
) -> None:
    fake.sign_in("alice")
    answer = verification(fake, user_code="<b>NOPE</b>")
    assert answer.status_code == 400
    assert "unknown, expired or used" in answer.text
    assert "<b>" not in answer.text


# ---------------------------------------------------------------------------
# trickle's Linker against the fake


def app_for(make_app: MakeApp, fake: FakeDeviceServer) -> App:
    where = {"base_url": fake.base_url, "oauth_base_url": fake.base_url}
    return make_app(
        [FakeOAuthConnector, FakePublicOAuthConnector],
        {
            "fake_oauth": {"client_id": "app", "client_secret": SECRET, **where},
            "fake_oauth_public": {"client_id": "tv", **where},
        },
    )


def test_trickle_links_an_account_through_the_device_flow(
    fake: FakeDeviceServer, make_app: MakeApp
) -> None:
    app = app_for(make_app, fake)
    linker = Linker(app)
    device = linker.start_device("fake_oauth_public", "ann")
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # the person enters the code during the second wait
        later(seconds)
        slept.append(seconds)
        if len(slept) == 2:
            fake.enter_code(device.user_code, "alice")

    linked = linker.wait_device(device, sleep=sleep)

    assert (linked.platform, linked.handle) == ("fake_oauth_public", "alice")
    assert device.verification_uri == f"{fake.base_url}/oauth/device"
    assert slept == [5, 5]
    (issued,) = fake.devices
    assert (issued.status, issued.polls, issued.slow_downs) == ("spent", 2, 0)
    (account,) = linked_accounts(app)
    credentials = app.box.open(account.credentials)
    assert fake.accepts(credentials)
    assert credentials.issued_by == "device"


def test_trickle_waits_five_seconds_longer_after_a_slow_down(
    fake: FakeDeviceServer, make_app: MakeApp
) -> None:
    linker = Linker(app_for(make_app, fake))
    device = linker.start_device("fake_oauth_public", "ann")
    assert linker.poll_device(device) == (None, 10)  # asked at once: too soon
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        later(seconds)
        slept.append(seconds)
        if len(slept) == 2:
            fake.enter_code(device.user_code, "alice")

    linker.wait_device(replace(device, interval=10), sleep=sleep)
    assert slept == [10, 10]
    assert fake.devices[0].slow_downs == 1


def test_a_denied_device_code_links_nothing(fake: FakeDeviceServer, make_app: MakeApp) -> None:
    app = app_for(make_app, fake)
    linker = Linker(app)
    device = linker.start_device("fake_oauth_public", "ann")
    fake.deny_code(device.user_code)
    with pytest.raises(LinkError, match="you did not allow trickle"):
        linker.wait_device(device, sleep=later)
    assert linked_accounts(app) == []


def test_a_device_code_never_entered_expires_and_links_nothing(
    make_app: MakeApp, now: datetime
) -> None:
    with FakeDeviceServer(device_expires_in=12) as fake:
        fake.register_client("tv")
        app = app_for(make_app, fake)
        linker = Linker(app)
        device = linker.start_device("fake_oauth_public", "ann")
        with pytest.raises(LinkError, match="expired before it was entered"):
            linker.wait_device(device, sleep=later)
        assert linked_accounts(app) == []
        assert fake.devices[0].polls == 2  # at 5 s and 10 s; at 12 s trickle gave up


def test_unlinking_revokes_a_device_token(fake: FakeDeviceServer, make_app: MakeApp) -> None:
    linker = Linker(app_for(make_app, fake))
    device = linker.start_device("fake_oauth_public", "ann")
    fake.enter_code(device.user_code, "alice")
    linker.wait_device(device, sleep=later)
    assert linker.unlink("fake_oauth_public", "ann").revoked
    assert [(r.client_id, r.kind) for r in fake.revocations] == [("tv", "access_token")]


def test_a_confidential_client_links_through_the_device_flow(
    fake: FakeDeviceServer, make_app: MakeApp
) -> None:
    linker = Linker(app_for(make_app, fake))
    device = linker.start_device("fake_oauth", "ann")
    fake.enter_code(device.user_code, "alice")
    linked: Any = linker.wait_device(device, sleep=later)
    assert linked.handle == "alice"
