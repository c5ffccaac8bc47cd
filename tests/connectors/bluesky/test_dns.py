"""``_atproto`` TXT lookups with dnspython, against the fake DNS server on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from trickle.connectors.bluesky.dns import DnsTxt
from trickle.connectors.bluesky.fake_identity import FakeDns


@pytest.fixture
def fake_dns() -> Iterator[FakeDns]:
    with FakeDns() as server:
        yield server


def test_the_txt_records_of_a_name_are_read(fake_dns: FakeDns) -> None:
    fake_dns.txt("_atproto.ada.pds.test", "did=did:plc:ewvi7nxzyoun6zhxrhs64oiz", "v=spf1 -all")

    found = DnsTxt(fake_dns.address)("_atproto.ada.pds.test")

    assert sorted(found) == ["did=did:plc:ewvi7nxzyoun6zhxrhs64oiz", "v=spf1 -all"]  # a set
    assert fake_dns.queries == ["_atproto.ada.pds.test"]


def test_a_name_without_records_has_none(fake_dns: FakeDns) -> None:
    assert DnsTxt(fake_dns.address)("_atproto.nobody.pds.test") == []


def test_a_server_that_never_answers_gives_nothing_within_the_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        started = time.monotonic()

        assert DnsTxt(f"127.0.0.1:{port}", timeout=0.5)("_atproto.ada.pds.test") == []

    assert time.monotonic() - started < 3
