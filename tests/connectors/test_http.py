"""trickle.connectors.http: rate-limit dialects, the status policy, and the shared HTTP client."""

from __future__ import annotations

import email.utils
import gzip
import itertools
import json
import re
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
import requests
import responses
from hypothesis import given, settings
from hypothesis import strategies as st

from trickle.connectors.errors import (
    MAX_RATE_LIMIT_WAIT,
    AuthExpired,
    PlatformError,
    RateLimited,
    TransientError,
)
from trickle.connectors.http import (
    _WATCHDOG,
    DETAIL_LENGTH,
    ERROR_BODY_BYTES,
    MAX_ETAG_LENGTH,
    USER_AGENT,
    HttpClient,
    Limits,
    json_body,
    safe_etag,
)
from trickle.connectors.policy import DEFAULT_POLICY, Action, Answer
from trickle.connectors.ratelimits import (
    DEFAULT_RETRY_AFTER,
    RateLimit,
    parse_rate_limit,
    parse_reset,
)
from trickle.connectors.settings import ConnectorSettings, MiB
from trickle.core.credentials import contains_secret
from trickle.testing.fakeplatform import FakePlatform, FakeResponse, RawAnswer, Request, route

NOW = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)  # the ``now`` fixture's instant
EPOCH_NOW = int(NOW.timestamp())
URL = "https://api.example.org/v1/likes"
SECRET = "tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
SPECIAL_SECRET = "pk/9f8e+7d6c=5b4a"  # a key with characters that escaping changes


def fast_client(**kwargs: object) -> HttpClient:
    """An HttpClient whose retries do not sleep."""
    return HttpClient(backoff_factor=0, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# parse_rate_limit: every dialect into one RateLimit


class TestParseRateLimit:
    def test_github_x_ratelimit_headers_with_an_epoch_reset(self) -> None:
        headers = {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4987",
            "x-ratelimit-used": "13",
            "x-ratelimit-reset": str(EPOCH_NOW + 1800),
            "x-ratelimit-resource": "core",
        }
        assert parse_rate_limit(headers, NOW) == RateLimit(
            limit=5000, remaining=4987, reset_at=NOW + timedelta(seconds=1800)
        )

    def test_header_names_are_case_insensitive(self) -> None:
        headers = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0"}
        limits = parse_rate_limit(headers, NOW)
        assert (limits.limit, limits.remaining) == (100, 0)

    def test_twitter_x_rate_limit_headers(self) -> None:
        headers = {
            "x-rate-limit-limit": "75",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": "1792070100",
        }
        assert parse_rate_limit(headers, NOW) == RateLimit(
            limit=75, remaining=0, reset_at=datetime.fromtimestamp(1792070100, UTC)
        )

    def test_ietf_ratelimit_headers_with_a_delta_reset(self) -> None:
        headers = {"RateLimit-Limit": "100", "RateLimit-Remaining": "7", "RateLimit-Reset": "30"}
        assert parse_rate_limit(headers, NOW) == RateLimit(
            limit=100, remaining=7, reset_at=NOW + timedelta(seconds=30)
        )

    def test_bluesky_ratelimit_headers_with_an_epoch_reset(self) -> None:
        headers = {
            "ratelimit-limit": "3000",
            "ratelimit-remaining": "0",
            "ratelimit-reset": str(EPOCH_NOW + 240),
            "ratelimit-policy": "3000;w=300",
        }
        limits = parse_rate_limit(headers, NOW)
        assert limits.reset_at == NOW + timedelta(seconds=240)
        assert limits.exhausted

    def test_the_combined_ratelimit_header(self) -> None:
        headers = {"RateLimit": "limit=100, remaining=0, reset=30"}
        assert parse_rate_limit(headers, NOW) == RateLimit(
            limit=100, remaining=0, reset_at=NOW + timedelta(seconds=30)
        )

    def test_separate_headers_win_over_the_combined_one(self) -> None:
        headers = {
            "RateLimit": "limit=100, remaining=50, reset=30",
            "x-ratelimit-remaining": "3",
            "x-ratelimit-reset": str(EPOCH_NOW + 600),
        }
        limits = parse_rate_limit(headers, NOW)
        assert (limits.limit, limits.remaining) == (100, 3)
        assert limits.reset_at == NOW + timedelta(seconds=600)

    def test_mastodon_iso_8601_reset(self) -> None:
        headers = {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "2026-10-15T12:05:00.000Z",
        }
        assert parse_rate_limit(headers, NOW).reset_at == datetime(2026, 10, 15, 12, 5, tzinfo=UTC)

    def test_an_iso_8601_reset_with_an_offset_is_read_as_utc(self) -> None:
        limits = parse_rate_limit({"x-ratelimit-reset": "2026-10-15T14:05:00+02:00"}, NOW)
        assert limits.reset_at == datetime(2026, 10, 15, 12, 5, tzinfo=UTC)
        assert limits.reset_at is not None
        assert limits.reset_at.tzinfo == UTC

    def test_retry_after_in_seconds(self) -> None:
        assert parse_rate_limit({"Retry-After": "120"}, NOW).retry_after == NOW + timedelta(
            seconds=120
        )

    def test_retry_after_as_an_http_date(self) -> None:
        limits = parse_rate_limit({"retry-after": "Thu, 15 Oct 2026 12:03:30 GMT"}, NOW)
        assert limits.retry_after == datetime(2026, 10, 15, 12, 3, 30, tzinfo=UTC)

    def test_values_from_a_billion_up_are_unix_times_and_smaller_ones_deltas(self) -> None:
        assert parse_reset("1000000000", NOW) == datetime.fromtimestamp(1_000_000_000, UTC)
        assert parse_reset("999999", NOW) == NOW + timedelta(seconds=999_999)
        assert parse_reset("0", NOW) == NOW
        assert parse_reset(None, NOW) is None

    def test_no_headers_means_nothing_known(self) -> None:
        limits = parse_rate_limit({}, NOW)
        assert limits == RateLimit()
        assert not limits.exhausted

    def test_it_reads_the_clock_when_not_told_the_time(self, now: datetime) -> None:
        assert parse_rate_limit({"retry-after": "5"}).retry_after == now + timedelta(seconds=5)

    @pytest.mark.parametrize(
        "value", ["", "  ", "soon", "-5", "inf", "nan", "1e400", "99999999999999", "12:00"]
    )
    @pytest.mark.parametrize(
        "name", ["x-ratelimit-remaining", "x-ratelimit-reset", "retry-after", "ratelimit"]
    )
    def test_unreadable_values_are_ignored(self, name: str, value: str) -> None:
        limits = parse_rate_limit({name: value, "x-ratelimit-limit": "60"}, NOW)
        assert limits.limit == 60

    def test_a_retry_after_years_ahead_is_read_as_it_is_but_waited_for_a_day_at_most(
        self,
    ) -> None:
        limits = parse_rate_limit({"Retry-After": "99999999999"}, NOW)
        assert limits.retry_after == datetime.fromtimestamp(99_999_999_999, UTC)  # year 5138
        assert limits.wait_until(NOW) == NOW + MAX_RATE_LIMIT_WAIT

    @pytest.mark.parametrize(
        "value",
        [
            "9999-12-31T23:59:59-01:00",
            "Fri, 31 Dec 9999 23:59:59 -0100",
            "99999999999999999999",
            "253402300800",  # 10000-01-01 as a Unix time
        ],
    )
    def test_a_reset_beyond_the_calendar_in_utc_reads_as_its_end(self, value: str) -> None:
        limits = parse_rate_limit({"x-ratelimit-reset": value, "x-ratelimit-remaining": "0"}, NOW)
        assert limits.reset_at == datetime.max.replace(tzinfo=UTC)
        assert limits.wait_until(NOW) == NOW + MAX_RATE_LIMIT_WAIT

    def test_a_reset_before_year_one_in_utc_reads_as_the_calendars_start(self) -> None:
        limits = parse_rate_limit({"x-ratelimit-reset": "0001-01-01T00:00:00+01:00"}, NOW)
        assert limits.reset_at == datetime.min.replace(tzinfo=UTC)
        assert limits.wait_until(NOW) == NOW

    def test_a_reset_already_past_means_try_again_now(self) -> None:
        limits = parse_rate_limit({"x-ratelimit-reset": str(EPOCH_NOW - 600)}, NOW)
        assert limits.reset_at == NOW - timedelta(seconds=600)
        assert limits.wait_until(NOW) == NOW

    @settings(max_examples=200, deadline=None)
    @given(
        st.dictionaries(
            st.sampled_from(
                [
                    "x-ratelimit-limit",
                    "x-ratelimit-remaining",
                    "x-ratelimit-reset",
                    "x-rate-limit-reset",
                    "ratelimit-reset",
                    "ratelimit",
                    "retry-after",
                ]
            ),
            st.one_of(
                st.text(max_size=40),
                st.integers(min_value=-(10**20), max_value=10**20).map(str),
                st.floats(allow_nan=True, allow_infinity=True).map(str),
                st.sampled_from(["2026-10-15T12:05:00Z", "Thu, 15 Oct 2026 12:03:30 GMT"]),
            ),
        )
    )
    def test_any_header_value_parses_without_raising(self, headers: dict[str, str]) -> None:
        limits = parse_rate_limit(headers, NOW)
        assert NOW <= limits.wait_until(NOW) <= NOW + MAX_RATE_LIMIT_WAIT

    @settings(max_examples=300, deadline=None)
    @given(
        st.datetimes(timezones=st.timezones() | st.just(UTC)).map(
            lambda d: d.isoformat() if d.microsecond % 2 else email.utils.format_datetime(d)
        )
        | st.datetimes(
            timezones=st.sampled_from(
                [
                    timezone(timedelta(hours=h, minutes=m))
                    for h in (-23, -1, 0, 1, 23)
                    for m in (0, 59)
                ]
            )
        ).map(lambda d: d.isoformat())
        | st.integers(min_value=0, max_value=10**30).map(str)
    )
    def test_any_date_or_number_parses_and_waits_within_the_bounds(self, value: str) -> None:
        for name in ("x-ratelimit-reset", "retry-after", "ratelimit-reset"):
            limits = parse_rate_limit({name: value, "x-ratelimit-remaining": "0"}, NOW)
            assert NOW <= limits.wait_until(NOW) <= NOW + MAX_RATE_LIMIT_WAIT
        parse_rate_limit({"ratelimit": f"limit=1, remaining=0, reset={value}"}, NOW)


class TestRateLimit:
    def test_exhausted_only_when_the_platform_says_none_are_left(self) -> None:
        assert RateLimit(remaining=0).exhausted
        assert not RateLimit(remaining=1).exhausted
        assert not RateLimit().exhausted

    def test_wait_until_prefers_retry_after_then_reset_then_a_minute(self) -> None:
        later = NOW + timedelta(minutes=5)
        much_later = NOW + timedelta(minutes=50)
        assert RateLimit(reset_at=much_later, retry_after=later).wait_until(NOW) == later
        assert RateLimit(reset_at=much_later).wait_until(NOW) == much_later
        assert RateLimit().wait_until(NOW) == NOW + DEFAULT_RETRY_AFTER
        assert timedelta(minutes=1) == DEFAULT_RETRY_AFTER


# ---------------------------------------------------------------------------
# HttpClient over `responses`


class TestHttpClientRequests:
    @responses.activate
    def test_sends_its_user_agent(self) -> None:
        responses.get(URL, json=[])
        fast_client().get(URL)
        user_agent = responses.calls[0].request.headers["User-Agent"]
        assert user_agent == USER_AGENT
        assert user_agent.startswith("trickle/")

    @responses.activate
    def test_a_custom_user_agent(self) -> None:
        responses.get(URL, json=[])
        fast_client(user_agent="operator-bot/2.0 (+https://pay.example.org)").get(URL)
        assert (
            responses.calls[0].request.headers["User-Agent"]
            == "operator-bot/2.0 (+https://pay.example.org)"
        )

    @responses.activate
    def test_sends_if_none_match_with_the_etag(self) -> None:
        responses.get(URL, status=304, headers={"ETag": 'W/"a1b2"'})
        response = fast_client().get(URL, etag='W/"a1b2"')
        assert responses.calls[0].request.headers["If-None-Match"] == 'W/"a1b2"'
        assert response.status_code == 304  # not an error: the caller decides

    @responses.activate
    def test_sends_no_if_none_match_without_an_etag(self) -> None:
        responses.get(URL, json=[])
        fast_client().get(URL, etag=None)
        assert "If-None-Match" not in responses.calls[0].request.headers

    @responses.activate
    def test_sends_the_callers_headers_and_params(self) -> None:
        responses.get(URL, json=[])
        fast_client().get(
            URL, params={"limit": 40, "max_id": "1099"}, headers={"Accept": "application/json"}
        )
        request = responses.calls[0].request
        assert request.url == f"{URL}?limit=40&max_id=1099"
        assert request.headers["Accept"] == "application/json"

    @responses.activate
    def test_every_connect_and_every_read_has_a_timeout(self) -> None:
        responses.get(URL, json=[])
        client = fast_client(timeout=7.5)
        client.get(URL)
        client.get(URL, timeout=2.0)
        assert responses.calls[0].request.req_kwargs["timeout"] == (7.5, 7.5)
        assert responses.calls[1].request.req_kwargs["timeout"] == (2.0, 2.0)

    @responses.activate
    def test_no_wait_reaches_past_the_deadline(self) -> None:
        responses.get(URL, json=[])
        fast_client(timeout=20, deadline=3).get(URL)
        connect, read = responses.calls[0].request.req_kwargs["timeout"]
        assert 2.5 < connect <= 3
        assert 2.5 < read <= 3

    @responses.activate
    def test_redirects_are_not_followed(self) -> None:
        responses.get(URL, status=302, headers={"Location": "https://elsewhere.example/steal"})
        with pytest.raises(PlatformError) as caught:
            fast_client().get(URL, headers={"X-Api-Key": SECRET})
        assert str(caught.value) == f"GET {URL}: 302 (a redirect: not followed)"
        assert len(responses.calls) == 1

    @responses.activate
    def test_a_cookie_one_accounts_answer_sets_never_travels_with_the_next_request(
        self,
    ) -> None:
        responses.get(URL, json=[], headers={"Set-Cookie": "session=alice-only; Path=/"})
        responses.get(URL, json=[])
        client = fast_client()
        first = client.get(URL, headers={"Authorization": "Bearer alice-token"})
        client.get(URL, headers={"Authorization": "Bearer bob-token"})
        assert first.cookies.get("session") == "alice-only"  # the answer still shows it
        assert "Cookie" not in responses.calls[1].request.headers
        assert not client.session.cookies

    @responses.activate
    def test_an_operators_netrc_never_replaces_the_connectors_token(
        self, tmp_path, monkeypatch
    ) -> None:
        netrc = tmp_path / "netrc"
        netrc.write_text("machine api.example.org login operator password operator-secret\n")
        netrc.chmod(0o600)
        monkeypatch.setenv("NETRC", str(netrc))
        responses.get(URL, json=[])
        fast_client().get(URL, headers={"Authorization": "Bearer account-token"})
        assert responses.calls[0].request.headers["Authorization"] == "Bearer account-token"

    def test_each_thread_gets_its_own_session(self) -> None:
        client = fast_client()
        here = client.session
        assert client.session is here
        elsewhere: list[requests.Session] = []
        thread = threading.Thread(target=lambda: elsewhere.append(client.session))
        thread.start()
        thread.join()
        assert elsewhere[0] is not here
        assert elsewhere[0].headers["User-Agent"] == USER_AGENT


class TestHttpClientRetries:
    @responses.activate
    def test_retries_a_5xx_and_returns_the_answer_that_follows(self) -> None:
        responses.get(URL, status=503)
        responses.get(URL, status=502)
        responses.get(URL, json=[{"id": 1}])
        response = fast_client().get(URL)
        assert response.json() == [{"id": 1}]
        assert len(responses.calls) == 3

    @responses.activate
    def test_gives_up_after_the_retries_with_a_transient_error(self) -> None:
        responses.get(URL, status=500, json={"message": "Server Error"})
        with pytest.raises(TransientError, match="500 Server Error"):
            fast_client(retries=3).get(URL)
        assert len(responses.calls) == 4  # the request and three retries

    @responses.activate
    def test_the_number_of_retries_is_configurable(self) -> None:
        responses.get(URL, status=504)
        with pytest.raises(TransientError):
            fast_client(retries=1).get(URL)
        assert len(responses.calls) == 2

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 429])
    @responses.activate
    def test_does_not_retry_4xx(self, status: int, now: datetime) -> None:
        responses.get(URL, status=status, json={"message": "no"})
        with pytest.raises((AuthExpired, RateLimited, PlatformError)):
            fast_client().get(URL)
        assert len(responses.calls) == 1


def _403(answer: Answer) -> Action:
    limits = answer.rate_limit
    if limits.exhausted or limits.retry_after or "rate limit" in answer.detail.lower():
        return Action.RATE_LIMIT
    return Action.FORBIDDEN


HEADERS_DECIDE_403 = DEFAULT_POLICY.with_statuses({403: _403})
"""A platform whose 403 is a rate limit when the answer says so (GitHub declares one)."""


class TestHttpClientErrors:
    @responses.activate
    def test_401_asks_for_relinking(self) -> None:
        responses.get(URL, status=401, json={"message": "Bad credentials"})
        with pytest.raises(AuthExpired, match=r"401 Bad credentials.*relink"):
            fast_client().get(URL)

    @responses.activate
    def test_429_is_rate_limited_until_the_reset(self, now: datetime) -> None:
        reset = EPOCH_NOW + 900
        responses.get(URL, status=429, headers={"x-ratelimit-reset": str(reset)})
        with pytest.raises(RateLimited) as caught:
            fast_client().get(URL)
        assert caught.value.retry_at == datetime.fromtimestamp(reset, UTC)
        assert caught.value.scope == "account"

    @responses.activate
    def test_429_asking_for_years_waits_a_day(self, now: datetime) -> None:
        responses.get(URL, status=429, headers={"Retry-After": "99999999999"})
        with pytest.raises(RateLimited) as caught:
            fast_client().get(URL)
        assert caught.value.retry_at == now + MAX_RATE_LIMIT_WAIT

    @responses.activate
    def test_403_with_a_reset_beyond_the_calendar_waits_a_day(self, now: datetime) -> None:
        headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "9999-12-31T23:59:59-01:00"}
        responses.get(URL, status=403, headers=headers)
        with pytest.raises(RateLimited) as caught:
            fast_client().get(URL, policy=HEADERS_DECIDE_403)
        assert caught.value.retry_at == now + MAX_RATE_LIMIT_WAIT

    @responses.activate
    def test_429_without_headers_waits_a_minute(self, now: datetime) -> None:
        responses.get(URL, status=429)
        with pytest.raises(RateLimited) as caught:
            fast_client().get(URL)
        assert caught.value.retry_at == now + timedelta(minutes=1)

    @responses.activate
    def test_the_rate_limit_scope_is_passed_through(self, now: datetime) -> None:
        responses.get(URL, status=429, headers={"Retry-After": "30"})
        with pytest.raises(RateLimited) as caught:
            fast_client().get(URL, rate_limit_scope="app")
        assert caught.value.scope == "app"
        assert caught.value.retry_at == now + timedelta(seconds=30)

    @responses.activate
    def test_403_with_no_requests_left_is_rate_limited(self, now: datetime) -> None:
        reset = EPOCH_NOW + 1200
        responses.get(
            URL,
            status=403,
            headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
        )
        with pytest.raises(RateLimited) as caught:
            fast_client().get(URL, policy=HEADERS_DECIDE_403)
        assert caught.value.retry_at == datetime.fromtimestamp(reset, UTC)

    @responses.activate
    def test_403_with_retry_after_is_rate_limited(self, now: datetime) -> None:
        responses.get(URL, status=403, headers={"retry-after": "90"})
        with pytest.raises(RateLimited) as caught:
            fast_client().get(URL, policy=HEADERS_DECIDE_403)
        assert caught.value.retry_at == now + timedelta(seconds=90)

    @responses.activate
    def test_403_saying_rate_limit_is_rate_limited_for_a_minute(self, now: datetime) -> None:
        responses.get(
            URL,
            status=403,
            json={"message": "You have exceeded a secondary rate limit."},
            headers={"x-ratelimit-remaining": "4210"},
        )
        with pytest.raises(RateLimited) as caught:
            fast_client().get(URL, policy=HEADERS_DECIDE_403)
        assert caught.value.retry_at == now + timedelta(minutes=1)

    @responses.activate
    def test_any_other_403_is_a_platform_error(self, now: datetime) -> None:
        responses.get(URL, status=403, json={"message": "Resource not accessible"})
        with pytest.raises(PlatformError, match="403 Resource not accessible"):
            fast_client().get(URL)

    @pytest.mark.parametrize("status", [400, 404, 410, 422])
    @responses.activate
    def test_unexpected_statuses_are_platform_errors_with_the_platforms_message(
        self, status: int
    ) -> None:
        responses.get(URL, status=status, json={"error_description": "no such user"})
        with pytest.raises(PlatformError) as caught:
            fast_client().get(URL)
        assert str(caught.value) == f"GET {URL}: {status} no such user"

    @responses.activate
    def test_a_message_inside_an_envelope_is_read_where_the_policy_says(self) -> None:
        envelope = {"meta": {"code": 404, "error_message": "User not found."}, "message": "x"}
        responses.get(URL, status=404, json=envelope)
        policy = replace(DEFAULT_POLICY, message_path=("meta", "error_message"))
        with pytest.raises(PlatformError) as caught:
            fast_client().get(URL, policy=policy)
        assert str(caught.value) == f"GET {URL}: 404 User not found."

    @pytest.mark.parametrize(
        ("body", "status"),
        [
            ({"meta": {"code": 404}, "message": "gone"}, "404 gone"),
            ({"meta": "gone"}, "404"),
            (["meta"], "404"),
        ],
    )
    @responses.activate
    def test_without_a_message_at_the_policys_path_the_top_level_one_is_read(
        self, body: Any, status: str
    ) -> None:
        responses.get(URL, status=404, json=body)
        policy = replace(DEFAULT_POLICY, message_path=("meta", "error_message"))
        with pytest.raises(PlatformError) as caught:
            fast_client().get(URL, policy=policy)
        assert str(caught.value) == f"GET {URL}: {status}"

    @responses.activate
    def test_408_is_transient(self) -> None:
        responses.get(URL, status=408)
        with pytest.raises(TransientError):
            fast_client().get(URL)

    @responses.activate
    def test_a_connection_error_is_retried_then_transient_and_does_not_echo_its_text(
        self,
    ) -> None:
        responses.get(URL, body=requests.ConnectionError(f"reset while sending {SECRET}"))
        with pytest.raises(TransientError) as caught:
            fast_client(retries=3).get(URL, secrets=[SECRET])
        assert str(caught.value) == f"GET {URL}: ConnectionError (4 attempts)"
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__
        assert len(responses.calls) == 4

    @responses.activate
    def test_a_connection_error_then_an_answer_is_the_answer(self) -> None:
        responses.get(URL, body=requests.ConnectionError("reset"))
        responses.get(URL, json={"ok": True})
        assert fast_client().get(URL).json() == {"ok": True}

    @responses.activate
    def test_a_timeout_is_transient(self) -> None:
        responses.get(URL, body=requests.ReadTimeout("read timed out"))
        with pytest.raises(TransientError, match="ReadTimeout"):
            fast_client().get(URL)

    @responses.activate
    def test_other_request_failures_are_platform_errors_naming_the_exception(self) -> None:
        responses.get(URL, body=requests.TooManyRedirects(f"Exceeded 30 redirects: {SECRET}"))
        with pytest.raises(PlatformError) as caught:
            fast_client().get(URL, secrets=[SECRET])
        assert str(caught.value) == f"GET {URL}: TooManyRedirects"

    def test_a_credential_that_cannot_be_sent_is_never_quoted(self) -> None:
        # requests refuses the header and quotes it, escaped: 'Bearer t0k\r\n'
        token = "t0k\r\n"
        with pytest.raises(PlatformError) as caught:
            fast_client().get(URL, headers={"Authorization": f"Bearer {token}"}, secrets=[token])
        message = str(caught.value)
        assert message == (
            f"GET {URL}: InvalidHeader: a request header is not valid (a line break in it?)"
        )
        assert not contains_secret(message, [token])
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__

    @responses.activate
    def test_the_platforms_message_is_escaped_and_bounded(self) -> None:
        forged = "Not Found\n2026-10-15 12:00:00 INFO all fine\x1b[2J" + "x" * 5000
        responses.get(URL, status=404, json={"message": forged})
        with pytest.raises(PlatformError) as caught:
            fast_client().get(URL)
        message = str(caught.value)
        assert message.startswith(f"GET {URL}: 404 Not Found\\n2026-10-15 12:00:00 INFO all fine")
        assert "\\x1b[2J" in message
        assert "\n" not in message
        assert "\x1b" not in message
        assert len(message) <= len(f"GET {URL}: 404 ") + DETAIL_LENGTH

    @pytest.mark.parametrize(
        "echo",
        [
            f"no user for token {SECRET}",
            f"GET /v1/likes?access_token={quote(SPECIAL_SECRET, safe='')} failed",
            "bad key: " + json.dumps({"key": SPECIAL_SECRET}),
            f"header {SPECIAL_SECRET.encode()!r} refused",
        ],
    )
    @responses.activate
    def test_secrets_echoed_by_the_platform_are_redacted_in_any_form(self, echo: str) -> None:
        responses.get(URL, status=404, json={"message": echo})
        with pytest.raises(PlatformError) as caught:
            fast_client().get(URL, secrets=[SECRET, SPECIAL_SECRET])
        assert not contains_secret(str(caught.value), [SECRET, SPECIAL_SECRET])
        assert "***" in str(caught.value)

    @responses.activate
    def test_secrets_echoed_by_the_platform_are_redacted(self) -> None:
        responses.get(URL, status=404, json={"message": f"no user for token {SECRET}"})
        with pytest.raises(PlatformError) as caught:
            fast_client().get(URL, secrets=[SECRET])
        assert SECRET not in str(caught.value)
        assert "no user for token ***" in str(caught.value)

    @responses.activate
    def test_query_strings_which_may_carry_keys_are_left_out_of_errors(self) -> None:
        url = f"{URL}?access_token={SECRET}"
        responses.get(url, status=401, json={"message": "Bad credentials"})
        with pytest.raises(AuthExpired) as caught:
            fast_client().get(url, secrets=[SECRET])
        assert SECRET not in str(caught.value)
        assert "access_token" not in str(caught.value)
        assert URL in str(caught.value)

    @responses.activate
    def test_a_non_json_error_body_leaves_the_status_alone(self) -> None:
        responses.get(URL, status=404, body="<html><body>Not Found</body></html>")
        with pytest.raises(PlatformError) as caught:
            fast_client().get(URL)
        assert str(caught.value) == f"GET {URL}: 404"


# ---------------------------------------------------------------------------
# json_body


class TestJsonBody:
    @responses.activate
    def test_returns_the_json(self) -> None:
        responses.get(URL, json={"data": [1, 2]})
        assert json_body(fast_client().get(URL)) == {"data": [1, 2]}

    @responses.activate
    def test_an_html_page_is_a_platform_error(self) -> None:
        page = "<!DOCTYPE html><html><head><title>Unicorn!</title></head><body></body></html>"
        responses.get(URL, body=page, content_type="text/html; charset=utf-8")
        with pytest.raises(PlatformError) as caught:
            json_body(fast_client().get(URL))
        assert str(caught.value) == (
            f"GET {URL}: expected JSON, got text/html; charset=utf-8 ({len(page)} bytes)"
        )

    @responses.activate
    def test_truncated_json_is_a_platform_error(self) -> None:
        responses.get(URL, body='[{"id": 1}, {"id": 2', content_type="application/json")
        with pytest.raises(PlatformError, match="expected JSON, got application/json"):
            json_body(fast_client().get(URL))

    @responses.activate
    def test_an_empty_body_is_a_platform_error(self) -> None:
        responses.get(URL, body="", content_type="application/json")
        with pytest.raises(PlatformError, match=r"\(0 bytes\)"):
            json_body(fast_client().get(URL))

    @responses.activate
    def test_json_nested_too_deeply_is_a_platform_error(self) -> None:
        body = "[" * 100_000 + "]" * 100_000
        responses.get(URL, body=body, content_type="application/json")
        with pytest.raises(PlatformError) as caught:
            json_body(fast_client().get(URL))
        assert str(caught.value) == f"GET {URL}: the JSON is nested too deeply (200000 bytes)"
        assert caught.value.__cause__ is None

    @responses.activate
    def test_the_content_type_it_quotes_is_escaped(self) -> None:
        responses.get(URL, body="<html>", headers={"Content-Type": "text/html\x1b]0;pwned\x07"})
        with pytest.raises(PlatformError) as caught:
            json_body(fast_client().get(URL))
        assert "text/html\\x1b]0;pwned\\x07" in str(caught.value)
        assert "\x1b" not in str(caught.value)


# ---------------------------------------------------------------------------
# The real thing: urllib3 retrying against a server on 127.0.0.1


class Flaky(FakePlatform):
    """Answers 503 to the first ``failures`` requests, then 200."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    @route("GET", "/flaky")
    def flaky(self, request: Request) -> FakeResponse:
        with self.lock:
            self.failures -= 1
            failing = self.failures >= 0
        if failing:
            return FakeResponse(503, {"message": "Service Unavailable"}, {"Retry-After": "1"})
        return FakeResponse(200, {"ok": True})

    @route("GET", "/gone")
    def gone(self, request: Request) -> FakeResponse:
        return FakeResponse(404, {"message": "Not Found"})


class TestOverRealHttp:
    def test_urllib3_retries_5xx(self) -> None:
        with Flaky(failures=2) as server:
            response = fast_client().get(f"{server.base_url}/flaky")
            assert response.json() == {"ok": True}
            assert server.total_requests == 3

    def test_urllib3_gives_up_after_the_retries(self) -> None:
        with Flaky(failures=10) as server:
            with pytest.raises(TransientError, match="503 Service Unavailable"):
                fast_client(retries=2).get(f"{server.base_url}/flaky")
            assert server.total_requests == 3

    def test_urllib3_does_not_retry_4xx(self) -> None:
        with Flaky(failures=0) as server:
            with pytest.raises(PlatformError):
                fast_client().get(f"{server.base_url}/gone")
            assert server.total_requests == 1

    def test_a_refused_connection_is_transient(self) -> None:
        with socket.socket() as probe:  # find a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        url = f"http://127.0.0.1:{port}/likes?token={SECRET}"
        with pytest.raises(TransientError) as caught:
            fast_client(retries=1, timeout=2).get(url, secrets=[SECRET])
        expected = f"GET http://127.0.0.1:{port}/likes: ConnectionError (2 attempts)"
        assert str(caught.value) == expected


# ---------------------------------------------------------------------------
# Limits: per-read timeout, total deadline, a cap on the body


class TestLimits:
    def test_the_defaults(self) -> None:
        assert Limits() == Limits(timeout=20.0, deadline=60.0, max_bytes=4 * MiB)
        assert HttpClient().limits == Limits()

    def test_a_connectors_limits_come_from_its_settings(self) -> None:
        settings = ConnectorSettings(
            timeout_seconds=5, deadline_seconds=30, max_response_bytes=2 * MiB
        )
        assert Limits.of(settings) == Limits(timeout=5, deadline=30, max_bytes=2 * MiB)

    @pytest.mark.parametrize("values", [{"timeout": 0}, {"deadline": -1}, {"max_bytes": 0}])
    def test_every_limit_must_be_positive(self, values: dict[str, float]) -> None:
        with pytest.raises(ValueError, match="positive"):
            Limits(**values)  # type: ignore[arg-type]

    def test_a_view_with_other_limits_shares_the_sessions_and_their_pools(self) -> None:
        client = HttpClient(user_agent="ua/1")
        view = client.with_limits(Limits(timeout=1, deadline=2, max_bytes=1024))
        assert view.limits == Limits(timeout=1, deadline=2, max_bytes=1024)
        assert client.limits == Limits()
        assert view.session is client.session
        assert view.timeout == 1
        assert view.user_agent == "ua/1"

    @responses.activate
    def test_an_answer_within_the_cap_is_read_whole(self) -> None:
        body = b"[" + b"1," * 500_000 + b"1]"
        responses.get(URL, body=body, content_type="application/json")
        response = fast_client(max_response_bytes=len(body)).get(URL)
        assert response.content == body
        assert len(json_body(response)) == 500_001

    @responses.activate
    def test_an_answer_one_byte_over_the_cap_is_a_platform_error_naming_it(self) -> None:
        responses.get(URL, body=b"x" * 1025)
        with pytest.raises(PlatformError) as caught:
            fast_client(max_response_bytes=1024).get(URL)
        assert str(caught.value) == (
            f"GET {URL}: 200: the answer is larger than the 1 KiB limit (max_response_bytes)"
        )

    @responses.activate
    def test_the_cap_error_names_the_url_without_its_secrets(self) -> None:
        url = f"https://api.example.org/v1/{SECRET}/likes"
        responses.get(url, body=b"x" * 2048)
        with pytest.raises(PlatformError) as caught:
            fast_client(max_response_bytes=1024).get(url, secrets=[SECRET])
        assert str(caught.value).startswith("GET https://api.example.org/v1/***/likes: 200: ")

    @responses.activate
    def test_an_error_answer_keeps_only_the_head_of_its_body(self) -> None:
        big = json.dumps({"message": "Not Found", "padding": "x" * (2 * ERROR_BODY_BYTES)})
        responses.get(URL, status=404, body=big, content_type="application/json")
        with pytest.raises(PlatformError) as caught:
            fast_client().get(URL)
        assert str(caught.value) == f"GET {URL}: 404"  # the message did not fit: the status


def gzip_bomb(inflated: int) -> Iterator[bytes]:
    """Members of a gzip stream (a client inflates them one after the other) of zeros."""
    member = gzip.compress(b"\0" * MiB, 9)  # about 1 KB
    for _ in range(inflated // MiB):
        yield member


class Hostile(FakePlatform):
    """Answers meant to exhaust a client's memory or time."""

    @route("GET", "/endless")
    def endless(self, request: Request) -> FakeResponse:
        return FakeResponse(200, itertools.repeat(b"[" * 65536))

    @route("GET", "/huge")
    def huge(self, request: Request) -> FakeResponse:
        piece = b" " * MiB
        return FakeResponse(200, itertools.repeat(piece, 200), {"Content-Length": str(200 * MiB)})

    @route("GET", "/bomb")
    def bomb(self, request: Request) -> FakeResponse:
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        return FakeResponse(200, gzip_bomb(1024 * MiB), headers)

    @route("GET", "/small-gzip")
    def small_gzip(self, request: Request) -> FakeResponse:
        body = gzip.compress(json.dumps({"ok": True}).encode())
        return FakeResponse(200, body, {"Content-Encoding": "gzip"})

    @route("GET", "/not-gzip")
    def not_gzip(self, request: Request) -> FakeResponse:
        return FakeResponse(200, b"this is not gzip at all", {"Content-Encoding": "gzip"})

    @route("GET", "/drip")
    def drip(self, request: Request) -> FakeResponse:
        return FakeResponse(200, itertools.repeat(b"["), {"Content-Length": "1000"}, pace=0.2)

    @route("GET", "/drip-headers")
    def drip_headers(self, request: Request) -> RawAnswer:
        head = b"HTTP/1.1 200 OK\r\n" + b"X-Padding: " + b"p" * 10_000
        return RawAnswer((head[i : i + 1] for i in range(len(head))), pace=0.2)

    @route("GET", "/silent")
    def silent(self, request: Request) -> RawAnswer:
        return RawAnswer(hold=True)

    @route("GET", "/ok")
    def ok(self, request: Request) -> FakeResponse:
        return FakeResponse(200, {"ok": True})

    @route("GET", "/two-lengths")
    def two_lengths(self, request: Request) -> RawAnswer:
        return RawAnswer([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n[]"])

    @route("GET", "/garbage")
    def garbage(self, request: Request) -> RawAnswer:
        return RawAnswer([b"HELLO, this is not HTTP\r\n\r\n"])

    @route("GET", "/short")
    def short(self, request: Request) -> RawAnswer:
        return RawAnswer([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[1, 2"])

    @route("GET", "/bad-chunk")
    def bad_chunk(self, request: Request) -> RawAnswer:
        return RawAnswer([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n[]"])


@pytest.fixture(scope="module")
def hostile() -> Iterator[Hostile]:
    with Hostile() as platform:
        yield platform


def peak_memory(call: Any) -> tuple[int, BaseException | None]:
    """The peak of memory allocated while ``call()`` runs, and what it raised."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    error: BaseException | None = None
    try:
        call()
    except BaseException as exc:
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, error


class TestTheCapOverRealHttp:
    @pytest.mark.parametrize(
        ("path", "what"),
        [("/endless", "an endless chunked body"), ("/huge", "200 MB"), ("/bomb", "1 GiB of zeros")],
    )
    def test_a_body_past_the_cap_stops_there_in_memory_too(
        self, hostile: Hostile, path: str, what: str
    ) -> None:
        client = fast_client(max_response_bytes=MiB)
        peak, error = peak_memory(lambda: client.get(f"{hostile.base_url}{path}"))
        assert isinstance(error, PlatformError), what
        assert str(error) == (
            f"GET {hostile.base_url}{path}: 200: the answer is larger than the 1 MiB limit "
            "(max_response_bytes)"
        )
        assert peak < 8 * MiB, f"{what}: {peak / MiB:.1f} MiB allocated"

    def test_a_small_compressed_body_is_inflated(self, hostile: Hostile) -> None:
        assert fast_client().get(f"{hostile.base_url}/small-gzip").json() == {"ok": True}

    def test_headers_that_contradict_themselves_are_a_platform_error(
        self, hostile: Hostile
    ) -> None:
        with pytest.raises(PlatformError) as caught:
            fast_client().get(f"{hostile.base_url}/two-lengths")
        assert str(caught.value) == (
            f"GET {hostile.base_url}/two-lengths: InvalidHeader: the answer's headers are not valid"
        )

    @pytest.mark.parametrize("path", ["/garbage", "/short", "/bad-chunk"])
    def test_a_broken_answer_is_retried_then_transient(self, hostile: Hostile, path: str) -> None:
        with pytest.raises(TransientError, match=r"(ConnectionError|ChunkedEncodingError) \(2 "):
            fast_client(retries=1).get(f"{hostile.base_url}{path}")

    def test_a_body_that_does_not_decode_is_a_platform_error(self, hostile: Hostile) -> None:
        with pytest.raises(PlatformError) as caught:
            fast_client().get(f"{hostile.base_url}/not-gzip")
        assert str(caught.value) == (
            f"GET {hostile.base_url}/not-gzip: 200: the body does not decode as its "
            "Content-Encoding (gzip) says"
        )

    def test_a_whole_answer_gives_its_connection_back_and_a_cut_one_closes_it(self) -> None:
        with Hostile() as platform:
            client = fast_client(max_response_bytes=MiB)
            for _ in range(3):
                client.get(f"{platform.base_url}/ok")
            assert platform.connections == 1  # one connection served all three
            with pytest.raises(PlatformError):
                client.get(f"{platform.base_url}/endless")
            client.get(f"{platform.base_url}/ok")
            client.get(f"{platform.base_url}/ok")
            assert platform.connections == 2  # the half-read one was closed, not reused


class TestTheDeadlineOverRealHttp:
    @pytest.mark.parametrize(
        ("path", "what"),
        [
            ("/drip", "a body dripped a byte every 0.2 s"),
            ("/drip-headers", "headers dripped a byte every 0.2 s"),
            ("/silent", "no answer at all"),
        ],
    )
    def test_a_request_ends_at_its_deadline_whatever_the_server_does(
        self, hostile: Hostile, path: str, what: str
    ) -> None:
        client = fast_client(timeout=0.5, deadline=1.5)
        started = time.monotonic()
        with pytest.raises(TransientError) as caught:
            client.get(f"{hostile.base_url}{path}")
        took = time.monotonic() - started
        assert 1.4 < took < 2.5, f"{what}: {took:.2f} s"  # the deadline, and a loaded machine
        assert str(caught.value).startswith(
            f"GET {hostile.base_url}{path}: no complete answer within the 1.5 s deadline ("
        )

    def test_every_attempt_and_retry_counts_against_one_deadline(self, hostile: Hostile) -> None:
        # Each attempt times out after 0.3 s and is retried at once: four fit in 1 s.
        client = fast_client(timeout=0.3, deadline=1.0, retries=10)
        started = time.monotonic()
        with pytest.raises(TransientError) as caught:
            client.get(f"{hostile.base_url}/silent")
        assert time.monotonic() - started < 1.5
        # four, or three when a loaded machine makes each timeout fire a little late
        assert re.search(r"within the 1 s deadline \([34] attempts\)$", str(caught.value))

    def test_a_back_off_that_would_pass_the_deadline_is_not_slept(self) -> None:
        with Flaky(failures=10) as server:
            client = HttpClient(backoff_factor=30, retries=3, deadline=5)
            started = time.monotonic()
            with pytest.raises(TransientError) as caught:
                client.get(f"{server.base_url}/flaky")
            assert time.monotonic() - started < 1
            # urllib3 retries the first failure at once, then would wait 60 s
            assert str(caught.value) == (
                f"GET {server.base_url}/flaky: 503 Service Unavailable (2 attempts)"
            )
            assert server.total_requests == 2

    def test_a_server_that_recovers_within_the_deadline_is_answered(self) -> None:
        with Flaky(failures=2) as server:
            client = HttpClient(backoff_factor=0.1, retries=3, deadline=5)
            assert client.get(f"{server.base_url}/flaky").json() == {"ok": True}

    def test_the_healthy_go_on_while_one_request_drips(self, hostile: Hostile) -> None:
        client = fast_client(timeout=0.5, deadline=1.5)
        outcome: list[BaseException] = []

        def drip() -> None:
            try:
                client.get(f"{hostile.base_url}/drip")
            except TransientError as exc:
                outcome.append(exc)

        stuck = threading.Thread(target=drip)
        stuck.start()
        started = time.monotonic()
        for _ in range(5):
            assert client.get(f"{hostile.base_url}/ok").json() == {"ok": True}
        assert time.monotonic() - started < 1
        stuck.join(5)
        assert not stuck.is_alive()
        assert "deadline" in str(outcome[0])


class TestTheWatchdog:
    def test_it_shuts_the_connection_of_a_request_past_its_deadline(self) -> None:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            watch = _WATCHDOG.start(time.monotonic() + 0.2)
            try:
                _WATCHDOG.attach(SimpleNamespace(sock=ours))
                ours.settimeout(5)
                started = time.monotonic()
                assert ours.recv(1) == b""  # woken by the shutdown, not by a byte
                assert 0.15 < time.monotonic() - started < 1
                assert watch.expired
            finally:
                _WATCHDOG.end(watch)

    def test_it_leaves_a_finished_request_alone(self) -> None:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            watch = _WATCHDOG.start(time.monotonic() + 0.1)
            _WATCHDOG.attach(SimpleNamespace(sock=ours))
            _WATCHDOG.end(watch)
            time.sleep(0.3)
            theirs.sendall(b"still open")
            assert ours.recv(64) == b"still open"
            assert not watch.expired

    def test_a_connection_attached_after_the_deadline_is_shut_at_once(self) -> None:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            watch = _WATCHDOG.start(time.monotonic())
            try:
                time.sleep(0.1)
                _WATCHDOG.attach(SimpleNamespace(sock=ours))
                ours.settimeout(1)
                assert ours.recv(1) == b""
            finally:
                _WATCHDOG.end(watch)

    def test_other_threads_connections_are_not_its_business(self) -> None:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            watch = _WATCHDOG.start(time.monotonic() + 0.1)
            try:
                other = threading.Thread(
                    target=_WATCHDOG.attach, args=(SimpleNamespace(sock=ours),)
                )
                other.start()
                other.join()
                time.sleep(0.3)
                theirs.sendall(b"x")
                assert ours.recv(1) == b"x"
            finally:
                _WATCHDOG.end(watch)


# ---------------------------------------------------------------------------
# ETags a connector may store


class TestEtags:
    @pytest.mark.parametrize(
        "tag", ['W/"3b1f8a5e0c2d"', '"v1"', '""', 'W/"a-b_c.d~e!#$%&()*+,/:;<=>?@[]^`{|}"']
    )
    def test_a_well_formed_etag_is_kept(self, tag: str) -> None:
        assert safe_etag(tag, [SECRET]) == tag

    @pytest.mark.parametrize(
        "tag",
        [
            "v1",  # not quoted
            'w/"v1"',  # the weak marker is case-sensitive
            '"v 1"',  # a space is not visible ASCII
            '"v"1"',  # a quote inside
            '"v1\x1b[2J"',  # a control character
            '"café"',  # obs-text: not visible ASCII
            '"' + "a" * (MAX_ETAG_LENGTH - 1) + '"',  # one character too long
            '"v1"; drop table',
            "",
        ],
    )
    def test_a_malformed_etag_is_refused(self, tag: str) -> None:
        assert safe_etag(tag, []) is None

    def test_the_longest_etag_kept(self) -> None:
        tag = '"' + "a" * (MAX_ETAG_LENGTH - 2) + '"'
        assert safe_etag(tag) == tag

    @pytest.mark.parametrize(
        "tag",
        [f'W/"{SECRET}"', f'"v1-{SECRET}"', f'"{quote(SPECIAL_SECRET, safe="")}"'],
    )
    def test_an_etag_holding_a_credential_is_refused(self, tag: str) -> None:
        assert safe_etag(tag, [SECRET, SPECIAL_SECRET]) is None

    @responses.activate
    def test_only_a_safe_etag_is_handed_to_the_connector(self) -> None:
        responses.get(URL, json=[], headers={"ETag": f'W/"{SECRET}"'})
        responses.get(URL, json=[], headers={"ETag": 'W/"a1b2"'})
        client = fast_client()
        assert "ETag" not in client.get(URL, secrets=[SECRET]).headers
        assert client.get(URL, secrets=[SECRET]).headers["ETag"] == 'W/"a1b2"'

    @pytest.mark.parametrize("stored", [f'W/"{SECRET}"', 'W/"a1"\r\nX-Evil: 1', "a1b2"])
    @responses.activate
    def test_a_stored_etag_that_is_not_safe_is_not_sent(self, stored: str) -> None:
        responses.get(URL, json=[])
        fast_client().get(URL, etag=stored, secrets=[SECRET])
        assert "If-None-Match" not in responses.calls[0].request.headers
