"""The loopback listener: the platform's redirect received on 127.0.0.1, once, or a timeout."""

from __future__ import annotations

import socket
import threading

import pytest
import requests

from trickle.linking.accounts import LinkError
from trickle.linking.loopback import LoopbackRedirect


def test_the_redirect_uri_is_on_the_loopback_ip_with_an_ephemeral_port() -> None:
    with LoopbackRedirect() as loop:
        assert loop.port > 0
        assert loop.redirect_uri == f"http://127.0.0.1:{loop.port}/callback"


def test_the_callback_is_received_whole_and_the_browser_told_to_go_back() -> None:
    with LoopbackRedirect() as loop:
        answer: list[requests.Response] = []
        browser = threading.Thread(
            target=lambda: answer.append(
                requests.get(f"{loop.redirect_uri}?code=c0de&state=st4te", timeout=5)
            )
        )
        browser.start()
        received = loop.wait(timeout=10)
        browser.join(5)
    assert received == f"{loop.redirect_uri}?code=c0de&state=st4te"
    (page,) = answer
    assert page.status_code == 200
    assert "close this window" in page.text
    assert "c0de" not in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"


def test_other_paths_are_not_the_callback() -> None:
    with LoopbackRedirect() as loop:
        other = requests.get(f"http://127.0.0.1:{loop.port}/favicon.ico", timeout=5)
        assert other.status_code == 404
        with pytest.raises(LinkError, match="no answer from the browser within 1 s"):
            loop.wait(timeout=1)


def test_a_timeout_counts_down_and_links_nothing() -> None:
    ticks: list[int] = []
    with LoopbackRedirect() as loop, pytest.raises(LinkError, match="nothing was linked"):
        loop.wait(timeout=2.5, tick=ticks.append)
    assert ticks[0] == 3
    assert ticks == sorted(ticks, reverse=True)


def test_a_port_that_is_taken_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LinkError, match=rf"port {port} on 127.0.0.1 is taken.*loopback_port"):
            LoopbackRedirect(port).__enter__()


def test_a_fixed_port_is_used_as_registered() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with LoopbackRedirect(port) as loop:
        assert loop.redirect_uri == f"http://127.0.0.1:{port}/callback"
