"""The made-up OAuth 2 platform keeps to RFC 6749 where a client can tell: its token endpoint,
client authentication (public clients too), single-use refresh tokens, expiring bearer
tokens, RFC 7009 revocation and its API."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from tests.testing.linking_app import MakeApp, linked_accounts
from trickle.core.clock import clock
from trickle.linking.service import Linker
from trickle.testing.fake_oauth import FakeOAuth, Phase
from trickle.testing.oauth_connector import FakeOAuthConnector

SECRET = "s3cret-of-the-app"


@pytest.fixture
def fake(now: datetime) -> Iterator[FakeOAuth]:
    with FakeOAuth() as platform:
        platform.register_client("app", SECRET)
        platform.register_client("basic-app", SECRET, "client_secret_basic")
        platform.register_client("native")  # a public client: no secret
        platform.add_account("alice")
        yield platform


def token_request(
    fake: FakeOAuth, form: dict[str, str] | list[tuple[str, str]], **kwargs: Any
) -> requests.Response:
    return requests.post(f"{fake.base_url}/oauth/token", data=form, timeout=5, **kwargs)


def refresh(fake: FakeOAuth, refresh_token: str | None, client: str = "app") -> requests.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token or ""}
    return token_request(fake, {**form, "client_id": client, "client_secret": SECRET})


def api(fake: FakeOAuth, path: str, token: str, **params: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.get(f"{fake.base_url}{path}", headers=headers, params=params, timeout=5)


def test_a_refresh_answers_new_tokens_and_spends_the_refresh_token(fake: FakeOAuth) -> None:
    first = fake.issue("alice", "app")
    answer = refresh(fake, first.refresh_token)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "likes:read profile"
    assert body["refresh_token"] != first.refresh_token
    assert fake.refreshes["alice"] == 1
    assert fake.current_refresh_token("alice") == body["refresh_token"]
    (rotation,) = fake.rotations
    assert (rotation.spent, rotation.issued) == (first.refresh_token, body["refresh_token"])


def test_a_spent_refresh_token_is_invalid_grant_and_ends_the_grant(fake: FakeOAuth) -> None:
    first = fake.issue("alice", "app")
    renewed = refresh(fake, first.refresh_token).json()
    again = refresh(fake, first.refresh_token)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert fake.reuses["alice"] == 1
    assert refresh(fake, renewed["refresh_token"]).json()["error"] == "invalid_grant"  # revoked
    assert api(fake, "/api/me", renewed["access_token"]).status_code == 401
    assert fake.refreshes["alice"] == 1


def test_without_rotation_a_refresh_keeps_the_refresh_token(now: datetime) -> None:
    with FakeOAuth(single_use_refresh_tokens=False) as fake:
        fake.register_client("app", SECRET)
        fake.add_account("alice")
        first = fake.issue("alice", "app")
        for _ in range(2):
            body = refresh(fake, first.refresh_token).json()
            assert "refresh_token" not in body
            assert api(fake, "/api/me", body["access_token"]).status_code == 200


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"refresh_token": "x"}, "invalid_request"),  # no grant_type
        ({"grant_type": "password", "username": "a"}, "unsupported_grant_type"),
        ({"grant_type": "refresh_token"}, "invalid_request"),  # no refresh_token
        ({"grant_type": "refresh_token", "refresh_token": "fo-rt-unknown"}, "invalid_grant"),
    ],
)
def test_bad_token_requests_get_rfc_6749_errors(
    fake: FakeOAuth, form: dict[str, str], error: str
) -> None:
    answer = token_request(fake, {**form, "client_id": "app", "client_secret": SECRET})
    assert answer.status_code == 400
    assert answer.json()["error"] == error
    assert answer.json()["error_description"]


def test_a_repeated_parameter_or_a_json_body_is_an_invalid_request(fake: FakeOAuth) -> None:
    tokens = fake.issue("alice", "app")
    form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens.refresh_token or ""),
        ("refresh_token", tokens.refresh_token or ""),
        ("client_id", "app"),
        ("client_secret", SECRET),
    ]
    assert token_request(fake, form).json()["error"] == "invalid_request"
    as_json = requests.post(f"{fake.base_url}/oauth/token", json=dict(form[:2]), timeout=5).json()
    assert as_json["error"] == "invalid_request"
    assert fake.refreshes["alice"] == 0


def test_more_scope_than_the_grant_gave_is_invalid_scope(fake: FakeOAuth) -> None:
    tokens = fake.issue("alice", "app", scope=("likes:read",))
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token or ""}
    credentials = {"client_id": "app", "client_secret": SECRET}
    wider = token_request(fake, {**form, **credentials, "scope": "likes:read profile"})
    assert wider.json()["error"] == "invalid_scope"
    same = token_request(fake, {**form, **credentials, "scope": "likes:read"})
    assert same.json()["scope"] == "likes:read"


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def test_client_secret_basic_authenticates_a_client_registered_for_it(fake: FakeOAuth) -> None:
    tokens = fake.issue("alice", "basic-app")
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token or ""}
    answer = token_request(fake, form, headers={"Authorization": basic("basic-app", SECRET)})
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("client", "header", "form_secret", "status", "error"),
    [
        ("basic-app", basic("basic-app", "wrong"), None, 401, "invalid_client"),
        ("basic-app", "Basic !!!", None, 401, "invalid_client"),
        ("basic-app", None, SECRET, 401, "invalid_client"),  # registered for basic
        ("app", basic("app", SECRET), None, 401, "invalid_client"),  # registered for post
        ("app", None, "wrong", 401, "invalid_client"),
        ("app", None, None, 401, "invalid_client"),  # no authentication at all
        ("app", basic("app", SECRET), SECRET, 400, "invalid_request"),  # two methods
    ],
)
def test_a_client_that_fails_authentication_is_refused_before_its_grant_is_read(
    fake: FakeOAuth,
    client: str,
    header: str | None,
    form_secret: str | None,
    status: int,
    error: str,
) -> None:
    tokens = fake.issue("alice", client)
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token or ""}
    if form_secret is not None:
        form.update(client_id=client, client_secret=form_secret)
    headers = {"Authorization": header} if header else {}
    answer = token_request(fake, form, headers=headers)
    assert (answer.status_code, answer.json()["error"]) == (status, error)
    if header and status == 401:
        assert answer.headers["WWW-Authenticate"].startswith("Basic ")
    assert fake.refreshes["alice"] == 0
    assert fake.accepts(tokens.credentials())


def test_a_refresh_token_of_another_client_is_invalid_grant(fake: FakeOAuth) -> None:
    fake.register_client("other", SECRET)
    tokens = fake.issue("alice", "app")
    assert refresh(fake, tokens.refresh_token, client="other").json()["error"] == "invalid_grant"
    assert fake.accepts(tokens.credentials())


def test_an_access_token_works_for_its_lifetime_on_trickles_clock(fake: FakeOAuth) -> None:
    tokens = fake.issue("alice", "app")
    me = api(fake, "/api/me", tokens.access_token)
    assert me.json() == {"id": fake.accounts["alice"].id, "username": "alice"}
    clock.advance(timedelta(minutes=59, seconds=59))
    assert api(fake, "/api/me", tokens.access_token).status_code == 200
    clock.advance(timedelta(seconds=1))
    expired = api(fake, "/api/me", tokens.access_token)
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]
    assert fake.accepts(tokens.credentials())  # by its refresh token


def test_unknown_revoked_and_ended_tokens_are_refused(fake: FakeOAuth) -> None:
    assert api(fake, "/api/me", "fo-at-made-up").status_code == 401
    tokens = fake.issue("alice", "app")
    fake.expire_access_tokens("alice")
    assert api(fake, "/api/me", tokens.access_token).status_code == 401
    assert refresh(fake, tokens.refresh_token).status_code == 200  # the grant lives on
    fake.revoke("alice")
    assert not fake.accepts(tokens.credentials())
    assert fake.current_refresh_token("alice") is None


def test_likes_are_listed_newest_first_page_by_page(fake: FakeOAuth, now: datetime) -> None:
    for n in (3, 1, 2):
        fake.like("alice", f"item-{n}", at=now - timedelta(minutes=10 - n), author=f"maker{n}")
    tokens = fake.issue("alice", "app")
    first = api(fake, "/api/likes", tokens.access_token, limit="2").json()
    assert [like["id"] for like in first["likes"]] == ["item-3", "item-2"]
    assert first["likes"][0]["author"] == {"id": "a-maker3", "name": "maker3"}
    assert first["likes"][0]["liked_at"] == (now - timedelta(minutes=7)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    last = api(fake, "/api/likes", tokens.access_token, limit="2", cursor=first["next_cursor"])
    assert [like["id"] for like in last.json()["likes"]] == ["item-1"]
    assert last.json()["next_cursor"] is None


def test_a_rate_limited_account_is_told_when_to_come_back(fake: FakeOAuth, now: datetime) -> None:
    tokens = fake.issue("alice", "app")
    fake.rate_limit("alice", now + timedelta(seconds=90))
    answer = api(fake, "/api/likes", tokens.access_token)
    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "90")


def test_requests_are_counted_per_account_whichever_token_they_carry(fake: FakeOAuth) -> None:
    tokens = fake.issue("alice", "app")
    api(fake, "/api/me", tokens.access_token)
    renewed = refresh(fake, tokens.refresh_token).json()
    api(fake, "/api/me", renewed["access_token"])
    assert fake.requests["alice"] == 3


def test_hooks_hold_a_request_after_the_rotation_and_at_a_new_tokens_first_use(
    fake: FakeOAuth,
) -> None:
    seen: list[tuple[Phase, str, str | None]] = []
    fake.hook(Phase.ROTATED, lambda user: seen.append((Phase.ROTATED, user, current())))
    fake.hook(Phase.FIRST_USE, lambda user: seen.append((Phase.FIRST_USE, user, current())))

    def current() -> str | None:
        return fake.current_refresh_token("alice")

    tokens = fake.issue("alice", "app")
    api(fake, "/api/me", tokens.access_token)  # not from a refresh: no hook
    renewed = refresh(fake, tokens.refresh_token).json()
    api(fake, "/api/me", renewed["access_token"])
    api(fake, "/api/me", renewed["access_token"])  # not the first use
    assert seen == [
        (Phase.ROTATED, "alice", renewed["refresh_token"]),
        (Phase.FIRST_USE, "alice", renewed["refresh_token"]),
    ]


# ---------------------------------------------------------------------------
# public clients (RFC 6749 section 2.1, RFC 7591's "none")


def test_a_public_client_authenticates_by_its_client_id_alone(fake: FakeOAuth) -> None:
    tokens = fake.issue("alice", "native")
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token or ""}
    answer = token_request(fake, {**form, "client_id": "native"})
    assert answer.status_code == 200
    assert answer.json()["refresh_token"] != tokens.refresh_token


@pytest.mark.parametrize(
    ("form", "header"),
    [
        ({"client_id": "native", "client_secret": "made-up"}, None),  # it has no secret
        ({}, basic("native", "made-up")),
        ({"client_id": "app"}, None),  # a confidential client must authenticate
        ({"client_id": "nobody"}, None),
    ],
)
def test_a_client_not_authenticating_as_it_registered_is_invalid_client(
    fake: FakeOAuth, form: dict[str, str], header: str | None
) -> None:
    tokens = fake.issue("alice", "native")
    grant = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token or ""}
    headers = {"Authorization": header} if header else {}
    answer = token_request(fake, {**grant, **form}, headers=headers)
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")
    assert fake.refreshes["alice"] == 0


def test_basic_authentication_naming_another_client_id_in_the_form_is_refused(
    fake: FakeOAuth,
) -> None:
    tokens = fake.issue("alice", "basic-app")
    form = {
        "grant_type": "refresh_token",
        "refresh_token": tokens.refresh_token or "",
        "client_id": "app",
    }
    answer = token_request(fake, form, headers={"Authorization": basic("basic-app", SECRET)})
    assert answer.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("secret", "method", "uris"),
    [
        ("s", "none", ()),  # a public client with a secret
        (None, "client_secret_post", ()),  # a confidential one without
        (None, None, ("/callback",)),  # not absolute
        (None, None, ("https://app.example/cb#here",)),  # a fragment (section 3.1.2)
    ],
)
def test_a_client_registration_the_rfc_rules_out_is_refused(
    fake: FakeOAuth, secret: str | None, method: Any, uris: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError, match=r"secret|absolute URI"):
        fake.register_client("odd", secret, method, redirect_uris=uris)
    assert "odd" not in fake.clients


def test_tokens_that_never_expire_come_without_expires_in_or_refresh_token(
    now: datetime,
) -> None:
    with FakeOAuth(access_token_lifetime=None, refresh_tokens=False) as fake:
        fake.register_client("app", SECRET)
        fake.add_account("alice")
        tokens = fake.issue("alice", "app")
        assert set(tokens.to_json()) == {"access_token", "token_type", "scope"}
        assert tokens.credentials().expires_at is None
        clock.advance(timedelta(days=400))
        assert api(fake, "/api/me", tokens.access_token).status_code == 200


# ---------------------------------------------------------------------------
# revocation (RFC 7009)


def revoke(
    fake: FakeOAuth, token: str, *, client: str = "app", hint: str | None = None
) -> requests.Response:
    form = {"token": token, "client_id": client}
    if client != "native":
        form["client_secret"] = SECRET
    if hint is not None:
        form["token_type_hint"] = hint
    return requests.post(f"{fake.base_url}/oauth/revoke", data=form, timeout=5)


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token", "something_else"])
def test_revoking_an_access_token_ends_its_grant_whatever_the_hint(
    fake: FakeOAuth, hint: str | None
) -> None:
    tokens = fake.issue("alice", "app")
    answer = revoke(fake, tokens.access_token, hint=hint)
    assert answer.status_code == 200
    assert api(fake, "/api/me", tokens.access_token).status_code == 401
    assert refresh(fake, tokens.refresh_token).json()["error"] == "invalid_grant"
    (revocation,) = fake.revocations
    assert (revocation.client_id, revocation.hint, revocation.kind) == ("app", hint, "access_token")
    assert (revocation.username, revocation.at) == ("alice", clock.now())


def test_revoking_a_refresh_token_ends_the_access_tokens_of_its_grant(fake: FakeOAuth) -> None:
    tokens = fake.issue("alice", "app")
    assert revoke(fake, tokens.refresh_token or "", hint="refresh_token").status_code == 200
    assert api(fake, "/api/me", tokens.access_token).status_code == 401
    assert fake.revocations[0].kind == "refresh_token"
    assert not fake.accepts(tokens.credentials())


def test_a_token_the_server_does_not_know_is_revoked_all_the_same(fake: FakeOAuth) -> None:
    answer = revoke(fake, "fo-at-never-issued")
    assert answer.status_code == 200
    (revocation,) = fake.revocations
    assert (revocation.kind, revocation.username, revocation.grant_id) == (None, None, None)


def test_a_public_client_revokes_by_its_client_id(fake: FakeOAuth) -> None:
    tokens = fake.issue("alice", "native")
    assert revoke(fake, tokens.access_token, client="native").status_code == 200
    assert not fake.accepts(tokens.credentials())


def test_a_token_of_another_client_is_not_revoked(fake: FakeOAuth) -> None:
    tokens = fake.issue("alice", "native")
    answer = revoke(fake, tokens.access_token, client="app")
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")
    assert fake.accepts(tokens.credentials())
    assert fake.revocations == []


def test_revocation_needs_the_clients_authentication_and_a_token(fake: FakeOAuth) -> None:
    tokens = fake.issue("alice", "app")
    url = f"{fake.base_url}/oauth/revoke"
    wrong = {"token": tokens.access_token, "client_id": "app", "client_secret": "wrong"}
    refused = requests.post(url, data=wrong, timeout=5)
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    none = requests.post(url, data={"client_id": "app", "client_secret": SECRET}, timeout=5)
    assert (none.status_code, none.json()["error"]) == (400, "invalid_request")
    as_json = requests.post(url, json={"token": tokens.access_token}, timeout=5)
    assert as_json.json()["error"] == "invalid_request"
    assert fake.accepts(tokens.credentials())


# ---------------------------------------------------------------------------
# trickle's Linker: a token made at the platform


def test_trickle_links_a_token_made_at_the_platform_and_renews_it_there(
    fake: FakeOAuth, make_app: MakeApp
) -> None:
    where = {"base_url": fake.base_url, "oauth_base_url": fake.base_url}
    app = make_app(
        [FakeOAuthConnector],
        {"fake_oauth": {"client_id": "app", "client_secret": SECRET, **where}},
    )
    made = fake.issue("alice", "app")

    linked = Linker(app).import_token(
        "fake_oauth",
        "ann",
        made.access_token,
        refresh_token=made.refresh_token,
        expires_in=made.expires_in,
    )

    assert (linked.platform_user_id, linked.handle) == (fake.accounts["alice"].id, "alice")
    (account,) = linked_accounts(app)
    credentials = app.box.open(account.credentials)
    assert (credentials.issued_by, credentials.expires_at) == (
        "token",
        clock.now() + timedelta(hours=1),
    )
    fake.expire_access_tokens("alice")
    session = app.connector("fake_oauth").session(credentials)
    assert session.get_json("/api/me") == {"id": fake.accounts["alice"].id, "username": "alice"}
    assert fake.refreshes["alice"] == 1
