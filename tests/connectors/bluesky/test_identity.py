"""atproto identity resolution (specs/handle, specs/did), with ``responses`` and a TXT table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import responses

from trickle.connectors.bluesky.identity import (
    IdentityError,
    IdentityResolver,
    normalize_handle,
    origin_of,
)
from trickle.connectors.http import HttpClient

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
PLC = "https://plc.directory"
PDS = "https://morel.us-east.host.bsky.network"


def document(**changes: Any) -> dict[str, Any]:
    return {**json.loads((FIXTURES / "did_document_plc.json").read_text()), **changes}


def resolver(txt: dict[str, list[str]] | None = None) -> IdentityResolver:
    table = txt or {}
    return IdentityResolver(HttpClient(retries=0), lambda name: table.get(name, []), plc_url=PLC)


@pytest.fixture
def mock() -> Any:
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.mark.parametrize(
    ("typed", "handle"),
    [("@Ada.Example.COM", "ada.example.com"), (" ada.example.com ", "ada.example.com")],
)
def test_a_typed_handle_is_normalized(typed: str, handle: str) -> None:
    assert normalize_handle(typed) == handle


@pytest.mark.parametrize("typed", ["ada", "ada..example.com", "127.0.0.1", "ada.local", "a@b.com"])
def test_what_is_no_handle_is_refused(typed: str) -> None:
    with pytest.raises(IdentityError):
        normalize_handle(typed)


def test_dns_is_asked_first_and_verifies_both_ways(mock: Any) -> None:
    mock.get(f"{PLC}/{DID}", json=document())

    resolved = resolver({"_atproto.ada.example.com": [f"did={DID}"]}).verify("ada.example.com")

    assert (resolved.did, resolved.handle, resolved.pds) == (DID, "ada.example.com", PDS)
    assert len(mock.calls) == 1, "no well-known request when DNS answered"


def test_the_well_known_page_is_asked_when_dns_has_nothing(mock: Any) -> None:
    mock.get("https://ada.example.com/.well-known/atproto-did", body=f"{DID}\n")

    assert resolver().handle_to_did("ada.example.com") == DID


def test_txt_records_naming_different_dids_fail() -> None:
    txt = {"_atproto.ada.example.com": [f"did={DID}", "did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"]}

    with pytest.raises(IdentityError, match="different DIDs"):
        resolver(txt).handle_to_did("ada.example.com")


def test_a_document_that_names_another_handle_fails_the_check(mock: Any) -> None:
    mock.get(f"{PLC}/{DID}", json=document(alsoKnownAs=["at://mallory.example.com"]))

    with pytest.raises(IdentityError, match="not verified both ways"):
        resolver({"_atproto.ada.example.com": [f"did={DID}"]}).verify("ada.example.com")


def test_a_document_of_another_did_is_refused(mock: Any) -> None:
    mock.get(f"{PLC}/{DID}", json=document(id="did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"))

    with pytest.raises(IdentityError, match="another DID's"):
        resolver().document(DID)


def test_an_unregistered_did_is_a_platform_error(mock: Any) -> None:
    mock.get(f"{PLC}/{DID}", status=404, json={"message": f"DID not registered: {DID}"})

    with pytest.raises(Exception, match="DID not registered"):
        resolver().document(DID)


def test_a_did_web_document_comes_from_its_host(mock: Any) -> None:
    did = "did:web:ada.example.com"
    mock.get(
        "https://ada.example.com/.well-known/did.json",
        json=document(id=did, alsoKnownAs=["at://ada.example.com"]),
    )

    assert resolver().pds(did) == PDS


def test_a_did_web_with_a_path_or_a_port_is_not_atprotos() -> None:
    with pytest.raises(IdentityError, match="hostname-level"):
        resolver().document("did:web:example.com:users:ada")


@pytest.mark.parametrize(
    "endpoint",
    ["https://pds.example.com/xrpc", "https://user:pw@pds.example.com", "ftp://pds.example.com"],
)
def test_a_pds_endpoint_must_be_an_origin(endpoint: str) -> None:
    with pytest.raises(IdentityError, match="not a server's origin"):
        origin_of(endpoint, what="the PDS")


def test_a_document_without_an_atproto_pds_fails(mock: Any) -> None:
    mock.get(f"{PLC}/{DID}", json=document(service=[]))

    with pytest.raises(IdentityError, match="names no atproto PDS"):
        resolver().pds(DID)
