"""``trickle demo``: a month of stars on a fake GitHub, polled, settled and explained.

Everything runs for real except the platform and the calendar: a fake
GitHub serves the real API shapes on 127.0.0.1 (github.com's OAuth endpoints
too), the real linking service links its accounts through GitHub's device
flow, its browser flow (the demo plays the browser) and a personal token,
the real connector polls them through the real worker, and the real
settlement settles the month. The one clock (:data:`trickle.core.clock.clock`) is moved forward day
by day, so a month plays in seconds through the production code paths.
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import requests
from cryptography.fernet import Fernet
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table
from rich.text import Text

from trickle.app import App
from trickle.config import Settings, WorkerSettings
from trickle.connectors.github.connector import GitHubSettings
from trickle.connectors.github.fake import FakeGitHub, FakeRepo
from trickle.core.clock import clock
from trickle.core.invariants import check_ledger
from trickle.core.money import format_money, parse_money
from trickle.core.periods import Period
from trickle.core.reports import month_report
from trickle.core.schema import upgrade
from trickle.core.users import add_user, fund
from trickle.linking import LinkResult
from trickle.linking.service import Linker
from trickle.output import literal, styled
from trickle.polling import Worker
from trickle.scheduler import settle_closed_months

# (name, monthly budget, deposit): carol has less money than her budget.
LIKERS = [("alice", "5.00", "20.00"), ("bob", "3.00", "10.00"), ("carol", "4.00", "2.50")]
CREATOR_ONLY = "dave"  # joins to be paid; stars nothing
LATE_CREATOR = "ada"  # has not joined when the month settles; claims afterwards
APP_ID = "Iv1.demo0trickle0app"
APP_SECRET = "demo-app-secret-" + "0" * 24


def _catalog(github: FakeGitHub) -> list[FakeRepo]:
    """Repositories to star: some by users who joined, some by creators who have not."""
    owners = [
        (github.users[CREATOR_ONLY].login, github.users[CREATOR_ONLY].id, "User"),
        (github.users["carol"].login, github.users["carol"].id, "User"),
        (github.users[LATE_CREATOR].login, github.users[LATE_CREATOR].id, "User"),
        ("pydata-collective", 9001, "Organization"),
        ("kernel-hacker", 9002, "User"),
    ]
    words = ["http", "yaml", "markdown", "engine", "notes", "frames", "patches", "lint"]
    return [
        FakeRepo(500 + 10 * i + j, f"{words[(i + j) % len(words)]}-{j}", login, owner_id, kind)
        for i, (login, owner_id, kind) in enumerate(owners)
        for j in range(8)
    ]


def _poll_everything(worker: Worker) -> None:
    """Run worker ticks until no account is due: the same ticks the scheduler runs."""
    while worker.tick():
        worker.drain(timeout=30)
    worker.drain(timeout=30)


def run_demo(console: Console, *, days: int = 31, keep: Path | None = None, seed: int = 7) -> None:
    """Play the demo and print what happened."""
    began = time.monotonic()
    logging.getLogger("trickle").setLevel(logging.ERROR)
    rng = random.Random(seed)
    period = Period.of(clock.now()).previous()
    workdir_handle = None
    if keep is None:
        workdir_handle = tempfile.TemporaryDirectory(prefix="trickle-demo-")
        workdir = Path(workdir_handle.name)
    else:
        workdir = keep
        workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "demo.db"
    if database.exists():
        database.unlink()
    try:
        with FakeGitHub() as github:
            settings = Settings(
                database_url=f"sqlite:///{database}",
                secret_key=SecretStr(Fernet.generate_key().decode()),
                fee_bps=250,
                settle_grace_hours=24,
                worker=WorkerSettings(threads=4, jitter=0.1),
                connectors={
                    "github": GitHubSettings(
                        base_url=github.base_url,
                        oauth_base_url=github.base_url,
                        client_id=APP_ID,
                        client_secret=SecretStr(APP_SECRET),
                        min_interval_seconds=4 * 3600,
                        max_interval_seconds=20 * 3600,
                    )
                },
            )
            app = App(settings)
            try:
                _play(console, app, github, period, days, rng)
            finally:
                app.close()
    finally:
        clock.reset()
        if workdir_handle is not None:
            workdir_handle.cleanup()
    console.print()
    console.print(styled(f"demo played in {time.monotonic() - began:.1f} s (wall clock)", "dim"))
    if keep is not None:
        console.print(styled(f"database kept: {database}", "dim"))


def _play(
    console: Console,
    app: App,
    github: FakeGitHub,
    period: Period,
    days: int,
    rng: random.Random,
) -> None:
    upgrade(app.db.engine)
    clock.set(period.start - timedelta(days=3), frozen=True)
    console.print(
        Text.assemble(
            styled("trickle demo", "bold"),
            literal(
                f": {period}, on a fake GitHub at {github.base_url} "
                f"(fee 2.5 %, database {app.settings.database_url})\n"
            ),
        )
    )
    for name, _, _ in LIKERS:
        github.add_user(name, token=f"ghp_demo_{name}_{rng.getrandbits(48):x}")
    for name in (CREATOR_ONLY, LATE_CREATOR):
        github.add_user(name, token=f"ghp_demo_{name}_{rng.getrandbits(48):x}")
    repos = _catalog(github)

    # Stars from long before anyone linked: they are the baseline, never paid.
    for name, _, _ in LIKERS:
        for repo in rng.sample(repos, 3):
            github.star(name, repo, clock.now() - timedelta(days=rng.randint(30, 400)))

    with app.db.session() as session:
        for name, budget, deposit in LIKERS:
            add_user(session, name, parse_money(budget, "EUR"))
            fund(session, name, parse_money(deposit, "EUR"), reference=f"demo-{name}")
        add_user(session, CREATOR_ONLY, parse_money("0", "EUR"))
    github.oauth.register_app(APP_ID, APP_SECRET)
    linker = Linker(app)
    for name in [n for n, _, _ in LIKERS]:
        _link_by_device(console, linker, github, name)
    _link_in_the_browser(console, linker, github, CREATOR_ONLY)

    worker = Worker(app, threads=4)
    try:
        _poll_everything(worker)  # the baseline poll
        console.print(f"baseline recorded: {worker.stats['baseline']} accounts polled once\n")
        likers = [n for n, _, _ in LIKERS]
        stars = 0
        for day in range(min(days, (period.end - period.start).days)):
            clock.set(period.start + timedelta(days=day, hours=rng.randint(8, 22)), frozen=True)
            for name in likers:
                for repo in rng.sample(repos, rng.choice((0, 0, 1, 1, 2))):
                    github.star(name, repo)
                    stars += 1
            _poll_everything(worker)
        clock.set(period.end + timedelta(hours=25), frozen=True)
        _poll_everything(worker)
        console.print(
            f"{stars} stars over {period}; the worker made {worker.stats['requests']} requests "
            f"and stored {worker.stats['stored']} flattrs\n"
        )
        outcomes = settle_closed_months(app)  # what the scheduler's settle job does
    finally:
        worker.shutdown(grace=5)
    if not outcomes:
        console.print(styled("the month did not settle", "red"))
        return

    report = month_report(app.db, period, app.settle_options, currency="EUR")
    _print_payments(console, report)

    # ada joins after the month settled: linking her GitHub account claims what was held for her.
    with app.db.session() as session:
        add_user(session, LATE_CREATOR, parse_money("0", "EUR"))
    linked = linker.import_token("github", LATE_CREATOR, github.users[LATE_CREATOR].token)
    held = sum(linked.claim.posted_minor.values())
    console.print(
        f"\n{LATE_CREATOR} joins and links github:{linked.handle}: {linked.claim.posted_shares} "
        f"reserved share(s) paid to her, {format_money(held, 'EUR')}"
    )
    with app.db.reader() as session:
        violations = check_ledger(session)
    verdict = (
        styled("all invariants hold", "green") if not violations else styled(violations, "red")
    )
    console.print(Text.assemble(literal("ledger check: "), verdict))


def _link_by_device(console: Console, linker: Linker, github: FakeGitHub, name: str) -> None:
    """GitHub's device flow, as ``trickle link github`` runs it: the user enters the code."""
    device = linker.start_device("github", name)
    github.oauth.enter_code(device.user_code, name)  # what the user does at the page
    result = linker.wait_device(device, sleep=lambda s: clock.advance(timedelta(seconds=s)))
    _linked(console, result, f"code {device.user_code} entered at {device.verification_uri}")


def _link_in_the_browser(console: Console, linker: Linker, github: FakeGitHub, name: str) -> None:
    """GitHub's browser flow: the demo plays the signed-in user's browser."""
    authorization = linker.authorize(
        "github", name, redirect_uri="http://127.0.0.1:8765/callback", kind="oauth2"
    )
    github.oauth.sign_in(name)
    answer = requests.get(authorization.url, allow_redirects=False, timeout=10)
    result = linker.complete(answer.headers["Location"])  # where GitHub sent the browser
    _linked(console, result, "approved in the browser (PKCE)")


def _linked(console: Console, result: LinkResult, how: str) -> None:
    console.print(
        literal(
            f"linked github:{result.handle} (id {result.platform_user_id}) to {result.user}: {how}"
        )
    )


def _print_payments(console: Console, report: object) -> None:
    from trickle.core.reports import MonthReport

    assert isinstance(report, MonthReport)
    flows: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for share in report.shares:
        to = share.recipient if share.recipient else f"{share.creator_handle} (not on trickle)"
        flows[(share.user, to)][share.state] += share.amount_minor
    table = Table("from", "to", "paid", "reserved", title=f"who paid whom in {report.period}")
    for (liker, to), states in sorted(flows.items()):
        table.add_row(
            liker,
            to,
            format_money(states.get("paid", 0), "EUR"),
            format_money(states.get("reserved", 0), "EUR"),
        )
    console.print(table)
    spend = Table("user", "flattrs", "budget", "spent", "fee", title="budgets")
    for line in report.users:
        spend.add_row(
            line.user,
            str(line.flattrs),
            format_money(line.budget_minor, line.currency),
            format_money(line.spent_minor, line.currency),
            format_money(line.fee_minor, line.currency),
        )
    console.print(spend)
    totals = report.totals()["EUR"]
    shares = totals.get("paid", 0) + totals.get("reserved", 0) + totals.get("returned", 0)
    balanced = shares + totals["fees"] == totals["spent"]
    mark = styled("adds up", "green") if balanced else styled("DOES NOT ADD UP", "red")
    console.print(
        Text.assemble(
            literal(
                f"spent {format_money(totals['spent'], 'EUR')} = shares "
                f"{format_money(shares, 'EUR')} + fees {format_money(totals['fees'], 'EUR')}: "
            ),
            mark,
        )
    )
