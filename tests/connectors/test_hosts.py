"""trickle.connectors.hosts: a request to a host a user named reaches public servers over https
only; the address checked is the one the socket connected to, so DNS rebinding is refused."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from trickle.connectors.errors import PlatformError
from trickle.connectors.hosts import HostGuard, HostRefused, address_class
from trickle.connectors.http import _GUARDS, HttpClient, _WatchedHTTPConnection
from trickle.connectors.settings import ConnectorSettings
from trickle.testing.fakeplatform import FakePlatform, FakeResponse, Request, route

GUARD = HostGuard()
ALLOWING = HostGuard(allow_private=True)


class Site(FakePlatform):
    """A server on 127.0.0.1 that answers every GET of /likes and redirects /moved."""

    @route("GET", "/likes")
    def likes(self, request: Request) -> FakeResponse:
        return FakeResponse(200, {"likes": []})

    @route("GET", "/moved")
    def moved(self, request: Request) -> FakeResponse:
        return FakeResponse(302, {}, {"Location": "http://169.254.169.254/latest/meta-data/"})


@pytest.fixture
def site() -> Iterator[Site]:
    with Site() as server:
        yield server


class Listener:
    """A bare TCP listener on 127.0.0.1 that counts connections and every byte received."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(5)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self.received = b""
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.connections += 1
        with conn:
            conn.settimeout(5)
            while chunk := conn.recv(4096):
                self.received += chunk

    def done(self) -> None:
        """Wait until the one connection it serves has ended (the client closed it)."""
        self._thread.join(timeout=6)

    def close(self) -> None:
        """Stop listening (an accept still waiting returns)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=6)


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def client() -> HttpClient:
    return HttpClient(retries=0, timeout=5, deadline=10)


def resolving(monkeypatch: pytest.MonkeyPatch, *answers: str) -> list[str]:
    """Make every host name resolve to ``answers`` in turn (the last one from then on), the way
    a hostile name server answers; returns the names asked for."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("127.0.0.1", "::1"):
            return real(host, port, *args, **kwargs)
        asked.append(str(host))
        address = answers[min(len(asked), len(answers)) - 1]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        where = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
        return [(family, socket.SOCK_STREAM, 6, "", where)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


class TestAddressClasses:
    @pytest.mark.parametrize(
        ("address", "why"),
        [
            ("10.1.2.3", "a private address"),
            ("172.16.0.1", "a private address"),
            ("192.168.1.1", "a private address"),
            ("127.0.0.1", "a loopback address"),
            ("127.8.9.10", "a loopback address"),
            ("169.254.169.254", "a link-local address"),
            ("224.0.0.251", "a multicast address"),
            ("240.0.0.1", "a private address"),  # reserved, which Python counts as private too
            ("0.0.0.0", "the unspecified address"),  # noqa: S104 - an address to refuse
            ("100.64.0.1", "a shared (carrier-grade NAT) address"),
            ("192.0.2.1", "a private address"),  # documentation
            ("::1", "a loopback address"),
            ("::", "the unspecified address"),
            ("fe80::1", "a link-local address"),
            ("fd12:3456::1", "a private address"),
            ("ff02::1", "a multicast address"),
            ("::ffff:127.0.0.1", "a loopback address"),
            ("::ffff:10.0.0.1", "a private address"),
            ("64:ff9b::a9fe:a9fe", "a link-local address (inside the IPv6 address)"),
            ("2002:7f00:1::", "a loopback address (inside the IPv6 address)"),
            ("2001:db8::1", "a private address"),  # documentation
        ],
    )
    def test_every_non_public_class_is_named(self, address: str, why: str) -> None:
        assert address_class(address) == why

    @pytest.mark.parametrize(
        "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
    )
    def test_public_addresses_pass(self, address: str) -> None:
        assert address_class(address) is None


class TestUrls:
    def test_https_to_a_name_passes_the_url_check(self) -> None:
        GUARD.check_url("https://mastodon.social/api/v1/favourites")

    @pytest.mark.parametrize("url", ["http://mastodon.social/", "ftp://mastodon.social/"])
    def test_anything_but_https_is_refused(self, url: str) -> None:
        with pytest.raises(HostRefused, match="over https only"):
            GUARD.check_url(url)

    def test_plain_http_is_allowed_to_private_addresses_only_when_they_are(self) -> None:
        ALLOWING.check_url("http://127.0.0.1:8080/")
        with pytest.raises(HostRefused, match=r"public address 8\.8\.8\.8: .* https only"):
            ALLOWING.check_url("http://8.8.8.8/")
        with pytest.raises(HostRefused, match="https only"):
            ALLOWING.check_url("ftp://127.0.0.1/")

    @pytest.mark.parametrize(
        ("url", "why"),
        [
            ("https://127.0.0.1/", "127.0.0.1 is a loopback address"),
            ("https://[::1]:8443/", r"::1 is a loopback address"),
            ("https://[::ffff:169.254.169.254]/", "is a link-local address"),
            ("https://[64:ff9b::a00:1]/", "private address \\(inside the IPv6 address\\)"),
            ("https://0.0.0.0/", "the unspecified address"),
        ],
    )
    def test_a_literal_address_that_is_not_public_is_refused(self, url: str, why: str) -> None:
        with pytest.raises(HostRefused, match=why) as caught:
            GUARD.check_url(url)
        assert "allow_private_hosts = true" in str(caught.value)

    def test_the_operator_may_allow_private_addresses(self) -> None:
        ALLOWING.check_url("https://10.0.0.5/")
        ALLOWING.check_url("https://[fd00::5]/")

    def test_a_refusal_is_a_platform_error(self) -> None:
        assert issubclass(HostRefused, PlatformError)


class TestGuardedRequests:
    def test_a_server_on_loopback_is_refused_and_never_reached(self, site: Site) -> None:
        url = f"{site.base_url.replace('http:', 'https:')}/likes"
        with pytest.raises(HostRefused) as caught:
            client().get(url, guard=GUARD)
        assert str(caught.value).startswith(f"GET {url}: 127.0.0.1 is a loopback address")
        assert site.total_requests == 0

    def test_plain_http_is_refused_before_anything_is_sent(self, site: Site) -> None:
        with pytest.raises(HostRefused, match="over https only"):
            client().get(f"{site.base_url}/likes", guard=GUARD)
        assert site.total_requests == 0

    def test_allowed_private_hosts_are_reached(self, site: Site) -> None:
        response = client().get(f"{site.base_url}/likes", guard=ALLOWING)
        assert response.json() == {"likes": []}

    def test_unguarded_requests_are_as_before(self, site: Site) -> None:
        assert client().get(f"{site.base_url}/likes").status_code == 200

    def test_a_name_resolving_to_a_private_address_is_refused_before_connecting(
        self, listener: Listener, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        resolving(monkeypatch, "127.0.0.1")
        with pytest.raises(HostRefused, match=r"intranet.example is at 127.0.0.1, a loopback"):
            client().get(f"https://intranet.example:{listener.port}/likes", guard=GUARD)
        listener.close()
        assert listener.connections == 0

    def test_one_private_address_among_public_ones_is_enough_to_refuse(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host != "mixed.example":
                return real(host, port, *args, **kwargs)
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
            ]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        with pytest.raises(HostRefused, match=r"is at 10\.0\.0\.7, a private address"):
            client().get("https://mixed.example/likes", guard=GUARD)

    def test_dns_rebinding_is_caught_at_the_connected_socket(
        self, listener: Listener, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Public when the guard looks, loopback when urllib3 connects: the connected socket's
        # own address is what is refused, before a byte (not even TLS's hello) is sent.
        asked = resolving(monkeypatch, "93.184.215.14", "127.0.0.1")
        with pytest.raises(HostRefused, match=r"rebind.example is at 127.0.0.1, a loopback"):
            client().get(f"https://rebind.example:{listener.port}/likes", guard=GUARD)
        listener.done()
        assert asked == ["rebind.example", "rebind.example"]
        assert listener.connections == 1
        assert listener.received == b""

    def test_a_pooled_connection_is_checked_again_before_it_carries_a_guarded_request(
        self, site: Site
    ) -> None:
        connection = _WatchedHTTPConnection("127.0.0.1", int(site.base_url.rsplit(":", 1)[1]))
        connection.connect()  # made for an unguarded request
        _GUARDS.current = GUARD
        try:
            with pytest.raises(HostRefused, match="loopback"):
                connection.request("GET", "/likes")
        finally:
            _GUARDS.current = None
            connection.close()
        assert site.total_requests == 0

    def test_a_redirect_is_not_followed(self, site: Site) -> None:
        with pytest.raises(PlatformError, match=r"302 .*a redirect: not followed"):
            client().get(f"{site.base_url}/moved", guard=ALLOWING)
        assert site.total_requests == 1

    def test_the_guard_holds_for_its_request_only(self, site: Site) -> None:
        with pytest.raises(HostRefused):
            client().get(f"{site.base_url.replace('http:', 'https:')}/likes", guard=GUARD)
        assert getattr(_GUARDS, "current", None) is None
        assert client().get(f"{site.base_url}/likes").status_code == 200


class TestSetting:
    def test_private_hosts_are_refused_unless_the_operator_allows_them(self) -> None:
        assert ConnectorSettings().allow_private_hosts is False
        assert ConnectorSettings(allow_private_hosts=True).allow_private_hosts is True
