"""An account's session renews expiring credentials in one fixed order: refresh, save, retry.

Against the made-up OAuth 2 platform on 127.0.0.1 (one-hour tokens, single-use refresh
tokens), on trickle's frozen clock: a token about to expire is refreshed before the request,
an unexpected 401 is refreshed once and retried, the renewed credentials are handed to
``save`` before any request uses them, a failed save means they are never used, and a
refused refresh is ``AuthExpired``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import pytest
import requests

from trickle.connectors.auth import OAuth2
from trickle.connectors.errors import AuthExpired, PlatformError
from trickle.connectors.http import HttpClient, Limits
from trickle.connectors.policy import ErrorPolicy
from trickle.connectors.session import AccountSession
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.testing.fake_oauth import TOKEN_PATH, FakeOAuth, Phase
from trickle.testing.fakeplatform import FakeResponse, Request
from trickle.testing.oauth_connector import FakeOAuthConnector, FakeOAuthSettings

SECRET = "app-secret-8c1d6e"
HTTP = HttpClient(retries=0)


@pytest.fixture
def fake(now: datetime) -> Iterator[FakeOAuth]:
    with FakeOAuth() as platform:
        platform.register_client("app", SECRET)
        platform.register_client("basic-app", SECRET, "client_secret_basic")
        platform.add_account("alice")
        yield platform


@dataclass
class Trace:
    """What happened, in order: requests as the platform served them, refreshes it carried
    out, saves the session asked for."""

    events: list[tuple[str, str]] = field(default_factory=list)
    saved: list[tuple[Credentials, Credentials]] = field(default_factory=list)
    fail_save: bool = False

    def save(self, old: Credentials, new: Credentials) -> None:
        self.events.append(("save", new.access_token or ""))
        if self.fail_save:
            raise RuntimeError("the database is gone")
        self.saved.append((old, new))


@pytest.fixture
def trace(fake: FakeOAuth) -> Trace:
    """Records the platform's side (every API request's token and answer, every rotation) and
    the session's saves, in one sequence."""
    seen = Trace()

    def served(request: Request, response: FakeResponse) -> FakeResponse:
        token = (request.header("Authorization") or "").removeprefix("Bearer ")
        seen.events.append((f"GET {response.status}", token))
        return response

    def rotated(user: str) -> None:
        seen.events.append(("rotated", fake.current_refresh_token(user) or ""))

    fake.tamper("alice", served)
    fake.hook(Phase.ROTATED, rotated)
    return seen


def settings(fake: FakeOAuth, client_id: str = "app", secret: str = SECRET) -> FakeOAuthSettings:
    return FakeOAuthSettings(
        base_url=fake.base_url,
        token_url=fake.base_url + TOKEN_PATH,
        client_id=client_id,
        client_secret=secret,
    )


def session_for(
    fake: FakeOAuth,
    credentials: Credentials,
    trace: Trace | None = None,
    *,
    client_auth: Literal["client_secret_post", "client_secret_basic"] = "client_secret_post",
    **options: Any,
) -> AccountSession:
    """A session of the OAuth 2 test connector for ``credentials``, saving through ``trace``."""
    values = settings(fake, **options)
    return AccountSession(
        http=HTTP.with_limits(Limits.of(values)),
        platform=FakeOAuthConnector.name,
        auth=OAuth2(token_url=values.token_url or "", client_auth=client_auth),
        settings=values,
        credentials=credentials,
        base_url=fake.base_url,
        save=trace.save if trace is not None else None,
    )


def test_a_token_about_to_expire_is_refreshed_saved_and_only_then_used(
    fake: FakeOAuth, trace: Trace
) -> None:
    old = fake.issue("alice", "app").credentials()
    clock.advance(timedelta(minutes=59, seconds=1))  # 59 s left: inside the 60 s leeway
    session = session_for(fake, old, trace)
    assert session.get_json("/api/me")["username"] == "alice"
    new = session.credentials
    assert trace.events == [
        ("rotated", new.refresh_token),
        ("save", new.access_token),
        ("GET 200", new.access_token),
    ]
    assert trace.saved == [(old, new)]
    assert new.expires_at == clock.now() + timedelta(hours=1)
    assert (session.refreshes, fake.refreshes["alice"]) == (1, 1)
    assert fake.accepts(new)


def test_a_token_with_more_than_the_leeway_left_is_used_as_it_is(
    fake: FakeOAuth, trace: Trace
) -> None:
    old = fake.issue("alice", "app").credentials()
    clock.advance(timedelta(minutes=58))
    session = session_for(fake, old, trace)
    session.get_json("/api/me")
    assert trace.events == [("GET 200", old.access_token)]
    assert session.credentials == old


def test_an_unexpected_401_is_refreshed_saved_and_retried_once(
    fake: FakeOAuth, trace: Trace
) -> None:
    old = fake.issue("alice", "app").credentials()
    fake.expire_access_tokens("alice")  # the platform ended it early
    session = session_for(fake, old, trace)
    assert session.get_json("/api/likes")["likes"] == []
    new = session.credentials
    assert [name for name, _ in trace.events] == ["rotated", "save", "GET 200"]
    assert [token for _, token in trace.events] == [
        new.refresh_token,
        new.access_token,
        new.access_token,
    ]
    assert fake.requests["alice"] == 3  # the 401 (before the trace saw it), refresh, retry
    assert session.requests == 3


def test_a_401_after_a_refresh_is_auth_expired_without_a_second_refresh(
    fake: FakeOAuth, trace: Trace
) -> None:
    old = fake.issue("alice", "app").credentials()
    fake.tamper("alice", lambda request, response: FakeResponse(401, {"error": "invalid_token"}))
    session = session_for(fake, old, trace)
    with pytest.raises(AuthExpired):
        session.get("/api/me")
    assert fake.refreshes["alice"] == 1
    assert len(trace.saved) == 1  # the renewed credentials were kept all the same


def test_a_save_that_fails_means_the_new_credentials_are_never_used(
    fake: FakeOAuth, trace: Trace
) -> None:
    old = fake.issue("alice", "app").credentials()
    used: list[str] = []
    fake.hook(Phase.FIRST_USE, used.append)
    fake.expire_access_tokens("alice")
    trace.fail_save = True
    session = session_for(fake, old, trace)
    with pytest.raises(RuntimeError, match="database is gone"):
        session.get("/api/me")
    assert [name for name, _ in trace.events] == ["rotated", "save"]  # no retry
    assert used == []
    assert session.credentials == old
    assert session.refreshes == 0


def test_a_refused_refresh_is_auth_expired_and_names_no_secret(fake: FakeOAuth) -> None:
    old = fake.issue("alice", "app").credentials()
    session_for(fake, old).refresh()  # someone else spent the refresh token
    clock.advance(timedelta(hours=1))
    stale = session_for(fake, old)
    with pytest.raises(AuthExpired, match="invalid_grant") as caught:
        stale.get("/api/me")
    message = str(caught.value)
    for secret in (*old.secret_values(), SECRET):
        assert secret not in message
    assert "link the account again" in message


@pytest.mark.parametrize(
    ("client_id", "client_auth"),
    [("app", "client_secret_post"), ("basic-app", "client_secret_basic")],
)
def test_the_app_authenticates_at_the_token_endpoint_as_declared(
    fake: FakeOAuth,
    client_id: str,
    client_auth: Literal["client_secret_post", "client_secret_basic"],
) -> None:
    old = fake.issue("alice", client_id).credentials()
    session = session_for(fake, old, client_auth=client_auth, client_id=client_id)
    session.refresh()
    assert fake.refreshes["alice"] == 1
    assert fake.current_refresh_token("alice") == session.credentials.refresh_token
    assert session.credentials.refresh_token != old.refresh_token


def test_a_wrong_client_secret_is_a_platform_error_not_a_relink(fake: FakeOAuth) -> None:
    old = fake.issue("alice", "app").credentials()
    session = session_for(fake, old, secret="not-the-secret")
    with pytest.raises(PlatformError, match="invalid_client") as caught:
        session.refresh()
    assert not isinstance(caught.value, AuthExpired)
    assert "not-the-secret" not in str(caught.value)
    assert fake.accepts(old)


def test_a_platform_that_keeps_its_refresh_tokens_leaves_the_old_one_stored(
    now: datetime,
) -> None:
    with FakeOAuth(single_use_refresh_tokens=False) as fake:
        fake.register_client("app", SECRET)
        fake.add_account("alice")
        old = fake.issue("alice", "app").credentials()
        session = session_for(fake, old)
        session.refresh()
        assert session.credentials.refresh_token == old.refresh_token
        assert session.credentials.access_token != old.access_token


def test_an_error_read_from_a_200_body_is_raised_without_the_secrets_it_quotes(
    fake: FakeOAuth, now: datetime
) -> None:
    token = "tok-echoed-4f1a9c"

    def quoting(response: requests.Response, body: Any) -> PlatformError | None:
        return PlatformError(f"the platform says: {body['message']}")

    session = AccountSession(
        http=HTTP,
        platform=FakeOAuthConnector.name,
        auth=OAuth2(token_url=fake.base_url + TOKEN_PATH),
        settings=settings(fake),
        credentials=Credentials(access_token=token),
        base_url=fake.base_url,
        policy=ErrorPolicy(error_in_body=quoting),
    )
    answer = requests.Response()
    answer.status_code = 200
    answer.request = requests.Request("GET", fake.base_url + "/likes").prepare()
    answer.url = answer.request.url or ""
    answer.headers["Content-Type"] = "application/json"
    answer._content = f'{{"message": "token {token} is not valid for {SECRET}"}}'.encode()

    with pytest.raises(PlatformError) as raised:
        session.json(answer)

    assert "the platform says: token" in str(raised.value)
    assert token not in str(raised.value)
    assert SECRET not in str(raised.value)
