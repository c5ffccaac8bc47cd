"""The fake authorization endpoint and code grant keep to RFC 6749 section 4.1, RFC 7636 (PKCE)
and RFC 8252 section 7.3 (loopback redirects), and trickle's Linker links through them."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.testing.linking_app import MakeApp, linked_accounts
from trickle.app import App
from trickle.core.clock import clock
from trickle.linking.accounts import LinkError
from trickle.linking.service import Linker
from trickle.testing.fake_authorize import FakeAuthorizationServer, redirect_uri_matches, s256
from trickle.testing.oauth_connector import FakeOAuthConnector, FakePublicOAuthConnector

SECRET = "s3cret-of-the-app-0123456789"
LOOPBACK = "http://127.0.0.1/callback"
CALLBACK = "http://127.0.0.1:53682/callback"
WEB = "https://web.example/oauth/back?from=fake"


@pytest.fixture
def fake(now: datetime) -> Iterator[FakeAuthorizationServer]:
    with FakeAuthorizationServer() as server:
        server.register_client("app", SECRET, redirect_uris=(LOOPBACK, "https://app.example/cb"))
        server.register_client("native", redirect_uris=(LOOPBACK,))
        server.register_client("web", SECRET, redirect_uris=(WEB,))
        server.add_account("alice")
        server.sign_in("alice")
        yield server


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, s256(verifier)


def authorize(
    fake: FakeAuthorizationServer, params: dict[str, str] | list[tuple[str, str]]
) -> requests.Response:
    """The browser opens the authorization URL; redirects are not followed."""
    query = urlencode(params)
    return requests.get(
        f"{fake.base_url}/oauth/authorize?{query}", allow_redirects=False, timeout=5
    )


def request_for(
    client: str = "native", challenge: str | None = None, **changes: str
) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client,
        "redirect_uri": CALLBACK,
        "scope": "likes:read",
        "state": "st4te-of-the-client",
    }
    if challenge is not None:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(changes)
    return params


def sent_back(answer: requests.Response) -> dict[str, str]:
    """The parameters of the redirect (a 302 to the redirect URI)."""
    assert answer.status_code == 302, answer.text
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}


def exchange(
    fake: FakeAuthorizationServer,
    code: str,
    verifier: str | None,
    *,
    client: str = "native",
    redirect_uri: str | None = CALLBACK,
    **extra: str,
) -> requests.Response:
    form = {"grant_type": "authorization_code", "code": code, "client_id": client, **extra}
    if client != "native":
        form["client_secret"] = SECRET
    if redirect_uri is not None:
        form["redirect_uri"] = redirect_uri
    if verifier is not None:
        form["code_verifier"] = verifier
    return requests.post(f"{fake.base_url}/oauth/token", data=form, timeout=5)


def code_for(
    fake: FakeAuthorizationServer, client: str = "native", **changes: str
) -> tuple[str, str]:
    """An approved authorization of ``client``'s: (code, verifier)."""
    verifier, challenge = pkce()
    return sent_back(authorize(fake, request_for(client, challenge, **changes)))["code"], verifier


# ---------------------------------------------------------------------------
# redirect URIs (RFC 6749 section 3.1.2.3, RFC 8252 section 7.3)


@pytest.mark.parametrize(
    ("registered", "uri", "matches"),
    [
        ("https://app.example/cb", "https://app.example/cb", True),
        ("https://app.example/cb", "https://app.example/cb/", False),
        ("https://app.example/cb", "https://APP.example/cb", False),
        ("https://app.example/cb", "https://app.example:8443/cb", False),
        ("https://app.example/cb", "https://app.example/cb?x=1", False),
        ("http://127.0.0.1/callback", "http://127.0.0.1:53682/callback", True),
        ("http://127.0.0.1:8000/callback", "http://127.0.0.1:9000/callback", True),
        ("http://[::1]/callback", "http://[::1]:4000/callback", True),
        ("http://127.0.0.1/callback", "http://127.0.0.1:53682/other", False),
        ("http://127.0.0.1/callback", "http://127.0.0.1:53682/callback?x=1", False),
        ("http://127.0.0.1/callback", "http://127.0.0.1:53682/callback#top", False),
        ("http://127.0.0.1/callback", "http://127.0.0.1:99999/callback", False),
        ("http://127.0.0.1/callback", "http://me@127.0.0.1:53682/callback", False),
        ("http://127.0.0.1/callback", "https://127.0.0.1:53682/callback", False),
        ("http://127.0.0.1/callback", "http://[::1]:53682/callback", False),
        ("http://localhost/callback", "http://localhost:53682/callback", False),  # 8.3
    ],
)
def test_a_redirect_uri_matches_exactly_and_a_loopback_one_on_any_port(
    registered: str, uri: str, matches: bool
) -> None:
    assert redirect_uri_matches(registered, uri) is matches


def test_an_approved_request_goes_back_to_the_redirect_uri_with_a_code_and_the_state(
    fake: FakeAuthorizationServer,
) -> None:
    _, challenge = pkce()
    answer = authorize(fake, request_for(challenge=challenge))
    assert answer.headers["Location"].startswith(CALLBACK + "?")
    assert answer.headers["Cache-Control"] == "no-store"
    back = sent_back(answer)
    assert set(back) == {"code", "state"}
    assert back["state"] == "st4te-of-the-client"
    (issued,) = fake.codes
    assert (issued.code, issued.client_id, issued.username) == (back["code"], "native", "alice")
    assert (issued.scope, issued.challenge, issued.redirect_uri) == (
        ("likes:read",),
        challenge,
        CALLBACK,
    )


def test_the_redirect_keeps_the_query_of_the_redirect_uri_and_may_be_left_out_if_only_one(
    fake: FakeAuthorizationServer,
) -> None:
    _, challenge = pkce()
    params = request_for("web", challenge)
    del params["redirect_uri"]
    answer = authorize(fake, params)
    assert answer.headers["Location"].startswith(WEB + "&code=")
    assert sent_back(answer)["from"] == "fake"
    assert fake.codes[0].redirect_uri_given is False


def test_without_a_state_none_comes_back(fake: FakeAuthorizationServer) -> None:
    _, challenge = pkce()
    params = request_for(challenge=challenge)
    del params["state"]
    assert "state" not in sent_back(authorize(fake, params))


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"client_id": ""}, "client_id is missing"),
        ({"client_id": "nobody"}, "No application"),
        ({"redirect_uri": "https://evil.example/steal"}, "not registered"),
        ({"redirect_uri": "http://localhost:53682/callback"}, "not registered"),
        ({"redirect_uri": ""}, "must name one"),  # a loopback registration has no port
    ],
)
def test_a_request_of_an_unknown_client_or_to_an_unregistered_redirect_uri_is_a_page(
    fake: FakeAuthorizationServer, params: dict[str, str], says: str
) -> None:
    answer = authorize(fake, request_for(**params))
    assert answer.status_code == 400
    assert "Location" not in answer.headers  # RFC 6749 4.1.2.1: never redirected
    assert answer.headers["Content-Type"].startswith("text/html")
    assert says in answer.text
    assert fake.codes == []


def test_a_client_that_registered_no_redirect_uri_cannot_be_sent_back_to(
    fake: FakeAuthorizationServer,
) -> None:
    fake.register_client("bare", SECRET)
    answer = authorize(fake, request_for("bare"))
    assert (answer.status_code, "Location" in answer.headers) == (400, False)
    assert "registered no redirect URI" in answer.text


@pytest.mark.parametrize("repeated", ["client_id", "redirect_uri"])
def test_a_repeated_client_id_or_redirect_uri_is_a_page(
    fake: FakeAuthorizationServer, repeated: str
) -> None:
    params = [*request_for().items(), (repeated, request_for()[repeated])]
    answer = authorize(fake, params)
    assert answer.status_code == 400
    assert "Location" not in answer.headers


def test_the_error_page_escapes_what_the_request_said(fake: FakeAuthorizationServer) -> None:
    answer = authorize(fake, request_for(client_id='<script>alert("x")</script>'))
    assert answer.status_code == 400
    assert "<script>" not in answer.text
    assert "&lt;script&gt;" in answer.text
    assert answer.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    ("changes", "error", "described"),
    [
        ({"response_type": ""}, "invalid_request", "response_type is missing"),
        ({"response_type": "token"}, "unsupported_response_type", "token"),
        ({"scope": "likes:write"}, "invalid_scope", "likes:write is not a scope offered"),
        ({"scope": "likes:read  profile"}, "invalid_scope", "space-separated"),  # empty token
        ({"scope": 'likes:"read"'}, "invalid_scope", "space-separated"),  # not NQCHAR
        ({"code_challenge": "", "code_challenge_method": ""}, "invalid_request", "required"),
        ({"code_challenge_method": "plain"}, "invalid_request", "plain is refused"),
        ({"code_challenge_method": ""}, "invalid_request", "plain (the default) is refused"),
        ({"code_challenge_method": "S512"}, "invalid_request", "S512 is refused"),
        ({"code_challenge": "too-short"}, "invalid_request", "not a BASE64URL SHA-256"),
        ({"code_challenge": ""}, "invalid_request", "method without a challenge"),
    ],
)
def test_a_bad_request_goes_back_with_its_error_and_the_state(
    fake: FakeAuthorizationServer, changes: dict[str, str], error: str, described: str
) -> None:
    _, challenge = pkce()
    back = sent_back(authorize(fake, request_for(challenge=challenge, **changes)))
    assert back["error"] == error
    assert described in back["error_description"]
    assert back["state"] == "st4te-of-the-client"
    assert "code" not in back
    assert fake.codes == []


def test_any_other_parameter_given_twice_goes_back_as_invalid_request(
    fake: FakeAuthorizationServer,
) -> None:
    _, challenge = pkce()
    params = [*request_for(challenge=challenge).items(), ("scope", "profile")]
    assert sent_back(authorize(fake, params))["error"] == "invalid_request"


def test_a_client_may_ask_only_for_the_scope_it_registered(now: datetime) -> None:
    with FakeAuthorizationServer() as fake:
        fake.register_client("narrow", redirect_uris=(LOOPBACK,), scopes=("likes:read",))
        fake.add_account("alice")
        fake.sign_in("alice")
        _, challenge = pkce()
        wide = sent_back(authorize(fake, request_for("narrow", challenge, scope="profile")))
        assert wide["error"] == "invalid_scope"
        assert "code" in sent_back(authorize(fake, request_for("narrow", challenge)))


def test_without_a_scope_the_default_scope_is_granted(fake: FakeAuthorizationServer) -> None:
    _, challenge = pkce()
    params = request_for(challenge=challenge)
    del params["scope"]
    sent_back(authorize(fake, params))
    assert fake.codes[0].scope == ("likes:read", "profile")


# ---------------------------------------------------------------------------
# the person


def test_a_denied_consent_goes_back_with_access_denied_and_the_state(
    fake: FakeAuthorizationServer,
) -> None:
    fake.sign_in("alice", consent="deny")
    _, challenge = pkce()
    back = sent_back(authorize(fake, request_for(challenge=challenge)))
    assert (back["error"], back["state"]) == ("access_denied", "st4te-of-the-client")
    assert "code" not in back
    assert fake.codes == []


def test_nobody_signed_in_is_a_sign_in_page_and_no_code(fake: FakeAuthorizationServer) -> None:
    fake.sign_out()
    _, challenge = pkce()
    answer = authorize(fake, request_for(challenge=challenge))
    assert answer.status_code == 200
    assert "Location" not in answer.headers
    assert "Sign in" in answer.text
    assert fake.codes == []


def test_signing_in_someone_the_platform_does_not_know_is_a_mistake_in_the_test(
    fake: FakeAuthorizationServer,
) -> None:
    with pytest.raises(KeyError, match="bob"):
        fake.sign_in("bob")


# ---------------------------------------------------------------------------
# the authorization code grant (RFC 6749 section 4.1.3, RFC 7636 section 4.6)


def test_a_code_and_its_verifier_are_exchanged_for_tokens_of_the_approved_scope(
    fake: FakeAuthorizationServer,
) -> None:
    code, verifier = code_for(fake)
    answer = exchange(fake, code, verifier)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert (body["token_type"], body["scope"], body["expires_in"]) == ("Bearer", "likes:read", 3600)
    assert body["refresh_token"]
    me = requests.get(
        f"{fake.base_url}/api/me",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=5,
    )
    assert me.json()["username"] == "alice"
    assert fake.codes[0].spent


def test_a_code_presented_again_is_invalid_grant_and_revokes_the_tokens_it_gave(
    fake: FakeAuthorizationServer,
) -> None:
    code, verifier = code_for(fake)
    tokens = exchange(fake, code, verifier).json()
    again = exchange(fake, code, verifier)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
    assert fake.code_reuses == 1
    renew = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refused = requests.post(
        f"{fake.base_url}/oauth/token", data={**renew, "client_id": "native"}, timeout=5
    )
    assert refused.json()["error"] == "invalid_grant"


def test_a_code_expires_ten_minutes_after_it_was_issued_on_trickles_clock(
    fake: FakeAuthorizationServer,
) -> None:
    kept, kept_verifier = code_for(fake)
    late, late_verifier = code_for(fake)
    clock.advance(timedelta(minutes=9, seconds=59))
    assert exchange(fake, kept, kept_verifier).status_code == 200
    clock.advance(timedelta(seconds=1))
    expired = exchange(fake, late, late_verifier)
    assert (expired.status_code, expired.json()["error"]) == (400, "invalid_grant")
    assert "expired" in expired.json()["error_description"]


def test_a_code_is_good_only_for_the_client_it_was_issued_to(
    fake: FakeAuthorizationServer,
) -> None:
    code, verifier = code_for(fake)
    stolen = exchange(fake, code, verifier, client="app")  # authenticated, but not its code
    assert stolen.json()["error"] == "invalid_grant"
    assert exchange(fake, code, verifier).status_code == 200  # a failed exchange spends nothing


def test_a_code_is_good_only_with_the_redirect_uri_of_its_request(
    fake: FakeAuthorizationServer,
) -> None:
    code, verifier = code_for(fake)
    other_port = exchange(fake, code, verifier, redirect_uri="http://127.0.0.1:1234/callback")
    assert other_port.json()["error"] == "invalid_grant"
    missing = exchange(fake, code, verifier, redirect_uri=None)
    assert missing.json()["error"] == "invalid_request"
    assert exchange(fake, code, verifier).status_code == 200


@pytest.mark.parametrize(
    "verifier",
    [
        None,
        secrets.token_urlsafe(48),  # another, well-formed verifier
        "short",  # fewer than 43 characters
        "x" * 129,  # more than 128
        "ümlaut-" * 7,  # not unreserved characters
    ],
)
def test_a_missing_or_wrong_code_verifier_is_invalid_grant(
    fake: FakeAuthorizationServer, verifier: str | None
) -> None:
    code, right = code_for(fake)
    refused = exchange(fake, code, verifier)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    assert exchange(fake, code, right).status_code == 200


def test_the_challenge_itself_is_not_the_verifier(fake: FakeAuthorizationServer) -> None:
    code, _ = code_for(fake)
    challenge = fake.codes[0].challenge
    assert exchange(fake, code, challenge).json()["error"] == "invalid_grant"


def test_without_pkce_required_a_code_without_challenge_takes_no_verifier(now: datetime) -> None:
    with FakeAuthorizationServer(require_pkce=False) as fake:
        fake.register_client("native", redirect_uris=(LOOPBACK,))
        fake.add_account("alice")
        fake.sign_in("alice")
        code = sent_back(authorize(fake, request_for()))["code"]
        downgrade = exchange(fake, code, secrets.token_urlsafe(48))  # RFC 9700 section 2.1.1
        assert downgrade.json()["error"] == "invalid_grant"
        assert exchange(fake, code, None).status_code == 200


def test_a_confidential_client_exchanges_its_code_with_its_secret(
    fake: FakeAuthorizationServer,
) -> None:
    code, verifier = code_for(fake, "app")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
        "client_id": "app",
    }
    unauthenticated = requests.post(f"{fake.base_url}/oauth/token", data=form, timeout=5)
    assert (unauthenticated.status_code, unauthenticated.json()["error"]) == (401, "invalid_client")
    assert exchange(fake, code, verifier, client="app").status_code == 200


@pytest.mark.parametrize("code", [None, "fo-code-never-issued"])
def test_a_missing_or_unknown_code_is_refused(
    fake: FakeAuthorizationServer, code: str | None
) -> None:
    answer = exchange(fake, code or "", None)
    assert answer.json()["error"] == ("invalid_grant" if code else "invalid_request")


# ---------------------------------------------------------------------------
# trickle's Linker against the fake


def app_for(make_app: MakeApp, fake: FakeAuthorizationServer) -> App:
    """An App whose OAuth 2 test connectors point at ``fake``."""
    where = {"base_url": fake.base_url, "oauth_base_url": fake.base_url}
    return make_app(
        [FakeOAuthConnector, FakePublicOAuthConnector],
        {
            "fake_oauth": {"client_id": "app", "client_secret": SECRET, **where},
            "fake_oauth_public": {"client_id": "native", **where},
        },
    )


@pytest.mark.parametrize("platform", ["fake_oauth", "fake_oauth_public"])
def test_trickle_links_an_account_through_the_code_flow_with_pkce(
    fake: FakeAuthorizationServer, make_app: MakeApp, platform: str
) -> None:
    app = app_for(make_app, fake)
    linker = Linker(app)

    authorization = linker.authorize(platform, "ann", redirect_uri=CALLBACK)
    browser = requests.get(authorization.url, allow_redirects=False, timeout=5)
    linked = linker.complete(browser.headers["Location"])

    assert (linked.user, linked.platform, linked.handle) == ("ann", platform, "alice")
    (issued,) = fake.codes
    assert issued.spent
    assert issued.challenge is not None
    assert issued.scope == ("likes:read", "profile")
    (account,) = linked_accounts(app)
    credentials = app.box.open(account.credentials)
    assert fake.accepts(credentials)
    assert credentials.issued_by == "oauth2"
    assert credentials.expires_at == clock.now() + timedelta(hours=1)


def test_a_denied_consent_links_nothing(fake: FakeAuthorizationServer, make_app: MakeApp) -> None:
    app = app_for(make_app, fake)
    linker = Linker(app)
    fake.sign_in("alice", consent="deny")
    authorization = linker.authorize("fake_oauth_public", "ann", redirect_uri=CALLBACK)
    browser = requests.get(authorization.url, allow_redirects=False, timeout=5)
    with pytest.raises(LinkError, match="you did not allow trickle"):
        linker.complete(browser.headers["Location"])
    assert linked_accounts(app) == []


def test_unlinking_revokes_the_public_clients_token(
    fake: FakeAuthorizationServer, make_app: MakeApp
) -> None:
    app = app_for(make_app, fake)
    linker = Linker(app)
    authorization = linker.authorize("fake_oauth_public", "ann", redirect_uri=CALLBACK)
    linker.complete(
        requests.get(authorization.url, allow_redirects=False, timeout=5).headers["Location"]
    )
    unlinked = linker.unlink("fake_oauth_public", "ann")
    assert unlinked.revoked
    (revocation,) = fake.revocations
    assert (revocation.client_id, revocation.kind, revocation.username) == (
        "native",
        "access_token",
        "alice",
    )


def test_unlinking_revokes_the_confidential_clients_token_as_it_authenticates(
    fake: FakeAuthorizationServer, make_app: MakeApp
) -> None:
    app = app_for(make_app, fake)
    linker = Linker(app)
    authorization = linker.authorize("fake_oauth", "ann", redirect_uri=CALLBACK)
    linker.complete(
        requests.get(authorization.url, allow_redirects=False, timeout=5).headers["Location"]
    )
    unlinked = linker.unlink("fake_oauth", "ann")
    assert unlinked.revoked, unlinked.note
    assert [r.client_id for r in fake.revocations] == ["app"]


def test_a_tokens_refresh_after_linking_goes_to_the_same_server(
    fake: FakeAuthorizationServer, make_app: MakeApp
) -> None:
    app = app_for(make_app, fake)
    linker = Linker(app)
    authorization = linker.authorize("fake_oauth_public", "ann", redirect_uri=CALLBACK)
    linker.complete(
        requests.get(authorization.url, allow_redirects=False, timeout=5).headers["Location"]
    )
    (account,) = linked_accounts(app)
    credentials = app.box.open(account.credentials)
    fake.expire_access_tokens("alice")
    session = app.connector("fake_oauth_public").session(credentials)
    body: Any = session.get_json("/api/me")
    assert body["username"] == "alice"
    assert fake.refreshes["alice"] == 1
