"""A Bluesky PDS on 127.0.0.1, and :class:`FakeBluesky`: PDSes with the identity services.

:class:`FakePDS` answers the XRPC endpoints the connector uses, with the
shapes of the lexicons and the PDS's behaviour (``packages/pds`` of
bluesky-social/atproto):

- ``GET /xrpc/com.atproto.repo.listRecords``: public; records by record key
  descending (ascending with ``reverse=true``), ``limit`` 1-100 (default 50),
  ``cursor`` the last record key of the page, given on every page that has
  records; ``400 InvalidRequest "Could not find repo: X"`` for a repository
  that is not (or no longer, or not actively) hosted here.
- ``POST /xrpc/com.atproto.server.createSession`` (identifier: handle or DID,
  and a password), ``GET /xrpc/com.atproto.server.getSession`` (the access
  JWT), ``POST /xrpc/com.atproto.server.deleteSession`` (the refresh JWT);
  ``401 AuthenticationRequired`` for a wrong password or token.
- Every answer carries ``RateLimit-Limit/-Remaining/-Reset/-Policy`` (3000
  per 5 minutes, the PDS's own); a rate-limited account gets ``429
  RateLimitExceeded`` with the reset.

Like record keys are TIDs made from the like's ``createdAt``, so the PDS's
order is like time. :class:`FakeBluesky` starts a PDS (more on demand), a PLC
directory, handles' web servers and a DNS server (:mod:`.fake_identity`), and
makes accounts whose handles resolve through DNS or HTTPS, both ways.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Self

from trickle.connectors.bluesky.fake_identity import FakeDns, FakePLC, FakeWeb
from trickle.core.clock import clock
from trickle.testing.fakeplatform import Answer, FakePlatform, FakeResponse, Request, route

RATE_LIMIT = 3000
RATE_WINDOW_SECONDS = 300
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
LIKE = "app.bsky.feed.like"


def tid(at: datetime, clock_id: int = 0) -> str:
    """A TID (specs/record-key): microseconds since the epoch and a clock id, 13 characters
    of base32-sortable."""
    micros = int(at.timestamp() * 1_000_000)
    value = (micros << 10) | (clock_id & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def plc_did(seed: str) -> str:
    """A did:plc for ``seed``: 24 characters of base32, as PLC DIDs are."""
    digest = hashlib.sha256(seed.encode()).digest()
    return "did:plc:" + "".join("abcdefghijklmnopqrstuvwxyz234567"[b % 32] for b in digest[:24])


def xrpc_error(status: int, error: str, message: str) -> FakeResponse:
    """An XRPC error answer (specs/xrpc): ``{"error", "message"}``."""
    return FakeResponse(status, {"error": error, "message": message})


@dataclass
class FakeRepo:
    """One account's repository on a PDS: its like records by record key."""

    did: str
    handle: str
    app_passwords: set[str]
    likes: dict[str, dict[str, Any]] = field(default_factory=dict)  # rkey -> record value
    active: bool = True
    rate_limited_until: datetime | None = None
    used: int = 0
    rewrite: Callable[[Request, FakeResponse], Answer] | None = None


class FakePDS(FakePlatform):
    """A PDS (see the module)."""

    def __init__(self, *, latency: float = 0.0) -> None:
        super().__init__(latency=latency)
        self.repos: dict[str, FakeRepo] = {}  # by DID
        self._access: dict[str, str] = {}  # access JWT -> DID
        self._refresh: dict[str, str] = {}  # refresh JWT -> DID
        self.sessions_created = 0
        self.sessions_deleted = 0
        self.passwords_seen: list[str] = []

    # -- the scene -----------------------------------------------------------------

    def host(self, did: str, handle: str, app_password: str | None = None) -> FakeRepo:
        """Host ``did``'s repository (handle ``handle``; ``app_password`` signs in)."""
        repo = FakeRepo(did, handle.lower(), {app_password} if app_password else set())
        with self.lock:
            self.repos[did] = repo
        return repo

    def like(
        self, did: str, subject_uri: str, at: datetime, *, created_at: str | None = None
    ) -> str:
        """``did`` likes the record ``subject_uri`` at ``at`` (``created_at``: the record's
        text as a client wrote it); returns the like record's key."""
        with self.lock:
            repo = self.repos[did]
            clock_id = 0
            while (rkey := tid(at, clock_id)) in repo.likes:
                clock_id += 1
            repo.likes[rkey] = {
                "$type": LIKE,
                "subject": {"uri": subject_uri, "cid": _cid(subject_uri)},
                "createdAt": created_at
                or at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            }
        return rkey

    def put_record(self, did: str, rkey: str, value: dict[str, Any]) -> None:
        """Write any record value into ``did``'s like collection (a client's own doing)."""
        with self.lock:
            self.repos[did].likes[rkey] = value

    def deactivate(self, did: str) -> None:
        """The account is deactivated here (or moved away): not listed, sessions refused."""
        with self.lock:
            self.repos[did].active = False

    def rate_limit(self, did: str, until: datetime) -> None:
        """``did``'s requests are answered 429 until ``until``."""
        with self.lock:
            self.repos[did].rate_limited_until = until

    def tamper(self, did: str, rewrite: Callable[[Request, FakeResponse], Answer] | None) -> None:
        """Rewrite ``did``'s answers (None: stop)."""
        with self.lock:
            self.repos[did].rewrite = rewrite

    def account_key(self, request: Request) -> str | None:
        return request.query.get("repo") or request.header("Authorization")

    # -- XRPC ------------------------------------------------------------------------

    def _find(self, actor: str) -> FakeRepo | None:
        with self.lock:
            found = self.repos.get(actor) or next(
                (r for r in self.repos.values() if r.handle == actor.lower()), None
            )
        return found if found is not None and found.active else None

    def _limits(self, repo: FakeRepo | None) -> dict[str, str]:
        now = int(clock.now().timestamp())
        reset = now // RATE_WINDOW_SECONDS * RATE_WINDOW_SECONDS + RATE_WINDOW_SECONDS
        used = repo.used if repo is not None else 0
        return {
            "RateLimit-Limit": str(RATE_LIMIT),
            "RateLimit-Remaining": str(max(0, RATE_LIMIT - used)),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{RATE_LIMIT};w={RATE_WINDOW_SECONDS}",
        }

    def _limited(self, repo: FakeRepo) -> FakeResponse | None:
        until = repo.rate_limited_until
        if until is None or until <= clock.now():
            return None
        headers = {
            "RateLimit-Limit": str(RATE_LIMIT),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(math.ceil(until.timestamp())),
            "RateLimit-Policy": f"{RATE_LIMIT};w={RATE_WINDOW_SECONDS}",
        }
        answer = xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded")
        answer.headers.update(headers)
        return answer

    def _answer(self, repo: FakeRepo, request: Request, response: FakeResponse) -> Answer:
        rewrite = repo.rewrite
        return rewrite(request, response) if rewrite is not None else response

    @route("GET", "/xrpc/com.atproto.repo.listRecords")
    def list_records(self, request: Request) -> Answer:
        """A repository's records of one collection, a page at a time (see the module)."""
        actor = request.query.get("repo")
        collection = request.query.get("collection")
        if not actor or not collection:
            return xrpc_error(
                400, "InvalidRequest", "Params must have the properties repo, collection"
            )
        try:
            limit = int(request.query.get("limit", "50"))
        except ValueError:
            return xrpc_error(400, "InvalidRequest", "limit must be an integer")
        if not 1 <= limit <= 100:
            return xrpc_error(400, "InvalidRequest", "limit can not be greater than 100")
        repo = self._find(actor)
        if repo is None:
            return xrpc_error(400, "InvalidRequest", f"Could not find repo: {actor}")
        limited = self._limited(repo)
        if limited is not None:
            return self._answer(repo, request, limited)
        reverse = request.query.get("reverse") == "true"
        cursor = request.query.get("cursor")
        with self.lock:
            repo.used += 1
            keys = sorted(repo.likes if collection == LIKE else {}, reverse=not reverse)
            if cursor is not None:
                keys = [k for k in keys if (k > cursor if reverse else k < cursor)]
            page = keys[:limit]
            records = [
                {
                    "uri": f"at://{repo.did}/{collection}/{key}",
                    "cid": _cid(f"{repo.did}/{key}"),
                    "value": repo.likes[key],
                }
                for key in page
            ]
        body: dict[str, Any] = {"records": records}
        if page:
            body["cursor"] = page[-1]
        return self._answer(repo, request, FakeResponse(200, body, self._limits(repo)))

    @route("POST", "/xrpc/com.atproto.server.createSession")
    def create_session(self, request: Request) -> Answer:
        """Sign in with an identifier (handle or DID) and a password."""
        try:
            body = json.loads(request.body)
            identifier, password = str(body["identifier"]), str(body["password"])
        except (ValueError, KeyError, TypeError):
            return xrpc_error(
                400, "InvalidRequest", "Input must have the properties identifier, password"
            )
        with self.lock:
            self.passwords_seen.append(password)
        repo = self._find(identifier)
        if repo is None or password not in repo.app_passwords:
            return xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password")
        access, refresh = _jwt("at+jwt", repo.did), _jwt("refresh+jwt", repo.did)
        with self.lock:
            self._access[access] = repo.did
            self._refresh[refresh] = repo.did
            self.sessions_created += 1
        answer = {
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": repo.handle,
            "did": repo.did,
            "active": True,
        }
        return self._answer(repo, request, FakeResponse(200, answer, self._limits(repo)))

    def _bearer(self, request: Request, tokens: dict[str, str]) -> FakeRepo | FakeResponse:
        token = (request.header("Authorization") or "").removeprefix("Bearer ").strip()
        with self.lock:
            did = tokens.get(token)
        repo = self._find(did) if did else None
        if repo is None:
            return xrpc_error(401, "AuthenticationRequired", "Invalid token")
        return repo

    @route("GET", "/xrpc/com.atproto.server.getSession")
    def get_session(self, request: Request) -> Answer:
        """Whose session the access JWT is."""
        repo = self._bearer(request, self._access)
        if isinstance(repo, FakeResponse):
            return repo
        limited = self._limited(repo)
        if limited is not None:
            return self._answer(repo, request, limited)
        answer = {"handle": repo.handle, "did": repo.did, "active": True}
        return self._answer(repo, request, FakeResponse(200, answer, self._limits(repo)))

    @route("POST", "/xrpc/com.atproto.server.deleteSession")
    def delete_session(self, request: Request) -> Answer:
        """End the session of the refresh JWT (its access JWT stops working too)."""
        repo = self._bearer(request, self._refresh)
        if isinstance(repo, FakeResponse):
            return repo
        token = (request.header("Authorization") or "").removeprefix("Bearer ").strip()
        with self.lock:
            del self._refresh[token]
            for access in [a for a, d in self._access.items() if d == repo.did]:
                del self._access[access]
            self.sessions_deleted += 1
        return FakeResponse(200, b"")

    def issue_session(self, did: str) -> str:
        """An access JWT for ``did``, as a sign-in would give (for tests of identify)."""
        token = _jwt("at+jwt", did)
        with self.lock:
            self._access[token] = did
        return token

    def revoke_sessions(self, did: str) -> None:
        """Every session token of ``did`` is refused from now on."""
        with self.lock:
            for tokens in (self._access, self._refresh):
                for token in [t for t, d in tokens.items() if d == did]:
                    del tokens[token]


def _cid(seed: str) -> str:
    return "bafyrei" + hashlib.sha256(seed.encode()).hexdigest()[:52]


def _jwt(kind: str, did: str) -> str:
    """An opaque token shaped like a JWT (clients treat them as opaque: specs/xrpc)."""
    head = f"eyJ0eXAiOiJ{kind.replace('+', '')}"
    return f"{head}.{secrets.token_urlsafe(24)}.{secrets.token_urlsafe(32)}"


Resolution = Literal["dns", "web"]


class FakeBluesky:
    """A PDS, the PLC directory, handles' web servers and DNS, on 127.0.0.1, started and
    stopped together; :meth:`add_account` makes an account that resolves both ways."""

    def __init__(self) -> None:
        self.pds = FakePDS()
        self.plc = FakePLC()
        self.web = FakeWeb()
        self.dns = FakeDns()
        self.more_pdses: list[FakePDS] = []

    @property
    def base_url(self) -> str:
        """Where the accounts' repositories answer: the first PDS."""
        return self.pds.base_url

    def start(self) -> Self:
        for platform in (self.pds, self.plc, self.web):
            platform.start()
        self.dns.start()
        return self

    def stop(self) -> None:
        for platform in (self.pds, *self.more_pdses, self.plc, self.web):
            platform.stop()
        self.dns.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def settings(self) -> dict[str, Any]:
        """The connector settings that point every lookup at these fakes."""
        return {
            "base_url": self.pds.base_url,
            "plc_url": self.plc.base_url,
            "web_origin": self.web.base_url,
            "dns_server": self.dns.address,
            "allow_private_hosts": True,  # the fakes listen on 127.0.0.1
        }

    def another_pds(self) -> FakePDS:
        """One more PDS (to move accounts to), started."""
        pds = FakePDS().start()
        self.more_pdses.append(pds)
        return pds

    def add_account(
        self,
        handle: str,
        app_password: str | None = None,
        *,
        resolution: Resolution = "dns",
        pds: FakePDS | None = None,
    ) -> FakeRepo:
        """An account ``handle`` on ``pds`` (the first PDS by default) with a did:plc, its
        handle resolving through DNS or the well-known page, named back by its document."""
        home = pds or self.pds
        did = plc_did(handle)
        repo = home.host(did, handle, app_password)
        self.plc.register(did, handle, home.base_url)
        if resolution == "dns":
            self.dns.txt(f"_atproto.{handle}", f"did={did}")
        else:
            self.web.serve_did(handle, did)
        return repo

    def move(self, did: str, to: FakePDS) -> None:
        """Move ``did``'s repository to ``to``: hosted there, deactivated where it was, and
        its DID document updated."""
        for pds in (self.pds, *self.more_pdses):
            if did in pds.repos and pds is not to:
                old = pds.repos[did]
                moved = to.host(did, old.handle, next(iter(old.app_passwords), None))
                moved.likes = dict(old.likes)
                pds.deactivate(did)
        self.plc.move(did, to.base_url)
