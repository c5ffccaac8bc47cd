"""The contract suite's HTTP client: every attempt recorded as it went out, answers rewritten
only while asked, and the rewrites the suite serves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
import responses
from hypothesis import given
from hypothesis import strategies as st

from trickle.connectors.errors import PlatformError, TransientError
from trickle.connectors.http import Limits, json_body
from trickle.connectors.ratelimits import parse_rate_limit
from trickle.testing.wire import (
    Exchange,
    Reply,
    TappedHttpClient,
    html_error_page,
    spent_rate_limit,
    truncated_json,
    unavailable,
)

URL = "https://api.example.test/likes"
TOKEN = "tok-3f9a1c7e5b2d4068"
RESET = datetime(2026, 10, 15, 13, 0, tzinfo=UTC)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def request() -> requests.PreparedRequest:
    return requests.Request("GET", URL, headers={"Authorization": f"Bearer {TOKEN}"}).prepare()


def test_every_attempt_is_recorded_as_it_went_out_retries_included(
    mock: responses.RequestsMock,
) -> None:
    mock.get(URL, status=503, json={"message": "down"})
    http = TappedHttpClient()
    with pytest.raises(TransientError):
        http.get(URL, params={"page": 2}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert http.tap.attempts == 2  # the first and its one retry
    for exchange in http.tap.exchanges:
        assert exchange.reply is not None
        assert exchange.reply.status == 503
        assert exchange.url == f"{URL}?page=2"
        assert exchange.carries(TOKEN)
        assert not exchange.rewritten


def test_a_view_with_other_limits_shares_the_tap(mock: responses.RequestsMock) -> None:
    mock.get(URL, json=[])
    http = TappedHttpClient()
    view = http.with_limits(Limits(timeout=5, deadline=10, max_bytes=1024))
    view.get(URL)
    assert isinstance(view, TappedHttpClient)
    assert view.tap is http.tap
    assert http.tap.attempts == 1


def test_a_connection_that_fails_is_an_attempt_without_an_answer(
    mock: responses.RequestsMock,
) -> None:
    mock.get(URL, body=requests.ConnectionError("reset"))
    http = TappedHttpClient(retries=0)
    with pytest.raises(TransientError):
        http.get(URL)
    assert [exchange.reply for exchange in http.tap.exchanges] == [None]


def test_answers_are_rewritten_only_while_the_block_runs(mock: responses.RequestsMock) -> None:
    mock.get(URL, json={"likes": [1, 2, 3]})
    http = TappedHttpClient()
    with http.tap.rewriting(html_error_page), pytest.raises(PlatformError, match="text/html"):
        json_body(http.get(URL))
    assert http.get(URL).json() == {"likes": [1, 2, 3]}
    assert [e.rewritten for e in http.tap.exchanges] == [True, False]


def test_the_answer_recorded_is_the_one_the_connector_got(mock: responses.RequestsMock) -> None:
    mock.get(URL, json={"likes": [1, 2, 3]})
    http = TappedHttpClient()
    with http.tap.rewriting(truncated_json):
        got = http.get(URL).content
    (exchange,) = http.tap.exchanges
    assert exchange.reply is not None
    assert exchange.reply.body == got
    assert json.dumps({"likes": [1, 2, 3]}).encode().startswith(got)


def test_carries_finds_a_secret_in_the_query_percent_encoded_or_not() -> None:
    prepared = requests.Request("GET", URL, params={"key": "a b/c"}).prepare()
    assert "a+b%2Fc" in (prepared.url or "")
    assert Exchange(prepared, None).carries("b%2Fc")
    assert Exchange(request(), None).carries(TOKEN)
    assert not Exchange(prepared, None).carries("")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)


@given(JSON_VALUES)
def test_truncated_json_is_a_prefix_of_the_answer_that_is_not_json(value: object) -> None:
    body = json.dumps(value).encode()
    cut = truncated_json(request(), Reply(200, {"Content-Type": "application/json"}, body))
    assert body.startswith(cut.body)
    assert len(cut.body) < len(body)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.body)
    assert cut.header("content-type") == "application/json; charset=utf-8"


def test_html_and_truncated_json_leave_error_answers_alone() -> None:
    refused = Reply(401, {"Content-Type": "application/json"}, b'{"message": "no"}')
    assert html_error_page(request(), refused) == refused
    assert truncated_json(request(), refused) == refused


def test_the_html_error_page_is_a_200_labelled_html() -> None:
    page = html_error_page(request(), Reply(200, {"ETag": '"v1"'}, b"[]"))
    assert page.status == 200
    assert page.header("Content-Type") == "text/html; charset=utf-8"
    assert page.header("ETag") is None
    assert page.body.lstrip().lower().startswith(b"<!doctype html>")


def test_the_503_echoes_the_credentials_it_was_sent() -> None:
    answer = unavailable(request(), Reply(200, {}, b"[]"))
    assert answer.status == 503
    assert TOKEN in answer.json()["message"]


def test_a_spent_rate_limit_replaces_every_dialect_on_successes_only(now: datetime) -> None:
    platform_said = {
        "RateLimit-Remaining": "40",
        "x-rate-limit-remaining": "40",
        "Retry-After": "5",
        "x-ratelimit-used": "960",
        "ETag": '"v1"',
    }
    rewrite = spent_rate_limit(RESET, limit=1000)
    spent = rewrite(request(), Reply(200, platform_said, b"[]"))
    limits = parse_rate_limit(spent.headers, now)
    assert limits.exhausted
    assert limits.reset_at == RESET
    assert limits.limit == 1000
    assert limits.retry_after is None
    assert spent.header("ETag") == '"v1"'
    assert spent.header("x-ratelimit-used") is None
    refused = Reply(429, platform_said, b"{}")
    assert rewrite(request(), refused) == refused
