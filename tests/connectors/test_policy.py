"""Error policy as data: a status table with shared defaults, rules that read the answer,
and hooks for what a platform says in the body."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from trickle.connectors.errors import PlatformError
from trickle.connectors.policy import (
    DEFAULT_POLICY,
    TOKEN_ENDPOINT_POLICY,
    Action,
    Answer,
    ErrorPolicy,
)
from trickle.connectors.ratelimits import RateLimit

NOW = datetime(2026, 10, 15, 12, tzinfo=UTC)


def answer(status: int, *, remaining: int | None = None, detail: str = "") -> Answer:
    response = requests.Response()
    response.status_code = status
    return Answer(response, RateLimit(remaining=remaining), detail)


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (200, Action.OK),
        (201, Action.OK),
        (204, Action.OK),
        (304, Action.NOT_MODIFIED),
        (401, Action.REAUTH),
        (403, Action.FORBIDDEN),
        (408, Action.RETRY_LATER),
        (429, Action.RATE_LIMIT),
        (500, Action.RETRY_LATER),
        (502, Action.RETRY_LATER),
        (503, Action.RETRY_LATER),
        (504, Action.RETRY_LATER),
        (599, Action.RETRY_LATER),
        (400, Action.FAIL),
        (404, Action.FAIL),
        (410, Action.FAIL),
        (422, Action.FAIL),
        (302, Action.FAIL),
    ],
)
def test_the_shared_defaults(status: int, action: Action) -> None:
    assert DEFAULT_POLICY.action(answer(status)) is action


def test_a_connector_overrides_statuses_and_keeps_the_rest() -> None:
    # e.g. a platform that answers 404 for "this user has no likes yet"
    policy = DEFAULT_POLICY.with_statuses({404: Action.OK, 400: Action.REAUTH})
    assert policy.action(answer(404)) is Action.OK
    assert policy.action(answer(400)) is Action.REAUTH
    assert policy.action(answer(503)) is Action.RETRY_LATER  # 5xx stays retryable
    assert policy.action(answer(418)) is Action.FAIL
    assert DEFAULT_POLICY.action(answer(404)) is Action.FAIL  # the defaults are untouched


def test_a_status_may_map_to_a_rule_that_reads_the_answer() -> None:
    """How GitHub says its 403 is a rate limit when the headers say the budget is spent."""

    def github_403(seen: Answer) -> Action:
        return Action.RATE_LIMIT if seen.rate_limit.exhausted else Action.REAUTH

    policy = DEFAULT_POLICY.with_statuses({403: github_403})
    assert policy.action(answer(403, remaining=0)) is Action.RATE_LIMIT
    assert policy.action(answer(403, remaining=12)) is Action.REAUTH


def test_only_ok_and_not_modified_answers_are_read_in_full() -> None:
    assert DEFAULT_POLICY.wants_body(200)
    assert DEFAULT_POLICY.wants_body(304)
    assert not DEFAULT_POLICY.wants_body(401)
    assert not DEFAULT_POLICY.wants_body(500)
    assert not DEFAULT_POLICY.with_statuses({403: lambda seen: Action.OK}).wants_body(403)


def test_a_token_endpoints_oauth_errors_are_read_by_the_oauth_client() -> None:
    for status in (400, 401, 403):
        assert TOKEN_ENDPOINT_POLICY.action(answer(status)) is Action.OK
    assert TOKEN_ENDPOINT_POLICY.action(answer(429)) is Action.RATE_LIMIT
    assert TOKEN_ENDPOINT_POLICY.action(answer(502)) is Action.RETRY_LATER


def test_hooks_read_errors_and_resets_from_the_body() -> None:
    def flickr(response: requests.Response, body: Any) -> PlatformError | None:
        if body.get("stat") == "fail":
            return PlatformError(f"code {body['code']}")
        return None

    def soundcloud(body: Any, now: datetime) -> datetime | None:
        return now + timedelta(seconds=body["reset_in"])

    policy = ErrorPolicy(error_in_body=flickr, retry_at_in_body=soundcloud)
    ok = requests.Response()
    assert policy.error_in_body is not None
    assert policy.retry_at_in_body is not None
    assert str(policy.error_in_body(ok, {"stat": "fail", "code": 105})) == "code 105"
    assert policy.error_in_body(ok, {"stat": "ok"}) is None
    assert policy.retry_at_in_body({"reset_in": 30}, NOW) == NOW + timedelta(seconds=30)
