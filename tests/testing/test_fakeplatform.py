"""FakePlatform: routes served on 127.0.0.1, latency, the per-account overlap log, the most
requests served at once, and the misbehaviour a hostile platform needs: streamed, endless and
dripping bodies, raw answers."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from trickle.testing.fakeplatform import FakePlatform, FakeResponse, RawAnswer, Request, route


class Echo(FakePlatform):
    """A tiny platform: who asks, what it was asked, and a page that is never modified."""

    @route("GET", "/echo")
    def echo(self, request: Request) -> FakeResponse:
        return FakeResponse(
            200,
            {
                "query": dict(request.query),
                "pairs": request.query_pairs,
                "raw": request.query_string,
                "auth": request.header("authorization"),
            },
            headers={"X-Seen": "yes"},
        )

    @route("GET", "/same")
    def same(self, request: Request) -> FakeResponse:
        return FakeResponse(304, {"ignored": True}, headers={"ETag": '"v1"'})

    @route("GET", "/html")
    def html(self, request: Request) -> FakeResponse:
        return FakeResponse(502, "<html>Bad gateway</html>")

    @route("GET", "/boom")
    def boom(self, request: Request) -> FakeResponse:
        raise ValueError("broken fixture")

    @route("POST", "/form")
    def form(self, request: Request) -> FakeResponse:
        return FakeResponse(
            201,
            {
                "form": {k: v for k, v in request.form.items()},
                "is_form": request.is_form,
                "grant_type": request.field("grant_type"),
                "length": len(request.body),
            },
        )

    @route("DELETE", "/things/{thing}/parts/{part}")
    def delete_part(self, request: Request) -> FakeResponse:
        return FakeResponse(200, {"params": dict(request.path_params), "body": len(request.body)})

    @route("DELETE", "/things/mine/parts/all")
    def delete_mine(self, request: Request) -> FakeResponse:
        return FakeResponse(204)


class Slow(Echo):
    """The same routes, inherited, behind a delay."""


@pytest.fixture
def echo() -> Iterator[Echo]:
    with Echo() as platform:
        yield platform


def test_it_serves_its_routes_on_localhost_with_json_bodies(echo: Echo) -> None:
    assert echo.base_url.startswith("http://127.0.0.1:")
    answer = requests.get(
        f"{echo.base_url}/echo?page=2&page=3", headers={"Authorization": "token a"}, timeout=5
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.headers["X-Seen"] == "yes"
    assert answer.json()["query"] == {"page": "3"}
    assert answer.json()["auth"] == "token a"


def test_the_query_is_kept_as_sent_every_repeat_and_blank_included(echo: Echo) -> None:
    answer = requests.get(f"{echo.base_url}/echo?a=1&a=%20two+&b=&c", timeout=5).json()
    assert answer["raw"] == "a=1&a=%20two+&b=&c"
    assert answer["pairs"] == [["a", "1"], ["a", " two "], ["b", ""], ["c", ""]]


def test_an_unknown_route_is_a_json_404(echo: Echo) -> None:
    answer = requests.get(f"{echo.base_url}/nowhere", timeout=5)
    assert answer.status_code == 404
    assert answer.json() == {"message": "Not Found"}


def test_a_304_has_no_body_whatever_the_route_returned(echo: Echo) -> None:
    answer = requests.get(f"{echo.base_url}/same", timeout=5)
    assert (answer.status_code, answer.content, answer.headers["ETag"]) == (304, b"", '"v1"')


def test_text_bodies_are_sent_as_they_are(echo: Echo) -> None:
    answer = requests.get(f"{echo.base_url}/html", timeout=5)
    assert (answer.status_code, answer.text) == (502, "<html>Bad gateway</html>")


def test_a_route_that_raises_answers_500_instead_of_hanging_the_client(echo: Echo) -> None:
    answer = requests.get(f"{echo.base_url}/boom", timeout=5)
    assert answer.status_code == 500
    assert "broken fixture" in answer.json()["message"]


def test_post_bodies_are_read_and_routes_are_per_method(echo: Echo) -> None:
    answer = requests.post(f"{echo.base_url}/form", data=b"x" * 1000, timeout=5)
    assert answer.status_code == 201
    assert answer.json() == {"form": {}, "is_form": False, "grant_type": None, "length": 1000}
    assert requests.get(f"{echo.base_url}/form", timeout=5).status_code == 404


def test_a_templated_route_matches_one_whole_segment_per_brace(echo: Echo) -> None:
    answer = requests.delete(f"{echo.base_url}/things/Iv1.a%2Fb/parts/7", data=b"{}", timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {"params": {"thing": "Iv1.a/b", "part": "7"}, "body": 2}
    assert requests.delete(f"{echo.base_url}/things/mine/parts/all", timeout=5).status_code == 204
    for path in ("/things//parts/7", "/things/a/parts", "/things/a/parts/7/more", "/things/a/x/7"):
        assert requests.delete(f"{echo.base_url}{path}", timeout=5).status_code == 404, path
    assert requests.get(f"{echo.base_url}/things/a/parts/7", timeout=5).status_code == 404


def test_a_form_body_is_read_field_by_field_and_a_repeated_field_is_no_value(echo: Echo) -> None:
    form = [("grant_type", "refresh_token"), ("scope", "a"), ("scope", "b"), ("empty", "")]
    answer = requests.post(f"{echo.base_url}/form", data=form, timeout=5).json()
    assert answer["is_form"] is True
    assert answer["form"] == {"grant_type": ["refresh_token"], "scope": ["a", "b"], "empty": [""]}
    assert answer["grant_type"] == "refresh_token"
    assert Request("POST", "/", {}, {}, b"scope=a&scope=b").field("scope") is None  # no type


@pytest.mark.parametrize("length", ["99999999", "-1", "many"])
def test_a_body_length_it_will_not_read_is_refused_at_once(echo: Echo, length: str) -> None:
    host, port = echo.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(f"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
        assert conn.recv(100).startswith(b"HTTP/1.1 413 ")


def test_connections_are_counted(echo: Echo) -> None:
    with requests.Session() as session:
        for _ in range(3):
            session.get(f"{echo.base_url}/echo", timeout=5)
    requests.get(f"{echo.base_url}/echo", timeout=5)
    assert echo.connections == 2  # the session kept its connection alive


def test_requests_are_counted_per_account(echo: Echo) -> None:
    for token in ("a", "a", "b"):
        requests.get(f"{echo.base_url}/echo", headers={"Authorization": token}, timeout=5)
    requests.get(f"{echo.base_url}/echo", timeout=5)
    assert echo.requests == {"a": 2, "b": 1}
    assert echo.total_requests == 4


def test_concurrent_requests_for_one_account_are_logged_as_overlaps() -> None:
    with Slow(latency=0.3) as platform:

        def call(token: str) -> None:
            requests.get(f"{platform.base_url}/echo", headers={"Authorization": token}, timeout=5)

        same = [threading.Thread(target=call, args=("a",)) for _ in range(2)]
        other = threading.Thread(target=call, args=("b",))
        for thread in (*same, other):
            thread.start()
        for thread in (*same, other):
            thread.join()
        assert platform.overlaps == [("a", "/echo")]


def test_one_request_at_a_time_is_no_overlap_and_latency_delays_each_answer() -> None:
    with Slow(latency=0.1) as platform:
        started = time.perf_counter()
        for _ in range(3):
            requests.get(f"{platform.base_url}/echo", headers={"Authorization": "a"}, timeout=5)
        assert time.perf_counter() - started >= 0.3
        assert platform.overlaps == []
        assert platform.max_active == 1


def test_the_most_requests_served_at_once_are_counted_over_all_accounts() -> None:
    with Slow(latency=0.5) as platform:
        calls = [
            threading.Thread(
                target=requests.get,
                args=(f"{platform.base_url}/echo",),
                kwargs={"headers": {"Authorization": token} if token else {}, "timeout": 5},
            )
            for token in ("a", "b", "c", None)
        ]
        for thread in calls:
            thread.start()
        for thread in calls:
            thread.join()
        requests.get(f"{platform.base_url}/echo", timeout=5)  # alone: the maximum stays
        assert platform.max_active == 4
        assert platform.overlaps == []


def test_a_stopped_platform_has_no_address() -> None:
    platform = Echo().start()
    platform.stop()
    with pytest.raises(RuntimeError, match="not running"):
        _ = platform.base_url


# ---------------------------------------------------------------------------
# Misbehaving on purpose


class Hostile(FakePlatform):
    """Answers no well-behaved platform gives."""

    @route("GET", "/chunked")
    def chunked(self, request: Request) -> FakeResponse:
        return FakeResponse(200, iter([b"ab", b"", b"cd"]), {"Content-Type": "text/plain"})

    @route("GET", "/sized")
    def sized(self, request: Request) -> FakeResponse:
        return FakeResponse(200, iter([b"x" * 10] * 3), {"Content-Length": "30"})

    @route("GET", "/endless")
    def endless(self, request: Request) -> FakeResponse:
        return FakeResponse(200, itertools.repeat(b"y" * 65536))

    @route("GET", "/drip")
    def drip(self, request: Request) -> FakeResponse:
        return FakeResponse(200, iter([b"1", b"2", b"3"]), pace=0.1)

    @route("GET", "/raw")
    def raw(self, request: Request) -> RawAnswer:
        return RawAnswer([b"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 2\r\n\r\n", b"hi"])

    @route("GET", "/hold")
    def hold(self, request: Request) -> RawAnswer:
        return RawAnswer(hold=True)


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    with Hostile() as platform:
        yield platform


def test_an_iterator_body_is_streamed_chunked(hostile: Hostile) -> None:
    answer = requests.get(f"{hostile.base_url}/chunked", timeout=5)
    assert answer.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in answer.headers
    assert answer.content == b"abcd"


def test_a_streamed_body_with_a_content_length_is_sent_as_it_is(hostile: Hostile) -> None:
    answer = requests.get(f"{hostile.base_url}/sized", timeout=5)
    assert "Transfer-Encoding" not in answer.headers
    assert answer.content == b"x" * 30


def test_an_endless_body_is_endless_and_a_client_may_hang_up(hostile: Hostile) -> None:
    with requests.get(f"{hostile.base_url}/endless", stream=True, timeout=5) as answer:
        read = 0
        for piece in answer.iter_content(65536):
            read += len(piece)
            if read >= 4 << 20:
                break
    assert read >= 4 << 20
    assert requests.get(f"{hostile.base_url}/chunked", timeout=5).content == b"abcd"


def test_pace_drips_a_streamed_body(hostile: Hostile) -> None:
    started = time.perf_counter()
    assert requests.get(f"{hostile.base_url}/drip", timeout=5).content == b"123"
    assert time.perf_counter() - started >= 0.3


def test_a_raw_answer_is_written_exactly_as_given(hostile: Hostile) -> None:
    answer = requests.get(f"{hostile.base_url}/raw", timeout=5)
    assert (answer.status_code, answer.reason, answer.content) == (418, "I'm a teapot", b"hi")


def test_a_held_connection_never_answers(hostile: Hostile) -> None:
    with pytest.raises(requests.ReadTimeout):
        requests.get(f"{hostile.base_url}/hold", timeout=0.3)


def test_stopping_the_platform_ends_held_connections() -> None:
    platform = Hostile().start()
    outcome: list[BaseException | int] = []

    def call() -> None:
        try:
            outcome.append(requests.get(f"{platform.base_url}/hold", timeout=30).status_code)
        except requests.RequestException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.2)
    started = time.perf_counter()
    platform.stop()
    caller.join(5)
    assert not caller.is_alive()
    assert time.perf_counter() - started < 2
    assert isinstance(outcome[0], requests.ConnectionError)


def test_the_requests_being_served_right_now_are_counted() -> None:
    with Slow(latency=0.3) as slow:
        thread = threading.Thread(target=requests.get, args=(f"{slow.base_url}/echo",))
        thread.start()
        deadline = time.monotonic() + 10
        while slow.active == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert slow.active == 1
        thread.join(timeout=10)
        assert slow.active == 0
