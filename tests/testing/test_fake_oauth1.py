"""The OAuth 1.0a fake keeps to RFC 5849: its three legs, single-use request tokens, and every
signature checked (the method, the consumer, the timestamp, the nonce, the token, the signature
over header, query and body); and trickle's Linker links through it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth1Auth

from tests.testing.linking_app import MakeApp, linked_accounts
from trickle.app import App
from trickle.core.clock import clock
from trickle.linking.accounts import LinkError
from trickle.linking.service import Linker
from trickle.testing import rfc5849
from trickle.testing.fake_oauth1 import FakeOAuth1
from trickle.testing.oauth1_connector import FakeOAuth1Connector

KEY = "consumer-key"
SECRET = "consumer-s3cret-0123456789"
CALLBACK = "http://127.0.0.1:53682/callback"


@pytest.fixture
def fake(now: datetime) -> Iterator[FakeOAuth1]:
    with FakeOAuth1() as server:
        server.register_consumer(KEY, SECRET)
        server.add_account("alice")
        server.sign_in("alice")
        yield server


def problem(answer: requests.Response) -> str:
    """The ``oauth_problem`` of a refusal."""
    assert answer.headers["Content-Type"] == "application/x-www-form-urlencoded"
    return dict(parse_qsl(answer.text))["oauth_problem"]


def ask_request_token(fake: FakeOAuth1, **auth: Any) -> requests.Response:
    signer = OAuth1Auth(auth.pop("client_id", KEY), **{"client_secret": SECRET, **auth})
    return requests.post(f"{fake.base_url}/oauth/request_token", auth=signer, timeout=5)


def request_token(fake: FakeOAuth1, callback: str = CALLBACK) -> dict[str, str]:
    answer = ask_request_token(fake, redirect_uri=callback)
    assert answer.status_code == 200, answer.text
    return dict(parse_qsl(answer.text))


def approve(fake: FakeOAuth1, token: str, **query: str) -> requests.Response:
    return requests.get(
        f"{fake.base_url}/oauth/authorize",
        params={"oauth_token": token, **query},
        allow_redirects=False,
        timeout=5,
    )


def exchange(fake: FakeOAuth1, token: dict[str, str], verifier: str) -> requests.Response:
    signer = OAuth1Auth(
        KEY,
        client_secret=SECRET,
        token=token["oauth_token"],
        token_secret=token["oauth_token_secret"],
        verifier=verifier,
    )
    return requests.post(f"{fake.base_url}/oauth/access_token", auth=signer, timeout=5)


def three_legs(fake: FakeOAuth1) -> dict[str, str]:
    """Token credentials the way an app gets them."""
    token = request_token(fake)
    back = parse_qs(urlsplit(approve(fake, token["oauth_token"]).headers["Location"]).query)
    answer = exchange(fake, token, back["oauth_verifier"][0])
    assert answer.status_code == 200, answer.text
    return dict(parse_qsl(answer.text))


def api(
    fake: FakeOAuth1, path: str, access: dict[str, str], secret: str = SECRET, **params: str
) -> requests.Response:
    signer = OAuth1Auth(
        KEY,
        client_secret=secret,
        token=access["oauth_token"],
        token_secret=access["oauth_token_secret"],
    )
    return requests.get(f"{fake.base_url}{path}", params=params, auth=signer, timeout=5)


def hand_signed(
    fake: FakeOAuth1,
    path: str,
    protocol: dict[str, str],
    *,
    token_secret: str = "",
    query: str = "",
) -> requests.Response:
    """A GET signed by this test with exactly the protocol parameters given."""
    base_uri = rfc5849.base_string_uri("http", fake.base_url.removeprefix("http://"), path)
    pairs = [*protocol.items(), *rfc5849.parse_form(query)]
    signature = rfc5849.hmac_sha1(rfc5849.base_string("GET", base_uri, pairs), SECRET, token_secret)
    header = rfc5849.authorization_header([*protocol.items(), ("oauth_signature", signature)])
    url = f"{fake.base_url}{path}" + (f"?{query}" if query else "")
    return requests.get(url, headers={"Authorization": header}, timeout=5)


def protocol_for(access: dict[str, str], **changes: str) -> dict[str, str]:
    params = {
        "oauth_consumer_key": KEY,
        "oauth_token": access["oauth_token"],
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": str(int(time.time())),
        "oauth_nonce": secrets.token_hex(8),
        "oauth_version": "1.0",
        **changes,
    }
    return {name: value for name, value in params.items() if value}


# ---------------------------------------------------------------------------
# temporary credentials (section 2.1)


def test_a_signed_consumer_gets_a_request_token_for_its_callback(fake: FakeOAuth1) -> None:
    answer = ask_request_token(fake, redirect_uri=CALLBACK)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/x-www-form-urlencoded"
    token = dict(parse_qsl(answer.text))
    assert set(token) == {"oauth_token", "oauth_token_secret", "oauth_callback_confirmed"}
    assert token["oauth_callback_confirmed"] == "true"
    (issued,) = fake.request_tokens
    assert (issued.token, issued.callback, issued.status) == (
        token["oauth_token"],
        CALLBACK,
        "issued",
    )


@pytest.mark.parametrize(
    ("callback", "status", "expected"),
    [
        (None, 400, "parameter_absent"),
        ("/callback", 400, "parameter_rejected"),
        ("ftp://127.0.0.1/callback", 400, "parameter_rejected"),
    ],
)
def test_a_request_token_needs_an_absolute_callback(
    fake: FakeOAuth1, callback: str | None, status: int, expected: str
) -> None:
    answer = ask_request_token(fake, redirect_uri=callback)
    assert (answer.status_code, problem(answer)) == (status, expected)
    assert fake.request_tokens == []


def test_an_out_of_band_request_token_shows_its_verifier_on_a_page(fake: FakeOAuth1) -> None:
    token = request_token(fake, "oob")
    page = approve(fake, token["oauth_token"])
    assert page.status_code == 200
    assert "Location" not in page.headers
    assert fake.request_tokens[0].verifier in page.text


# ---------------------------------------------------------------------------
# the person (section 2.2)


def test_an_approval_goes_back_to_the_signed_callback_with_the_token_and_a_verifier(
    fake: FakeOAuth1,
) -> None:
    token = request_token(fake, "http://127.0.0.1:53682/callback?from=fake")
    answer = approve(fake, token["oauth_token"], perms="read", oauth_callback="https://evil.test/")
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK  # not evil.test
    back = dict(parse_qsl(location.query))
    assert back["from"] == "fake"
    assert back["oauth_token"] == token["oauth_token"]
    issued = fake.request_tokens[0]
    assert (issued.status, issued.username, issued.verifier) == (
        "authorized",
        "alice",
        back["oauth_verifier"],
    )


def test_a_refusal_is_a_page_as_flickr_shows(fake: FakeOAuth1) -> None:
    fake.sign_in("alice", consent="deny")
    token = request_token(fake)
    answer = approve(fake, token["oauth_token"])
    assert answer.status_code == 200
    assert "Location" not in answer.headers
    assert "did not allow" in answer.text
    refused = exchange(fake, token, "any")
    assert (refused.status_code, problem(refused)) == (401, "permission_denied")


def test_a_refusal_may_go_back_to_the_callback_as_denied(now: datetime) -> None:
    with FakeOAuth1(denial="callback") as fake:
        fake.register_consumer(KEY, SECRET)
        fake.add_account("alice")
        fake.sign_in("alice", consent="deny")
        token = request_token(fake)
        answer = approve(fake, token["oauth_token"])
        assert answer.status_code == 302
        assert dict(parse_qsl(urlsplit(answer.headers["Location"]).query)) == {
            "denied": token["oauth_token"]
        }


def test_nobody_signed_in_is_a_sign_in_page(fake: FakeOAuth1) -> None:
    fake.sign_out()
    answer = approve(fake, request_token(fake)["oauth_token"])
    assert (answer.status_code, "Location" in answer.headers) == (200, False)
    assert "Sign in" in answer.text
    assert fake.request_tokens[0].status == "issued"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"oauth_token": "fo1-rt-unknown"}, "not known"),
        ({"perms": "everything"}, "no permission"),
    ],
)
def test_an_authorization_page_for_an_unknown_token_or_permission_is_400(
    fake: FakeOAuth1, query: dict[str, str], says: str
) -> None:
    token = request_token(fake)["oauth_token"]
    answer = approve(fake, query.pop("oauth_token", token), **query)
    assert (answer.status_code, "Location" in answer.headers) == (400, False)
    assert says in answer.text


def test_an_authorization_page_for_a_used_or_expired_token_is_400(fake: FakeOAuth1) -> None:
    used = request_token(fake)
    approve(fake, used["oauth_token"])
    assert approve(fake, used["oauth_token"]).status_code == 400
    late = request_token(fake)
    clock.advance(timedelta(minutes=10))
    assert approve(fake, late["oauth_token"]).status_code == 400


# ---------------------------------------------------------------------------
# token credentials (section 2.3)


def test_the_verifier_is_exchanged_once_for_token_credentials_that_sign_api_requests(
    fake: FakeOAuth1,
) -> None:
    token = request_token(fake)
    verifier = dict(
        parse_qsl(urlsplit(approve(fake, token["oauth_token"]).headers["Location"]).query)
    )["oauth_verifier"]
    answer = exchange(fake, token, verifier)
    assert answer.status_code == 200
    access = dict(parse_qsl(answer.text))
    assert set(access) == {"oauth_token", "oauth_token_secret", "user_nsid", "username"}
    assert (access["user_nsid"], access["username"]) == (fake.accounts["alice"].id, "alice")
    assert api(fake, "/api/me", access).json()["username"] == "alice"
    again = exchange(fake, token, verifier)
    assert (again.status_code, problem(again)) == (401, "token_used")


def test_a_wrong_verifier_is_refused_and_the_right_one_still_works(fake: FakeOAuth1) -> None:
    token = request_token(fake)
    location = approve(fake, token["oauth_token"]).headers["Location"]
    refused = exchange(fake, token, "guessed-verifier")
    assert (refused.status_code, problem(refused)) == (401, "verifier_invalid")
    verifier = dict(parse_qsl(urlsplit(location).query))["oauth_verifier"]
    assert exchange(fake, token, verifier).status_code == 200


def test_a_request_token_not_yet_authorized_or_expired_is_refused(fake: FakeOAuth1) -> None:
    pending = request_token(fake)
    assert problem(exchange(fake, pending, "v")) == "permission_unknown"
    late = request_token(fake)
    approve(fake, late["oauth_token"])
    clock.advance(timedelta(minutes=10))
    assert problem(exchange(fake, late, fake.request_tokens[1].verifier or "")) == "token_expired"


def test_a_request_token_is_not_an_access_token(fake: FakeOAuth1) -> None:
    token = request_token(fake)
    answer = api(fake, "/api/me", token)
    assert (answer.status_code, problem(answer)) == (401, "token_rejected")


# ---------------------------------------------------------------------------
# every signature checked (section 3.2)


def test_a_signature_with_the_wrong_secret_is_refused(fake: FakeOAuth1) -> None:
    access = three_legs(fake)
    answer = api(fake, "/api/me", access, secret="not-the-secret")
    assert (answer.status_code, problem(answer)) == (401, "signature_invalid")
    assert answer.headers["WWW-Authenticate"] == 'OAuth realm="fake-oauth1"'
    wrong_token = {**access, "oauth_token_secret": "not-it"}
    assert problem(api(fake, "/api/me", wrong_token)) == "signature_invalid"
    assert fake.problems == ["signature_invalid", "signature_invalid"]


def test_the_query_is_part_of_what_is_signed(fake: FakeOAuth1) -> None:
    access = three_legs(fake)
    signer = OAuth1Auth(
        KEY,
        client_secret=SECRET,
        token=access["oauth_token"],
        token_secret=access["oauth_token_secret"],
    )
    prepared = requests.Request("GET", f"{fake.base_url}/api/likes?limit=1", auth=signer).prepare()
    tampered = requests.get(
        f"{fake.base_url}/api/likes?limit=2", headers=dict(prepared.headers), timeout=5
    )
    assert problem(tampered) == "signature_invalid"
    assert api(fake, "/api/likes", access, limit="1", cursor="0").status_code == 200


def test_a_form_body_is_part_of_what_is_signed(fake: FakeOAuth1) -> None:
    signer = OAuth1Auth(KEY, client_secret=SECRET, redirect_uri=CALLBACK)
    url = f"{fake.base_url}/oauth/request_token"
    prepared = requests.Request("POST", url, data={"perms": "read"}, auth=signer).prepare()
    with requests.Session() as session:
        assert session.send(prepared, timeout=5).status_code == 200
        prepared.body = "perms=write"
        prepared.headers["Content-Length"] = str(len(prepared.body))
        assert problem(session.send(prepared, timeout=5)) == "signature_invalid"


def test_a_replayed_request_is_refused_for_its_nonce(fake: FakeOAuth1) -> None:
    access = three_legs(fake)
    signer = OAuth1Auth(
        KEY,
        client_secret=SECRET,
        token=access["oauth_token"],
        token_secret=access["oauth_token_secret"],
    )
    prepared = requests.Request("GET", f"{fake.base_url}/api/me", auth=signer).prepare()
    with requests.Session() as session:
        assert session.send(prepared, timeout=5).status_code == 200
        replayed = session.send(prepared, timeout=5)
    assert (replayed.status_code, problem(replayed)) == (401, "nonce_used")


def test_a_nonce_is_unique_per_timestamp(fake: FakeOAuth1) -> None:
    access = three_legs(fake)
    now = int(time.time())
    secret = access["oauth_token_secret"]
    first = protocol_for(access, oauth_nonce="n0nce", oauth_timestamp=str(now))
    assert hand_signed(fake, "/api/me", first, token_secret=secret).status_code == 200
    later = protocol_for(access, oauth_nonce="n0nce", oauth_timestamp=str(now - 1))
    assert hand_signed(fake, "/api/me", later, token_secret=secret).status_code == 200
    assert problem(hand_signed(fake, "/api/me", first, token_secret=secret)) == "nonce_used"


@pytest.mark.parametrize("skew", [-3600, 301, 3600])
def test_a_timestamp_far_from_the_servers_clock_is_refused(fake: FakeOAuth1, skew: int) -> None:
    access = three_legs(fake)
    fake.wall_clock = lambda: time.time() + skew
    answer = api(fake, "/api/me", access)
    assert (answer.status_code, problem(answer)) == (401, "timestamp_refused")
    assert "oauth_acceptable_timestamps" in dict(parse_qsl(answer.text))


def test_a_timestamp_within_the_window_is_accepted(fake: FakeOAuth1) -> None:
    access = three_legs(fake)
    fake.wall_clock = lambda: time.time() + 290
    assert api(fake, "/api/me", access).status_code == 200


@pytest.mark.parametrize(
    ("changes", "status", "expected"),
    [
        ({"oauth_signature_method": "PLAINTEXT"}, 400, "signature_method_rejected"),
        ({"oauth_signature_method": "RSA-SHA1"}, 400, "signature_method_rejected"),
        ({"oauth_version": "2.0"}, 400, "version_rejected"),
        ({"oauth_nonce": ""}, 400, "parameter_absent"),
        ({"oauth_timestamp": ""}, 400, "parameter_absent"),
        ({"oauth_timestamp": "soon"}, 400, "parameter_rejected"),
        ({"oauth_consumer_key": "someone-else"}, 401, "consumer_key_unknown"),
        ({"oauth_token": "fo1-at-unknown"}, 401, "token_rejected"),
    ],
)
def test_a_request_breaking_a_rule_of_section_3_is_refused_with_its_problem(
    fake: FakeOAuth1, changes: dict[str, str], status: int, expected: str
) -> None:
    access = three_legs(fake)
    answer = hand_signed(
        fake, "/api/me", protocol_for(access, **changes), token_secret=access["oauth_token_secret"]
    )
    assert (answer.status_code, problem(answer)) == (status, expected)


def test_a_protocol_parameter_given_twice_is_refused(fake: FakeOAuth1) -> None:
    access = three_legs(fake)
    protocol = protocol_for(access)
    answer = hand_signed(
        fake,
        "/api/me",
        protocol,
        token_secret=access["oauth_token_secret"],
        query=f"oauth_nonce={protocol['oauth_nonce']}",
    )
    assert (answer.status_code, problem(answer)) == (400, "parameter_rejected")


def test_a_hand_signed_request_by_the_rfc_is_accepted(fake: FakeOAuth1) -> None:
    access = three_legs(fake)
    answer = hand_signed(
        fake,
        "/api/likes",
        protocol_for(access, oauth_version=""),  # oauth_version is optional
        token_secret=access["oauth_token_secret"],
        query="limit=5&cursor=0&note=a+b%20c",
    )
    assert answer.status_code == 200, answer.text


def test_a_revoked_access_token_is_refused(fake: FakeOAuth1) -> None:
    access = three_legs(fake)
    fake.revoke("alice")
    assert problem(api(fake, "/api/me", access)) == "token_revoked"


def test_requests_are_counted_per_account_by_their_access_token(fake: FakeOAuth1) -> None:
    access = three_legs(fake)
    api(fake, "/api/me", access)
    api(fake, "/api/likes", access)
    assert fake.requests["alice"] == 2


# ---------------------------------------------------------------------------
# trickle's Linker against the fake


def app_for(make_app: MakeApp, fake: FakeOAuth1, secret: str = SECRET) -> App:
    table = {
        "consumer_key": KEY,
        "consumer_secret": secret,
        "base_url": fake.base_url,
        "oauth_base_url": fake.base_url,
    }
    return make_app([FakeOAuth1Connector], {"fake_oauth1": table})


def test_trickle_links_an_account_through_the_three_legs(
    fake: FakeOAuth1, make_app: MakeApp
) -> None:
    app = app_for(make_app, fake)
    linker = Linker(app)

    authorization = linker.authorize("fake_oauth1", "ann", redirect_uri=CALLBACK)
    browser = requests.get(authorization.url, allow_redirects=False, timeout=5)
    linked = linker.complete(browser.headers["Location"])

    assert (linked.platform, linked.handle) == ("fake_oauth1", "alice")
    assert parse_qs(urlsplit(authorization.url).query)["perms"] == ["read"]
    (requested,) = fake.request_tokens
    assert (requested.callback, requested.status, requested.perms) == (CALLBACK, "spent", "read")
    assert fake.refusals == []  # every request Authlib signed verified
    (account,) = linked_accounts(app)
    credentials = app.box.open(account.credentials)
    (issued,) = fake.access_tokens
    assert (credentials.access_token, credentials.token_secret) == (issued.token, issued.secret)
    assert credentials.issued_by == "oauth1"


def test_a_wrong_consumer_secret_links_nothing_and_asks_nothing_of_the_person(
    fake: FakeOAuth1, make_app: MakeApp
) -> None:
    app = app_for(make_app, fake, secret="not-the-secret")
    with pytest.raises(LinkError, match="refused asking for a request token"):
        Linker(app).authorize("fake_oauth1", "ann", redirect_uri=CALLBACK)
    assert fake.problems == ["signature_invalid"]
    assert fake.request_tokens == []


def test_a_refusal_shown_on_a_page_never_comes_back_and_links_nothing(
    fake: FakeOAuth1, make_app: MakeApp
) -> None:
    app = app_for(make_app, fake)
    fake.sign_in("alice", consent="deny")
    authorization = Linker(app).authorize("fake_oauth1", "ann", redirect_uri=CALLBACK)
    page = requests.get(authorization.url, allow_redirects=False, timeout=5)
    assert "Location" not in page.headers
    assert linked_accounts(app) == []
    assert fake.request_tokens[0].status == "denied"


def test_a_refusal_sent_back_to_the_callback_says_the_person_did_not_allow(
    make_app: MakeApp, now: datetime
) -> None:
    with FakeOAuth1(denial="callback") as fake:
        fake.register_consumer(KEY, SECRET)
        fake.add_account("alice")
        fake.sign_in("alice", consent="deny")
        app = app_for(make_app, fake)
        linker = Linker(app)
        authorization = linker.authorize("fake_oauth1", "ann", redirect_uri=CALLBACK)
        browser = requests.get(authorization.url, allow_redirects=False, timeout=5)
        try:
            with pytest.raises(LinkError, match="you did not allow trickle"):
                linker.complete(browser.headers["Location"])
        finally:
            assert linked_accounts(app) == []
