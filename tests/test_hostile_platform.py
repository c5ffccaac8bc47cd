"""Evidence: a hostile platform costs its own account a failed poll, and nothing more.

One fake GitHub on 127.0.0.1 serves three healthy accounts and one hostile
one, whose ``GET /user/starred`` answers are replaced by one hostile
behaviour per test: bodies that never end, are huge or inflate to a
gigabyte; answers that drip, or never come; rate limits asking to wait
until the year 5138 or 9999; JSON nested 100,000 deep; like times out of
any month's range; the token echoed escaped, or in the ETag; a message that
forges a log line. Each test polls through the real worker path
(``Poller(app).poll_now()``), twice, and shows:

- time: the poll ends within the hostile account's deadline plus a margin;
- memory: the worker allocates (``tracemalloc`` peak) a small multiple of the
  response cap, however big the answer;
- containment: every healthy account is polled and its likes stored, and the
  second poll stores nothing twice;
- a clear error on the hostile account (naming what happened) that, like
  everything stored with the accounts, holds no trace of the token.

The connector's limits are small so the module runs fast: a 1 s timeout per
read, a 2 s deadline per request, a 1 MiB cap.
"""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import re
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from trickle.app import App
from trickle.config import Settings, WorkerSettings
from trickle.connectors.errors import MAX_RATE_LIMIT_WAIT
from trickle.connectors.github import GitHubConnector
from trickle.connectors.github.fake import FakeGitHub, FakeRepo
from trickle.connectors.registry import Registry
from trickle.connectors.settings import ConnectorSettings, MiB
from trickle.core.clock import clock
from trickle.core.credentials import Credentials, contains_secret
from trickle.core.db import Database
from trickle.core.models import Flattr, LinkedAccount
from trickle.core.money import Money
from trickle.core.users import add_user
from trickle.linking import link_account
from trickle.polling import Poller, PollOutcome
from trickle.testing.fakeplatform import Answer, FakeResponse, RawAnswer, Request

TIMEOUT = 1.0
DEADLINE = 2.0
CAP = 1 * MiB
TIME_MARGIN = 2.0  # the healthy accounts' polls, on a loaded machine
MEMORY_BOUND = 8 * CAP  # the worker's peak allocation during a poll round
HEALTHY = 3
STARS = 2

Rewrite = Callable[[Request, FakeResponse], Answer]


# ---------------------------------------------------------------------------
# Hostile answers to GET /user/starred


def on_stars(hostile: Callable[[FakeResponse, str], Answer]) -> Callable[[str], Rewrite]:
    """A rewrite factory: ``hostile(real_answer, token)`` replaces the star list's answers
    (GET /user, which linking needs, stays honest)."""

    def for_token(token: str) -> Rewrite:
        def rewrite(request: Request, response: FakeResponse) -> Answer:
            if request.path != "/user/starred":
                return response
            return hostile(response, token)

        return rewrite

    return for_token


def _bomb_members() -> Iterator[bytes]:
    member = gzip.compress(b"\0" * MiB, 9)  # 1 KB on the wire, 1 MiB inflated
    return itertools.repeat(member, 1024)  # 1 GiB inflated


def _starred_at(value: str) -> Callable[[FakeResponse, str], Answer]:
    def hostile(response: FakeResponse, token: str) -> Answer:
        stars = [dict(star) for star in response.body]
        stars[0]["starred_at"] = value
        return FakeResponse(200, stars, dict(response.headers))

    return hostile


def _echo_escaped(response: FakeResponse, token: str) -> Answer:
    echoes = [
        f"GET /user/starred?access_token={quote(token, safe='')}",
        json.dumps({"authorization": f"Bearer {token}"}).replace("/", "\\/"),
        repr(f"Bearer {token}".encode()),
    ]
    return FakeResponse(400, {"message": "invalid request: " + "; ".join(echoes)})


def _etag_with_token(response: FakeResponse, token: str) -> Answer:
    return FakeResponse(
        response.status, response.body, {**response.headers, "ETag": f'W/"{token}"'}
    )


@dataclass(frozen=True)
class Behaviour:
    """One hostile behaviour, the outcome it must come to and the error that must say so."""

    rewrite: Callable[[str], Rewrite]
    status: str
    error: str  # a regular expression the hostile account's error must match
    stored: int = 0  # likes the hostile account gets stored on the first poll


BEHAVIOURS = {
    "endless chunked body": Behaviour(
        on_stars(lambda r, t: FakeResponse(200, itertools.repeat(b"[" * 65536))),
        "failed",
        r"GET http://127\.0\.0\.1:\d+/user/starred: 200: the answer is larger than the 1 MiB "
        r"limit \(max_response_bytes\)",
    ),
    "200 MB body": Behaviour(
        on_stars(
            lambda r, t: FakeResponse(
                200, itertools.repeat(b" " * MiB, 200), {"Content-Length": str(200 * MiB)}
            )
        ),
        "failed",
        r"200: the answer is larger than the 1 MiB limit",
    ),
    "gzip bomb": Behaviour(
        on_stars(
            lambda r, t: FakeResponse(
                200,
                _bomb_members(),
                {"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )
        ),
        "failed",
        r"200: the answer is larger than the 1 MiB limit",
    ),
    "a byte every half second": Behaviour(
        on_stars(
            lambda r, t: FakeResponse(
                200, itertools.repeat(b"["), {"Content-Length": "100000"}, pace=0.5
            )
        ),
        "failed",
        r"/user/starred: no complete answer within the 2 s deadline \(1 attempt\)",
    ),
    "headers a byte every half second": Behaviour(
        on_stars(
            lambda r, t: RawAnswer(
                (bytes([b]) for b in b"HTTP/1.1 200 OK\r\nX-Never-Ending: " + b"z" * 1000),
                pace=0.5,
            )
        ),
        "failed",
        r"no complete answer within the 2 s deadline",
    ),
    "accepts and never answers": Behaviour(
        on_stars(lambda r, t: RawAnswer(hold=True)),
        "failed",
        r"no complete answer within the 2 s deadline \(2 attempts\)",
    ),
    "Retry-After 99999999999": Behaviour(
        on_stars(
            lambda r, t: FakeResponse(429, {"message": "slow down"}, {"Retry-After": "99999999999"})
        ),
        "rate_limited",
        r"429 slow down: rate limited until 2026-10-16T12:00:00Z",
    ),
    "a rate limit reset in the year 9999": Behaviour(
        on_stars(
            lambda r, t: FakeResponse(
                403,
                {"message": "API rate limit exceeded"},
                {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "9999-12-31T23:59:59-01:00"},
            )
        ),
        "rate_limited",
        r"403 API rate limit exceeded: rate limited until 2026-10-16T12:00:00Z",
    ),
    "JSON nested 100,000 deep": Behaviour(
        on_stars(lambda r, t: FakeResponse(200, "[" * 100_000 + "]" * 100_000)),
        "failed",
        r"/user/starred: the JSON is nested too deeply \(200000 bytes\)",
    ),
    "a like in year 9999 at -01:00": Behaviour(
        on_stars(_starred_at("9999-12-31T23:59:59-01:00")),
        "failed",
        r"GET /user/starred: malformed payload: 0\.starred_at: Value error, "
        r"9999-12-31T23:59:59-01:00 is outside the calendar in UTC",
    ),
    "a like in year 1 at +01:00": Behaviour(
        on_stars(_starred_at("0001-01-01T00:00:00+01:00")),
        "failed",
        r"0\.starred_at: Value error, 0001-01-01T00:00:00\+01:00 is outside the calendar",
    ),
    "a like in 1969": Behaviour(
        on_stars(_starred_at("1969-07-20T20:17:40Z")),
        "failed",
        r"0\.starred_at: Value error, 1969-07-20T20:17:40Z is before 2000-01-01",
    ),
    "the token echoed escaped": Behaviour(
        on_stars(_echo_escaped),
        "failed",
        r"400 invalid request: GET /user/starred\?access_token=\*\*\*; "
        r'\{"authorization": "Bearer \*\*\*"\}; b\'Bearer \*\*\*\'',
    ),
    "the token in the ETag": Behaviour(on_stars(_etag_with_token), "baseline", r"^$", stored=STARS),
    "a message forging a log line": Behaviour(
        on_stars(
            lambda r, t: FakeResponse(
                404,
                {"message": "Not Found\n2026-10-15 12:00:00 INFO polled fine\x1b]0;pwned\x07"},
            )
        ),
        "failed",
        r"404 Not Found\\n2026-10-15 12:00:00 INFO polled fine\\x1b\]0;pwned\\x07$",
    ),
}


# ---------------------------------------------------------------------------
# The scene


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as platform:
        yield platform


@pytest.fixture
def app(sqlite_db: Database, tmp_path: Path, fake: FakeGitHub, now: datetime) -> Iterator[App]:
    settings = Settings(
        database_url=sqlite_db.url,
        secret_key=SecretStr(Fernet.generate_key().decode()),
        secret_key_file=tmp_path / "trickle.key",
        worker=WorkerSettings(threads=4, jitter=0.0),
        connectors={
            "github": ConnectorSettings(
                base_url=fake.base_url,
                timeout_seconds=TIMEOUT,
                deadline_seconds=DEADLINE,
                max_response_bytes=CAP,
            )
        },
    )
    application = App(settings, registry=Registry.of([GitHubConnector]))
    yield application
    application.close()


@dataclass
class Account:
    login: str
    token: str
    account_id: int


def add_account(app: App, fake: FakeGitHub, role: str) -> Account:
    """A linked GitHub account with STARS stars made after the link."""
    tag = uuid.uuid4().hex
    login = f"{role}-{tag[:8]}"
    token = f"ghp/{tag[:16]}+{tag[16:]}="  # '/', '+', '=': escaping changes it
    with app.db.session() as session:
        add_user(session, login, Money(500, "EUR"))
    fake.add_user(login, token)
    account_id = link_account(app, "github", login, Credentials(access_token=token)).account_id
    base = int(tag[:6], 16)
    for n in range(STARS):
        repo = FakeRepo(base + n, f"project-{n}", f"maker-{tag[:6]}", base)
        fake.star(login, repo, at=clock.now() + timedelta(minutes=1 + n))
    return Account(login, token, account_id)


@dataclass
class Round:
    outcomes: dict[int, PollOutcome]
    seconds: float
    peak: int


def poll_round(app: App) -> Round:
    """One ``poll_now()`` of every account: outcomes by account, wall time, allocation peak."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        started = time.monotonic()
        outcomes = Poller(app).poll_now()
        seconds = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return Round({o.account_id: o for o in outcomes}, seconds, peak)


def stored_per_account(app: App) -> dict[int, int]:
    with app.db.reader() as session:
        ids = session.scalars(select(Flattr.account_id)).all()
    return {i: ids.count(i) for i in set(ids)}


def stored_text(app: App) -> str:
    """Everything stored with the accounts that came from a platform: states and errors."""
    with app.db.reader() as session:
        rows = session.execute(select(LinkedAccount.poll_state, LinkedAccount.last_error)).all()
    return json.dumps([[state, error] for state, error in rows])


# ---------------------------------------------------------------------------
# The evidence


@pytest.mark.parametrize("name", list(BEHAVIOURS))
def test_a_hostile_platform_costs_only_its_own_account_a_poll(
    app: App, fake: FakeGitHub, now: datetime, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    behaviour = BEHAVIOURS[name]
    healthy = [add_account(app, fake, "healthy") for _ in range(HEALTHY)]
    hostile = add_account(app, fake, "hostile")
    fake.tamper(hostile.login, behaviour.rewrite(hostile.token))
    tokens = [account.token for account in (*healthy, hostile)]

    with caplog.at_level(logging.INFO):
        first = poll_round(app)

    # Bounded time and memory, whatever the answer was.
    assert first.seconds < DEADLINE + TIME_MARGIN, f"{name}: {first.seconds:.2f} s"
    assert first.peak < MEMORY_BOUND, f"{name}: {first.peak / MiB:.1f} MiB allocated"
    # The healthy accounts: polled, their likes stored.
    for account in healthy:
        outcome = first.outcomes[account.account_id]
        assert (outcome.status, outcome.stored, outcome.error) == ("baseline", STARS, None)
    # The hostile one: a clear error, naming what happened, without the token.
    outcome = first.outcomes[hostile.account_id]
    assert outcome.status == behaviour.status, outcome.error
    assert outcome.stored == behaviour.stored
    assert re.search(behaviour.error, outcome.error or ""), outcome.error
    if behaviour.status == "rate_limited":
        assert outcome.next_poll_at is not None
        assert now + MAX_RATE_LIMIT_WAIT <= outcome.next_poll_at
        assert outcome.next_poll_at <= now + MAX_RATE_LIMIT_WAIT + timedelta(seconds=2)
    # Nothing the platform said reached a log line as more than one line, or a terminal.
    for record in caplog.records:
        assert "\n" not in record.getMessage()
        assert "\x1b" not in record.getMessage()

    second = poll_round(app)
    assert second.seconds < DEADLINE + TIME_MARGIN, f"{name}: {second.seconds:.2f} s"
    for account in healthy:
        outcome = second.outcomes[account.account_id]
        assert (outcome.status, outcome.stored) == ("not_modified", 0)
    again = second.outcomes[hostile.account_id]
    assert again.stored == 0
    assert again.status == ("ok" if behaviour.status == "baseline" else behaviour.status)
    expected = {account.account_id: STARS for account in healthy}
    if behaviour.stored:
        expected[hostile.account_id] = behaviour.stored
    assert stored_per_account(app) == expected  # nothing stored twice, nothing lost

    # No trace of any token: not in errors, not in the stored states.
    errors = [o.error or "" for o in (*first.outcomes.values(), *second.outcomes.values())]
    for text in (*errors, stored_text(app), caplog.text):
        assert not contains_secret(text, tokens)


def test_an_etag_holding_the_token_is_never_stored_and_costs_one_full_request(
    app: App, fake: FakeGitHub
) -> None:
    hostile = add_account(app, fake, "hostile")
    honest = add_account(app, fake, "honest")
    fake.tamper(hostile.login, BEHAVIOURS["the token in the ETag"].rewrite(hostile.token))
    poll_round(app)
    with app.db.reader() as session:
        states = dict(session.execute(select(LinkedAccount.id, LinkedAccount.poll_state)).all())
    assert states[hostile.account_id]["etag"] is None
    assert states[honest.account_id]["etag"].startswith('W/"')
    assert hostile.token not in json.dumps(states)
    before = fake.users[hostile.login].used
    second = poll_round(app)
    # No If-None-Match was sent: GitHub counted a full request (a 304 costs none).
    assert fake.users[hostile.login].used == before + 1
    assert second.outcomes[hostile.account_id].status == "ok"
    assert second.outcomes[honest.account_id].status == "not_modified"


def test_the_clamp_keeps_room_for_the_pollers_jitter(app: App, fake: FakeGitHub) -> None:
    hostile = add_account(app, fake, "hostile")
    fake.tamper(hostile.login, BEHAVIOURS["a rate limit reset in the year 9999"].rewrite(""))
    outcome = poll_round(app).outcomes[hostile.account_id]
    assert outcome.status == "rate_limited"
    assert outcome.next_poll_at is not None
    assert outcome.next_poll_at < datetime(2027, 1, 1, tzinfo=UTC)
