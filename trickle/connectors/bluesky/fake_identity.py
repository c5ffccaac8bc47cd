"""atproto identity on 127.0.0.1: a PLC directory, handles' web servers, and a DNS server.

- :class:`FakePLC` answers ``GET /{did}`` as plc.directory does: the DID
  document (``application/did+ld+json``), 404 for a DID never registered, 410
  for a deactivated (tombstoned) one. Tests move an account to another PDS or
  give it another handle by changing its document.
- :class:`FakeWeb` is the web servers of many handle domains at once: it
  answers ``/.well-known/atproto-did`` (the DID as ``text/plain``) and
  ``/.well-known/did.json`` (a did:web document) for the host in the
  ``Host`` header, as the connector's ``web_origin`` setting sends it.
- :class:`FakeDns` answers TXT queries over UDP, with dnspython's wire
  format, from a table (``_atproto.HANDLE`` -> ``did=DID``); NXDOMAIN for any
  other name.
"""

from __future__ import annotations

import socketserver
import threading
from typing import Any, Self

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from trickle.testing.fakeplatform import FakePlatform, FakeResponse, Request, route


def did_document(did: str, handle: str | None, pds: str) -> dict[str, Any]:
    """A DID document as the PLC directory serves it (specs/did): the handle in
    ``alsoKnownAs``, a Multikey signing key, the PDS service."""
    return {
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/multikey/v1",
            "https://w3id.org/security/suites/secp256k1-2019/v1",
        ],
        "id": did,
        "alsoKnownAs": [f"at://{handle}"] if handle else [],
        "verificationMethod": [
            {
                "id": f"{did}#atproto",
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF",
            }
        ],
        "service": [
            {
                "id": "#atproto_pds",
                "type": "AtprotoPersonalDataServer",
                "serviceEndpoint": pds,
            }
        ],
    }


class FakePLC(FakePlatform):
    """The PLC directory's resolution endpoint (see the module)."""

    def __init__(self) -> None:
        super().__init__()
        self.documents: dict[str, dict[str, Any]] = {}
        self.tombstoned: set[str] = set()
        self.resolved: list[str] = []
        """Every DID asked for, in order."""

    def register(self, did: str, handle: str | None, pds: str) -> None:
        """Publish ``did``'s document naming ``handle`` and ``pds``."""
        with self.lock:
            self.documents[did] = did_document(did, handle, pds)

    def move(self, did: str, pds: str) -> None:
        """The account moved to ``pds`` (a new PLC operation)."""
        with self.lock:
            self.documents[did]["service"][0]["serviceEndpoint"] = pds

    def rename(self, did: str, handle: str | None) -> None:
        """The document now claims ``handle`` (or none)."""
        with self.lock:
            self.documents[did]["alsoKnownAs"] = [f"at://{handle}"] if handle else []

    def tombstone(self, did: str) -> None:
        """The DID was deactivated: 410 from now on."""
        with self.lock:
            self.tombstoned.add(did)

    @route("GET", "/{did}")
    def get_document(self, request: Request) -> FakeResponse:
        """``GET /{did}``: the current DID document."""
        did = request.path_params["did"]
        with self.lock:
            self.resolved.append(did)
            if did in self.tombstoned:
                return FakeResponse(410, {"message": f"DID not available: {did}"})
            document = self.documents.get(did)
        if document is None:
            return FakeResponse(404, {"message": f"DID not registered: {did}"})
        return FakeResponse(
            200, document, {"Content-Type": "application/did+ld+json; charset=utf-8"}
        )


class FakeWeb(FakePlatform):
    """Many handles' web servers, told apart by the ``Host`` header (see the module)."""

    def __init__(self) -> None:
        super().__init__()
        self.atproto_dids: dict[str, str] = {}
        self.did_documents: dict[str, dict[str, Any]] = {}

    def serve_did(self, host: str, did: str) -> None:
        """``https://HOST/.well-known/atproto-did`` answers ``did``."""
        with self.lock:
            self.atproto_dids[host] = did

    def serve_document(self, host: str, document: dict[str, Any]) -> None:
        """``https://HOST/.well-known/did.json`` answers ``document`` (a did:web)."""
        with self.lock:
            self.did_documents[host] = document

    @staticmethod
    def _host(request: Request) -> str:
        return (request.header("Host") or "").rsplit(":", 1)[0].lower()

    @route("GET", "/.well-known/atproto-did")
    def atproto_did(self, request: Request) -> FakeResponse:
        with self.lock:
            did = self.atproto_dids.get(self._host(request))
        if did is None:
            return FakeResponse(404, "Not Found", {"Content-Type": "text/plain"})
        return FakeResponse(200, did, {"Content-Type": "text/plain"})

    @route("GET", "/.well-known/did.json")
    def did_json(self, request: Request) -> FakeResponse:
        with self.lock:
            document = self.did_documents.get(self._host(request))
        if document is None:
            return FakeResponse(404, {"message": "Not Found"})
        return FakeResponse(200, document)


class _DnsHandler(socketserver.BaseRequestHandler):
    server: _DnsServer

    def handle(self) -> None:
        data, sock = self.request
        try:
            query = dns.message.from_wire(data)
        except Exception:  # not a DNS message: no answer, as a real server would drop it
            return
        answer = dns.message.make_response(query)
        question = query.question[0] if query.question else None
        records = None
        if question is not None and question.rdtype == dns.rdatatype.TXT:
            name = question.name.to_text(omit_final_dot=True).lower()
            with self.server.fake.lock:
                self.server.fake.queries.append(name)
                records = self.server.fake.records.get(name)
        if records:
            quoted = [f'"{value}"' for value in records]
            answer.answer.append(
                dns.rrset.from_text(question.name, 300, "IN", "TXT", *quoted)  # type: ignore[union-attr]
            )
        else:
            answer.set_rcode(dns.rcode.NXDOMAIN)
        sock.sendto(answer.to_wire(), self.client_address)


class _DnsServer(socketserver.ThreadingUDPServer):
    daemon_threads = True
    fake: FakeDns


class FakeDns:
    """A DNS server on 127.0.0.1 that answers TXT queries from :attr:`records`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: dict[str, list[str]] = {}
        self.queries: list[str] = []
        self._server: _DnsServer | None = None

    def txt(self, name: str, *values: str) -> None:
        """``name`` has the TXT records ``values``."""
        with self.lock:
            self.records[name.lower()] = list(values)

    def start(self) -> Self:
        server = _DnsServer(("127.0.0.1", 0), _DnsHandler)
        server.fake = self
        self._server = server
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, the connector's ``dns_server`` setting."""
        if self._server is None:
            raise RuntimeError("the fake DNS server is not running")
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"
