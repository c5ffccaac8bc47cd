"""OAuth 1.0a signatures as RFC 5849 writes them, for the fake server to check independently.

Written from the RFC alone, not from Authlib (which signs trickle's
requests) nor ``urllib.parse``, so a request Authlib signs wrongly fails
here rather than agreeing with itself:

- :func:`percent_encode` (section 3.6): UTF-8, every octet outside the
  unreserved set as ``%XX`` in upper case.
- :func:`parse_form` (section 3.4.1.3.1, after HTML 4.0 section 17.13.4):
  a query or form body as name/value pairs, ``+`` a space, repeats kept.
- :func:`parse_authorization` and :func:`authorization_header` (section
  3.5.1): the ``OAuth`` scheme's quoted, percent-encoded parameters.
- :func:`base_string_uri` (3.4.1.2), :func:`normalized_parameters`
  (3.4.1.3.2), :func:`base_string` (3.4.1.1) and :func:`hmac_sha1` (3.4.2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable

UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
DEFAULT_PORTS = {"http": 80, "https": 443}
_HEX = frozenset(b"0123456789ABCDEFabcdef")
_HEADER_PARAM = re.compile(r'\s*([^\s=,"]+)\s*=\s*"([^"]*)"\s*(?:,|$)')

Pairs = list[tuple[str, str]]


def percent_encode(text: str) -> str:
    """Section 3.6: the text as UTF-8, unreserved octets as they are, all others ``%XX``."""
    return "".join(
        chr(octet) if octet in UNRESERVED else f"%{octet:02X}" for octet in text.encode()
    )


def percent_decode(text: str) -> str:
    """``%XX`` escapes back to octets, read as UTF-8; a broken escape or invalid UTF-8 is a
    :class:`ValueError`."""
    raw = text.encode()
    octets = bytearray()
    at = 0
    while at < len(raw):
        if raw[at] == ord("%"):
            pair = raw[at + 1 : at + 3]
            if len(pair) != 2 or not all(octet in _HEX for octet in pair):
                raise ValueError(f"a broken percent escape in {text!r}")
            octets.append(int(pair, 16))
            at += 3
        else:
            octets.append(raw[at])
            at += 1
    return octets.decode()  # UnicodeDecodeError is a ValueError


def parse_form(text: str) -> Pairs:
    """A query or ``application/x-www-form-urlencoded`` body as its name/value pairs, in
    order, repeats kept; ``+`` is a space and a name without ``=`` has an empty value."""
    pairs: Pairs = []
    for piece in text.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        pairs.append(
            (percent_decode(name.replace("+", " ")), percent_decode(value.replace("+", " ")))
        )
    return pairs


def parse_authorization(header: str) -> Pairs | None:
    """The parameters of an ``Authorization: OAuth ...`` header (section 3.5.1), their values
    percent-decoded, ``realm`` included; None when the scheme is not OAuth; a malformed
    header is a :class:`ValueError`."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "oauth":
        return None
    pairs: Pairs = []
    at, rest = 0, rest.strip()
    while at < len(rest):
        found = _HEADER_PARAM.match(rest, at)
        if found is None:
            raise ValueError("the Authorization header is not OAuth parameters")
        name, value = found.group(1), found.group(2)
        pairs.append((name, value if name == "realm" else percent_decode(value)))
        at = found.end()
    return pairs


def authorization_header(pairs: Iterable[tuple[str, str]], realm: str | None = None) -> str:
    """An ``Authorization`` header value carrying ``pairs`` (section 3.5.1)."""
    parts = [f'realm="{realm}"'] if realm is not None else []
    parts += [f'{percent_encode(name)}="{percent_encode(value)}"' for name, value in pairs]
    return "OAuth " + ", ".join(parts)


def base_string_uri(scheme: str, host: str, path: str) -> str:
    """Section 3.4.1.2: scheme and host in lower case, the port unless it is the scheme's
    default, the path as requested (``/`` if empty); no query, no fragment. ``host`` is the
    ``Host`` header's ``name[:port]``."""
    scheme = scheme.lower()
    name, port = host, ""
    if host.startswith("["):  # an IPv6 literal
        end = host.find("]")
        name, port = host[: end + 1], host[end + 2 :] if host[end + 1 : end + 2] == ":" else ""
    elif ":" in host:
        name, port = host.rsplit(":", 1)
    authority = name.lower()
    if port and int(port) != DEFAULT_PORTS.get(scheme):
        authority = f"{authority}:{int(port)}"
    return f"{scheme}://{authority}{path or '/'}"


def normalized_parameters(pairs: Iterable[tuple[str, str]]) -> str:
    """Section 3.4.1.3.2: every name and value percent-encoded, sorted by name and then value
    (ascending octets), each ``name=value``, joined by ``&``."""
    encoded = sorted((percent_encode(name), percent_encode(value)) for name, value in pairs)
    return "&".join(f"{name}={value}" for name, value in encoded)


def base_string(method: str, uri: str, pairs: Iterable[tuple[str, str]]) -> str:
    """Section 3.4.1.1: the method in upper case, the base string URI and the normalized
    parameters, each percent-encoded, joined by ``&``. ``pairs`` are every parameter of the
    request but ``oauth_signature`` and the header's ``realm``."""
    parts = (method.upper(), uri, normalized_parameters(pairs))
    return "&".join(percent_encode(part) for part in parts)


def hmac_sha1(text: str, client_secret: str, token_secret: str = "") -> str:
    """Section 3.4.2: HMAC-SHA1 of the base string keyed by the percent-encoded client secret
    and token secret joined by ``&``, in base64."""
    key = f"{percent_encode(client_secret)}&{percent_encode(token_secret)}"
    digest = hmac.new(key.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")
