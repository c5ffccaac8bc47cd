"""How wide is the window in which a killed worker loses a single-use refresh token?

The platform rotates the refresh token when it carries out the refresh; trickle holds the
new one durably only once the saver's transaction has committed. A worker that dies in
between has lost the account's grant. This measures, for every refresh of ROUNDS rounds in
which all ACCOUNTS accounts' one-hour tokens expire at once (polled by THREADS poll threads
of ``Poller.poll_now``), on the made-up OAuth 2 platform on 127.0.0.1:

- **request to rotation**: the platform read the refresh request until it rotated (its
  ``--latency``); a kill here loses the token too, the request being on its way;
- **answer to save**: from the rotation until the saver is called (the answer written,
  read, parsed by Authlib, turned into credentials);
- **save**: the saver's own transaction (seal, wait for the write lock, UPDATE, COMMIT);
- **window**: rotation to commit, the part that is trickle's.

    python bench/refresh_window.py                      # SQLite, 1 and 4 threads
    python bench/refresh_window.py --db postgresql --pg-url postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from trickle.app import App
from trickle.config import Settings, WorkerSettings
from trickle.connectors.registry import Registry
from trickle.connectors.session import SaveCredentials
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.models import LinkedAccount
from trickle.core.money import Money
from trickle.core.schema import upgrade
from trickle.core.users import add_user
from trickle.linking import link_account
from trickle.polling import Poller
from trickle.testing.fake_oauth import TOKEN_PATH, FakeOAuth
from trickle.testing.oauth_connector import FakeOAuthConnector, FakeOAuthSettings

SECRET = "bench-secret"


def measure(
    url: str, threads: int, accounts: int, rounds: int, latency: float
) -> dict[str, list[float]]:
    """Milliseconds of each phase, one value per refresh."""
    clock.set(datetime(2026, 10, 5, tzinfo=UTC), frozen=True)
    with FakeOAuth(latency=latency) as fake, tempfile.TemporaryDirectory() as tmp:
        fake.register_client("bench", SECRET)
        table = FakeOAuthSettings(
            base_url=fake.base_url,
            token_url=fake.base_url + TOKEN_PATH,
            client_id="bench",
            client_secret=SecretStr(SECRET),
            max_concurrency=threads,
        )
        settings = Settings(
            database_url=url.replace("TMP", tmp),
            secret_key=SecretStr(Fernet.generate_key().decode()),
            secret_key_file=Path(tmp) / "key",
            worker=WorkerSettings(threads=threads, jitter=0.0),
            connectors={FakeOAuthConnector.name: table},
        )
        app = App(settings, registry=Registry.of([FakeOAuthConnector]))
        upgrade(app.db.engine)
        for n in range(accounts):
            name = f"user{n}"
            fake.add_account(name)
            with app.db.session() as session:
                add_user(session, name, Money(500, "EUR"))
            link_account(
                app, FakeOAuthConnector.name, name, fake.issue(name, "bench").credentials()
            )
        poller = Poller(app)
        poller.poll_now()  # the baselines
        called: dict[str, float] = {}
        committed: dict[str, float] = {}
        real_saver = poller._saver

        def timed_saver(row: LinkedAccount) -> SaveCredentials:
            save = real_saver(row)

            def timed(old: Credentials, new: Credentials) -> None:
                called[new.refresh_token or ""] = time.monotonic()
                save(old, new)
                committed[new.refresh_token or ""] = time.monotonic()

            return timed

        poller._saver = timed_saver  # type: ignore[method-assign]
        for _ in range(rounds):
            clock.advance(timedelta(hours=1))
            outcomes = poller.poll_now()
            assert {o.status for o in outcomes} == {"ok"}, outcomes
        app.close()
        phases: dict[str, list[float]] = {
            "request to rotation": [],
            "answer to save": [],
            "save": [],
            "window": [],
        }
        for rotation in fake.rotations:
            issued = rotation.issued or ""
            phases["request to rotation"].append((rotation.monotonic - rotation.received) * 1000)
            phases["answer to save"].append((called[issued] - rotation.monotonic) * 1000)
            phases["save"].append((committed[issued] - called[issued]) * 1000)
            phases["window"].append((committed[issued] - rotation.monotonic) * 1000)
        clock.reset()
        return phases


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A new empty PostgreSQL schema for one measurement (dropped after), as a URL."""
    schema = f"trickle_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-url", default=None)
    parser.add_argument("--accounts", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 4])
    parser.add_argument("--latency", type=float, default=0.0, help="the platform's, seconds")
    args = parser.parse_args()
    if args.db == "postgresql" and not args.pg_url:
        parser.error("--pg-url is needed for PostgreSQL")
    for threads in args.threads:
        if args.db == "postgresql":
            with fresh_schema(args.pg_url) as url:
                phases = measure(url, threads, args.accounts, args.rounds, args.latency)
        else:
            phases = measure(
                "sqlite:///TMP/trickle.db", threads, args.accounts, args.rounds, args.latency
            )
        count = len(phases["window"])
        print(f"{args.db}, {threads} thread(s), {count} refreshes (ms: median, p95, max)")
        for name, values in phases.items():
            ordered = sorted(values)
            p95 = ordered[int(0.95 * (len(ordered) - 1))]
            print(f"  {name:20} {statistics.median(ordered):7.2f} {p95:7.2f} {ordered[-1]:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
