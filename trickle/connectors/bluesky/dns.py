"""The DNS side of handle resolution: ``_atproto.HANDLE`` TXT records, with dnspython.

A handle proves its DID with a TXT record ``did=DID`` on ``_atproto.HANDLE``
(specs/handle). :class:`DnsTxt` asks for it with dnspython, bounded by a
timeout for the whole lookup, and answers an empty list for every way a
lookup can come back empty or fail (no such name, no TXT record, no answer
in time, no resolver configured): the HTTPS method is then tried. The
resolver is injected (:data:`TxtLookup`), so tests answer from a table or
from :class:`~trickle.connectors.bluesky.fake_identity.FakeDns` on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable

import dns.exception
import dns.resolver

TxtLookup = Callable[[str], list[str]]
"""The TXT strings of a DNS name (empty when it has none or cannot be looked up)."""

MAX_TXT_RECORDS = 20
"""A name with more TXT records than this is not a handle's: the rest are not read."""
MAX_DNS_SECONDS = 10.0


class DnsTxt:
    """TXT lookups through the system's resolvers, or through ``server`` (``IP`` or
    ``IP:PORT``, a fake one in tests and demos), within ``timeout`` seconds in all."""

    def __init__(self, server: str | None = None, *, timeout: float = 5.0) -> None:
        self.server = server
        self.timeout = min(timeout, MAX_DNS_SECONDS)

    def _resolver(self) -> dns.resolver.Resolver:
        if self.server is None:
            resolver = dns.resolver.Resolver(configure=True)
        else:
            host, _, port = (
                self.server.rpartition(":")
                if ":" in self.server
                else (
                    self.server,
                    "",
                    "53",
                )
            )
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [host.strip("[]")]
            resolver.port = int(port or 53)
        resolver.timeout = self.timeout
        resolver.lifetime = self.timeout
        return resolver

    def __call__(self, name: str) -> list[str]:
        try:
            answer = self._resolver().resolve(name, "TXT", search=False, raise_on_no_answer=False)
        except (dns.exception.DNSException, ValueError, OSError):
            return []  # NXDOMAIN, no nameservers, a timeout, no resolv.conf: nothing found
        found = []
        for record in list(answer)[:MAX_TXT_RECORDS]:
            strings = getattr(record, "strings", ())
            found.append(b"".join(strings)[:4096].decode("ascii", errors="replace"))
        return found
