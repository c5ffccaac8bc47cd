"""Bluesky's payloads, as far as trickle reads them, from the atproto lexicons and specs.

- ``com.atproto.repo.listRecords``: ``{"cursor"?, "records": [{"uri", "cid", "value"}]}``;
  ``value`` is the record as its author's client wrote it (``unknown`` in the lexicon).
- ``app.bsky.feed.like``: ``{"subject": com.atproto.repo.strongRef {"uri", "cid"},
  "createdAt": datetime}``; the subject's URI is ``at://DID/COLLECTION/RKEY``.
- ``com.atproto.server.createSession``: ``{"accessJwt", "refreshJwt", "handle", "did", ...}``;
  ``com.atproto.server.getSession``: ``{"handle", "did", "active"?, "status"?, ...}``.
- DID documents (specs/did): ``id``, ``alsoKnownAs`` (``at://HANDLE``), ``service``
  (``#atproto_pds`` of type ``AtprotoPersonalDataServer``, an https origin).

The listRecords envelope is the PDS's own and is checked strictly (a broken one is a
:class:`~trickle.connectors.errors.PlatformError` naming the field). A record's ``value`` is
whatever the liker's client wrote, so one that is not a like trickle can pay (no subject, a
subject that is not a DID's record) is skipped rather than failing every later poll of the
account; a ``createdAt`` without a zone (older clients wrote some) is read as UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints, TypeAdapter

from trickle.connectors.payloads import PlatformTime

MAX_DID_LENGTH = 150
"""The longest DID trickle keys a creator or an account by (the spec allows 2048 but calls
anything over 64 "not a good practice"; a creator id column holds 200 characters)."""
MAX_HANDLE_LENGTH = 253

DID = re.compile(r"did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]")
"""The spec's starting-point DID syntax (specs/did)."""
HANDLE = re.compile(
    r"([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
)
"""The spec's reference handle syntax (specs/handle)."""
AT_URI = re.compile(r"at://(?P<did>did:[^/]+)/(?P<collection>[a-zA-Z0-9.-]+)/(?P<rkey>[^/?#]+)")
"""A record's at-uri with a DID authority (specs/at-uri-scheme, restricted form)."""

NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=10_000, strict=True)]


def is_did(text: str) -> bool:
    """True when ``text`` is a DID in atproto's syntax, and not longer than trickle keeps."""
    return len(text) <= MAX_DID_LENGTH and DID.fullmatch(text) is not None


def is_handle(text: str) -> bool:
    """True when ``text`` is a handle in atproto's syntax (any case)."""
    return len(text) <= MAX_HANDLE_LENGTH and HANDLE.fullmatch(text) is not None


def _did(value: Any) -> Any:
    if isinstance(value, str) and not is_did(value):
        raise ValueError("not a DID")
    return value


Did = Annotated[NonEmpty, BeforeValidator(_did)]


def _handle(value: Any) -> Any:
    if isinstance(value, str):
        if not is_handle(value) and value != "handle.invalid":
            raise ValueError("not a handle")
        return value.lower()
    return value


Handle = Annotated[NonEmpty, BeforeValidator(_handle)]


def _utc_if_naive(value: Any) -> Any:
    """A datetime string without a zone, as some clients wrote ``createdAt``, read as UTC."""
    if isinstance(value, str) and len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value  # the datetime validator says what is wrong with it
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return value


LikeTime = Annotated[PlatformTime, BeforeValidator(_utc_if_naive)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Record(_Payload):
    """One record of a repository, as listRecords lists it."""

    uri: NonEmpty
    cid: NonEmpty
    value: dict[str, Any]


class RecordPage(_Payload):
    """One page of ``com.atproto.repo.listRecords``."""

    records: list[Record]
    cursor: NonEmpty | None = None


class StrongRef(_Payload):
    """``com.atproto.repo.strongRef``: what a like is of."""

    uri: NonEmpty
    cid: NonEmpty


class Like(_Payload):
    """An ``app.bsky.feed.like`` record's value."""

    subject: StrongRef
    createdAt: LikeTime


class Subject(_Payload):
    """A liked record's at-uri, split: its author's DID, collection and record key."""

    uri: str
    did: str
    collection: str
    rkey: str


def subject_of(uri: str) -> Subject | None:
    """The liked record's parts, or None when ``uri`` is not a record of a DID's repository
    (nothing trickle could pay), or too long to keep."""
    if len(uri) > 200:
        return None
    found = AT_URI.fullmatch(uri)
    if found is None or not is_did(found["did"]):
        return None
    return Subject(uri=uri, did=found["did"], collection=found["collection"], rkey=found["rkey"])


class Session(_Payload):
    """``com.atproto.server.createSession``'s answer (the JWTs are used once, never kept)."""

    accessJwt: NonEmpty
    refreshJwt: NonEmpty
    handle: Handle
    did: Did


class SessionInfo(_Payload):
    """``com.atproto.server.getSession``'s answer: whose session it is."""

    did: Did
    handle: Handle
    active: bool | None = None
    status: str | None = None


class Service(_Payload):
    """One ``service`` entry of a DID document."""

    id: str
    type: str | list[str]
    serviceEndpoint: str | dict[str, Any] | list[Any]


class DidDocument(_Payload):
    """A DID document, as far as atproto reads it (specs/did)."""

    id: Did
    alsoKnownAs: list[str] = []
    service: list[Service] = []


RECORD_PAGE = TypeAdapter(RecordPage)
LIKE = TypeAdapter(Like)
SESSION = TypeAdapter(Session)
SESSION_INFO = TypeAdapter(SessionInfo)
DID_DOCUMENT = TypeAdapter(DidDocument)
