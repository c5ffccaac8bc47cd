"""atproto identity: a handle to its DID, a DID to its document, and the document to the PDS.

What the specs say (specs/handle, specs/did), and what this module does:

- A handle is a DNS name, case-insensitive (stored lower-case). It names its
  DID in a TXT record ``did=DID`` on ``_atproto.HANDLE`` (preferred: asked
  first) or as the plain-text body of ``https://HANDLE/.well-known/atproto-did``.
  Several TXT records naming different DIDs fail the resolution.
- ``did:plc`` documents come from the PLC directory (``GET {plc_url}/{did}``;
  404 not registered, 410 deactivated); ``did:web:HOST`` from
  ``https://HOST/.well-known/did.json`` (hostname-level only: no path, no port).
  The document's ``id`` must be the DID asked for.
- The claimed handle is the first valid ``at://HANDLE`` of ``alsoKnownAs``; a
  handle is trusted only when that is it (both ways). The PDS is the first
  ``service`` whose ``id`` ends in ``#atproto_pds`` and whose type is
  ``AtprotoPersonalDataServer``: an origin (scheme, host, port, nothing more).

Every request goes through trickle's HTTP layer (timeouts, the byte cap, no
redirects followed: a handle whose well-known answer redirects does not
resolve). Every host involved but the PLC directory (the operator's choice)
is named by users: the handle's, a did:web host, the PDS a DID document
names. Requests to them carry the connector's host guard
(:mod:`trickle.connectors.hosts`: https to public addresses only, checked
again at connect), so a handle cannot send trickle to the operator's own
network. ``web_origin`` sends the requests meant for ``https://HOST`` to one
origin instead, with ``HOST`` as the ``Host`` header, so a fake on 127.0.0.1
can serve many handles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from trickle.connectors.bluesky.dns import TxtLookup
from trickle.connectors.bluesky.payloads import (
    DID_DOCUMENT,
    MAX_HANDLE_LENGTH,
    DidDocument,
    is_did,
    is_handle,
)
from trickle.connectors.errors import ConnectorError, PlatformError, TransientError
from trickle.connectors.hosts import HostGuard
from trickle.connectors.http import HttpClient, json_body
from trickle.connectors.payloads import parse_payload
from trickle.connectors.policy import DEFAULT_POLICY, Action
from trickle.core.text import printable

DISALLOWED_TLDS = frozenset(
    {"alt", "arpa", "example", "internal", "invalid", "local", "localhost", "onion"}
)
"""Top-level domains no handle may resolve under (specs/handle)."""
PLC_POLICY = DEFAULT_POLICY.with_statuses({404: Action.FAIL, 410: Action.FAIL})


class IdentityError(PlatformError):
    """A handle or DID that does not resolve as atproto requires (the message says where)."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """An identity verified both ways: the handle names the DID, the DID's document names the
    handle back, and the document says where the account's repository is (``pds``)."""

    did: str
    handle: str
    pds: str


def normalize_handle(text: str) -> str:
    """The handle a user typed (``@Alice.bsky.social``), lower-case; an error when it is not
    a handle trickle may resolve."""
    given = text.strip().removeprefix("@")
    shown = printable(given, 100)
    try:
        handle = given.encode("idna").decode("ascii").lower() if given else ""
    except UnicodeError:
        raise IdentityError(f"{shown} is not a handle (like alice.bsky.social)") from None
    if not is_handle(handle) or len(handle) > MAX_HANDLE_LENGTH - len("_atproto."):
        raise IdentityError(f"{shown} is not a handle (like alice.bsky.social)")
    if handle.rsplit(".", 1)[-1] in DISALLOWED_TLDS:
        raise IdentityError(f"{shown} is under a top-level domain atproto handles may not use")
    return handle


def origin_of(url: str, *, what: str) -> str:
    """``url`` as an origin (``https://host[:port]``) if it is nothing more than one, else an
    :class:`IdentityError` saying ``what``. (Whether its host may be asked is the host
    guard's to say, when a request goes there.)"""
    shown = printable(url, 100)
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        raise IdentityError(f"{what} {shown} is not a URL") from None
    if (
        parts.scheme not in ("https", "http")
        or not host
        or parts.username is not None
        or parts.password is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise IdentityError(f"{what} {shown} is not a server's origin (https://host)")
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{netloc}{f':{port}' if port is not None else ''}"


def claimed_handle(document: DidDocument) -> str | None:
    """The handle a DID document claims: its first valid ``at://HANDLE`` (lower-case)."""
    for alias in document.alsoKnownAs:
        if alias.startswith("at://"):
            candidate = alias.removeprefix("at://")
            if is_handle(candidate):
                return candidate.lower()
    return None


def pds_endpoint(document: DidDocument) -> str | None:
    """The raw ``serviceEndpoint`` of the document's atproto PDS entry, if it has one."""
    for service in document.service:
        types = service.type if isinstance(service.type, list) else [service.type]
        if service.id.endswith("#atproto_pds") and "AtprotoPersonalDataServer" in types:
            return service.serviceEndpoint if isinstance(service.serviceEndpoint, str) else None
    return None


class IdentityResolver:
    """Resolves handles and DIDs through ``http`` (see the module)."""

    def __init__(
        self,
        http: HttpClient,
        txt: TxtLookup,
        *,
        plc_url: str = "https://plc.directory",
        web_origin: str | None = None,
        guard: HostGuard | None = None,
        secrets: list[str] | None = None,
    ) -> None:
        self.http = http
        self.guard = guard
        self.txt = txt
        self.plc_url = plc_url.rstrip("/")
        self.web_origin = web_origin.rstrip("/") if web_origin else None
        self.secrets = secrets or []

    # -- handle -> DID ---------------------------------------------------------------

    def handle_to_did(self, handle: str) -> str:
        """The DID ``handle`` names (DNS first, then HTTPS); an :class:`IdentityError` when it
        names none, or several."""
        from_dns = self._did_from_dns(handle)
        if from_dns is not None:
            return from_dns
        from_web = self._did_from_web(handle)
        if from_web is not None:
            return from_web
        raise IdentityError(
            f"the handle {handle} names no DID: no _atproto.{handle} TXT record and no "
            f"https://{handle}/.well-known/atproto-did"
        )

    def _did_from_dns(self, handle: str) -> str | None:
        values = {v.strip()[4:] for v in self.txt(f"_atproto.{handle}") if v.startswith("did=")}
        if len(values) > 1:
            raise IdentityError(f"_atproto.{handle} has TXT records naming different DIDs")
        if not values:
            return None
        (did,) = values
        if not is_did(did):
            raise IdentityError(f"the TXT record of _atproto.{handle} does not hold a DID")
        return did

    def _did_from_web(self, handle: str) -> str | None:
        try:
            response = self._web_get(handle, "/.well-known/atproto-did")
        except TransientError:
            raise
        except ConnectorError:
            return None  # 404, a redirect, not a web server of atproto's: no DID there
        text = response.content[:4096].decode("utf-8", errors="replace").strip()
        if not is_did(text):
            raise IdentityError(f"https://{handle}/.well-known/atproto-did does not hold a DID")
        return text

    # -- DID -> document -> PDS --------------------------------------------------------

    def document(self, did: str) -> DidDocument:
        """The current DID document of ``did`` (did:plc or hostname-level did:web)."""
        if not is_did(did):
            raise IdentityError(f"{printable(did, 100)} is not a DID")
        if did.startswith("did:plc:"):
            url = f"{self.plc_url}/{quote(did, safe=':')}"
            body = self._json(self.http.request(
                "GET", url, headers={"Accept": "application/did+ld+json, application/json"},
                secrets=self.secrets, policy=PLC_POLICY,
            ))  # fmt: skip
        elif did.startswith("did:web:"):
            host = did.removeprefix("did:web:")
            if ":" in host or "%" in host or not is_handle(host):
                raise IdentityError(f"{did}: only hostname-level did:web DIDs are supported")
            body = self._json(self._web_get(host, "/.well-known/did.json"))
        else:
            raise IdentityError(f"{printable(did, 100)}: atproto supports did:plc and did:web")
        document = parse_payload(DID_DOCUMENT, body, where=f"the DID document of {did}")
        if document.id != did:
            raise IdentityError(f"the DID document of {did} is another DID's")
        return document

    def pds(self, did: str, document: DidDocument | None = None) -> str:
        """The origin of ``did``'s PDS, from its current document (or ``document``)."""
        endpoint = pds_endpoint(document or self.document(did))
        if endpoint is None:
            raise IdentityError(f"the DID document of {did} names no atproto PDS")
        return origin_of(endpoint, what=f"the PDS of {did}")

    def verify(self, handle: str) -> Resolved:
        """``handle`` resolved and checked both ways, with its account's PDS."""
        did = self.handle_to_did(handle)
        document = self.document(did)
        claimed = claimed_handle(document)
        if claimed != handle:
            said = f"names the handle {claimed}" if claimed else "names no handle"
            raise IdentityError(
                f"{handle} points to {did}, but that DID's document {said}: the handle is not "
                "verified both ways"
            )
        return Resolved(did=did, handle=handle, pds=self.pds(did, document))

    # -- requests ----------------------------------------------------------------------

    def _web_get(self, host: str, path: str) -> requests.Response:
        headers: Mapping[str, str] = {}
        if self.web_origin:
            url, headers = f"{self.web_origin}{path}", {"Host": host}
        else:
            url = f"https://{host}{path}"
        return self.http.request(
            "GET", url, headers=headers, secrets=self.secrets, guard=self.guard
        )

    @staticmethod
    def _json(response: requests.Response) -> Any:
        return json_body(response)
