"""The guard for hosts a user names: trickle talks to public servers over https, and nothing else.

On a platform of many servers (Mastodon, Bluesky's PDSes) the host a request
goes to is user input: whoever links an account names the server, and a
hostile one would name ``169.254.169.254``, ``localhost:5432`` or a name of
their own that resolves to the operator's private network, to have trickle's
worker send requests there. A connector whose hosts are user-supplied
(``Connector.user_supplied_hosts``) has every request guarded by a
:class:`HostGuard`, and so do the linking service's requests to its servers
(app registration, token exchange, revocation):

- the URL must be ``https`` (plain ``http`` only to an allowed non-public
  address, for a fake platform on this machine);
- every address the host name resolves to must be a public one: not private,
  loopback, link-local, multicast, reserved, unspecified or shared (CGNAT),
  in IPv4 or IPv6, nor an IPv6 address that carries such an IPv4 address
  (IPv4-mapped, NAT64, 6to4);
- and the address of the socket actually connected is checked again, after
  the connect and before a byte is sent: a name that resolves to a public
  address for the check and to a private one for the connect (DNS rebinding)
  is refused there. A pooled connection is checked again before each reuse.

Redirects are never followed by the HTTP layer, so an answer cannot send a
guarded request elsewhere. Through an HTTP proxy the connected peer is the
proxy, which the operator chose: the target's resolved addresses are checked,
and the proxy resolves the name again.

``[connectors.NAME] allow_private_hosts = true`` lets the operator reach
servers on private addresses (and plain http to them): tests and demos do,
since their fakes listen on 127.0.0.1. A refused host is a
:class:`HostRefused`, a :class:`~trickle.connectors.errors.PlatformError`
that says which address class it was.

The interface, for a connector with hosts of its own to look up (a Bluesky
handle's ``/.well-known/atproto-did``): ``connector.host_guard`` is the guard
(None when its hosts are not user-supplied), passed as ``guard=`` to
``HttpClient.request``/``get``; ``AccountSession`` passes it on every request.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from trickle.connectors.errors import PlatformError
from trickle.core.text import printable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598, carrier-grade NAT


class HostRefused(PlatformError):
    """A guarded request to a host that is not a public server over https (see the module)."""


def address_class(address: str | Address) -> str | None:
    """Why ``address`` is not a public address (``"a loopback address"``...), or None when it
    is one. An IPv4-mapped IPv6 address is judged as the IPv4 address it is; one that carries
    an IPv4 address through a gateway (NAT64, 6to4), by that address too."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return address_class(ip.ipv4_mapped)  # what the socket connects to is the IPv4 one
    if isinstance(ip, ipaddress.IPv6Address):
        carried = _carried_ipv4(ip)
        if carried is not None:
            inner = address_class(carried)
            if inner is not None:
                return f"{inner} (inside the IPv6 address)"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved:
        return "a reserved address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if not ip.is_global:
        return "an address that is not public"
    return None


def _carried_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True, slots=True)
class HostGuard:
    """What a guarded request may reach (see the module); ``allow_private`` is the operator's
    ``allow_private_hosts``: non-public addresses too, and plain http to them."""

    allow_private: bool = False

    def check_url(self, url: str) -> None:
        """Refuse, before anything is resolved, a URL that is not https (unless private hosts
        are allowed) or whose host is a literal address that is not public."""
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except ValueError:
            raise HostRefused(f"{_shown(url)} is not a URL trickle can send to") from None
        if parts.scheme != "https" and not (self.allow_private and parts.scheme == "http"):
            raise HostRefused(
                f"{_shown(host or url)}: trickle talks to user-named servers over https only"
            )
        if not host:
            raise HostRefused(f"{_shown(url)} names no host")
        literal = _literal(host)
        if literal is not None:  # a name's addresses are checked as it is resolved, connected
            self.check_address(host, literal, tls=parts.scheme == "https")

    def check_address(self, host: str, address: str | Address, *, tls: bool) -> None:
        """Refuse ``address`` (one ``host`` resolves or connected to) unless it is public, or
        private hosts are allowed; plain http only to an allowed non-public address."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        why = address_class(ip)
        if why is None:
            if not tls:
                raise HostRefused(
                    f"{_shown(host)} is at the public address {ip}: trickle talks to it over "
                    "https only"
                )
            return
        if self.allow_private:
            return
        said = _shown(host)
        where = f"is {why}" if _literal(host) == ip else f"is at {ip}, {why}"
        raise HostRefused(
            f"{said} {where}: trickle does not send requests for user-named servers "
            "there (an operator whose servers are on a private network sets "
            "allow_private_hosts = true in the connector's settings)"
        )


def _literal(host: str) -> Address | None:
    """The address ``host`` is written as (``[::1]``, ``fe80::1%eth0``), or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]").partition("%")[0])
    except ValueError:
        return None


def _shown(text: str) -> str:
    return printable(text, 100)
