"""``trickle demo``: a month of likes on fake platforms, polled, settled and explained.

Everything runs for real except the platforms and the calendar: each
platform's fake serves its real API shapes on 127.0.0.1 (its authorization
server too), the real linking service links the demo's accounts through each
platform's own flows (the demo plays the person at the browser or the
device page), the real connectors poll them through the real worker, and the
real settlement settles the month. The one clock
(:data:`trickle.core.clock.clock`) is moved forward day by day, so a month
plays in seconds through the production code paths. Which platforms take
part is up to the caller: each is a :class:`~trickle.testing.demo_platform.DemoPlatform`
registered by its connector.
"""

from __future__ import annotations

import logging
import random
import secrets
import socket
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from cryptography.fernet import Fernet
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import select

from trickle.app import App
from trickle.config import Settings, WebSettings, WorkerSettings
from trickle.core.clock import clock
from trickle.core.errors import TrickleError
from trickle.core.invariants import check_ledger
from trickle.core.models import Creator, Share, ShareState
from trickle.core.money import format_money, parse_money
from trickle.core.periods import Period
from trickle.core.reports import MonthReport, month_report
from trickle.core.schema import upgrade
from trickle.core.users import add_user, fund
from trickle.linking.service import Linker
from trickle.output import literal, styled
from trickle.polling import Worker
from trickle.scheduler import settle_closed_months
from trickle.testing.demo_platform import (
    DemoLink,
    DemoPlatform,
    available_demo_platforms,
    load_demo_platform,
)

# (name, monthly budget, deposit): carol has less money than her budget.
LIKERS = [("alice", "5.00", "20.00"), ("bob", "3.00", "10.00"), ("carol", "4.00", "2.50")]
CREATOR_ONLY = "dave"  # joins to be paid; likes nothing
LATE_CREATOR = "ada"  # has not joined when the month settles; claims afterwards
OUTSIDERS = ("pydata-collective", "kernel-hacker")  # creators who never join
ITEMS_PER_CREATOR = 8
DEFAULT_PLATFORMS = ("github", "soundcloud", "mastodon", "bluesky")
"""What ``trickle demo`` plays without ``--platforms``: those of them that are installed."""


def default_platforms() -> list[str]:
    """The demo's default platforms that are installed (GitHub at least)."""
    installed = set(available_demo_platforms())
    return [name for name in DEFAULT_PLATFORMS if name in installed] or sorted(installed)


def _poll_everything(worker: Worker) -> None:
    """Poll until no account is due: the claims and polls the scheduler's ticks run."""
    if not worker.poll_until_idle(timeout=120):
        raise TrickleError("the demo's polls did not finish within two minutes")


def run_demo(
    console: Console,
    *,
    days: int = 31,
    keep: Path | None = None,
    seed: int = 7,
    platforms: Sequence[str] | None = None,
    web_port: int | None = None,
    serving: Callable[[str], None] | None = None,
) -> None:
    """Play the demo on ``platforms`` (default: :func:`default_platforms`) and print what
    happened. An unknown platform is a :class:`~trickle.testing.demo_platform.DemoPlatformError`.

    With ``web_port``, ada does not claim her shares yet: the web side is then served on
    ``127.0.0.1:web_port`` (0: a free port) with a worker beside it and the fakes still up,
    until Ctrl-C; ``serving(url)`` (default: wait for Ctrl-C) is called once it is up and
    the web side stops when it returns."""
    began = time.monotonic()
    quiet = logging.getLogger("trickle")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the transcript tells the story; warnings of staged
    try:  # failures would only interrupt it
        _run_demo(console, began, days, keep, seed, platforms, web_port, serving)
    finally:
        quiet.setLevel(level)


def _run_demo(
    console: Console,
    began: float,
    days: int,
    keep: Path | None,
    seed: int,
    platforms: Sequence[str] | None,
    web_port: int | None,
    serving: Callable[[str], None] | None,
) -> None:
    rng = random.Random(seed)
    chosen = list(dict.fromkeys(platforms or default_platforms()))
    kinds = [load_demo_platform(name) for name in chosen]
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
        with ExitStack() as running:
            fakes = [running.enter_context(kind()) for kind in kinds]
            settings = Settings(
                database_url=f"sqlite:///{database}",
                secret_key=SecretStr(Fernet.generate_key().decode()),
                fee_bps=250,
                settle_grace_hours=24,
                worker=WorkerSettings(threads=4, jitter=0.1),
                connectors={
                    fake.name: fake.settings(
                        min_interval_seconds=4 * 3600, max_interval_seconds=20 * 3600
                    )
                    for fake in fakes
                },
            )
            app = App(settings)
            try:
                played = _play(console, app, fakes, period, days, rng, claim=web_port is None)
                if web_port is not None and played:
                    clock.reset()
                    _serve_web(console, app, fakes, web_port, serving or _until_interrupted)
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
    fakes: list[DemoPlatform],
    period: Period,
    days: int,
    rng: random.Random,
    *,
    claim: bool = True,
) -> bool:
    upgrade(app.db.engine)
    clock.set(period.start - timedelta(days=3), frozen=True)
    console.print(
        Text.assemble(
            styled("trickle demo", "bold"),
            literal(f": {period} (fee 2.5 %, database {app.settings.database_url})"),
        )
    )
    for fake in fakes:
        console.print(literal(f"  {fake.name}: a fake at {fake.base_url}"))
    console.print()
    likers = [name for name, _, _ in LIKERS]
    catalog: list[tuple[DemoPlatform, Hashable]] = []
    for fake in fakes:
        for person in [*likers, CREATOR_ONLY, LATE_CREATOR, *OUTSIDERS]:
            fake.add_person(person)
        for creator in (CREATOR_ONLY, "carol", LATE_CREATOR, *OUTSIDERS):
            catalog += [(fake, item) for item in fake.publish(creator, ITEMS_PER_CREATOR)]

    # Likes from long before anyone linked: they are the baseline, never paid.
    for name in likers:
        for fake, item in rng.sample(catalog, 3 * len(fakes)):
            fake.like(name, item, clock.now() - timedelta(days=rng.randint(30, 400)))

    with app.db.session() as session:
        for name, budget, deposit in LIKERS:
            add_user(session, name, parse_money(budget, "EUR"))
            fund(session, name, parse_money(deposit, "EUR"), reference=f"demo-{name}")
        add_user(session, CREATOR_ONLY, parse_money("0", "EUR"))
    linker = Linker(app)
    for fake in fakes:
        for name in [*likers, CREATOR_ONLY]:
            _linked(console, fake.name, fake.link(linker, name))

    worker = Worker(app, threads=4)
    try:
        _poll_everything(worker)  # the baseline poll
        console.print(f"baseline recorded: {worker.stats['baseline']} accounts polled once\n")
        likes = 0
        for day in range(min(days, (period.end - period.start).days)):
            clock.set(period.start + timedelta(days=day, hours=rng.randint(8, 22)), frozen=True)
            for name in likers:
                for fake, item in rng.sample(catalog, rng.choice((0, 0, 1, 1, 2)) * len(fakes)):
                    fake.like(name, item, clock.now())
                    likes += 1
            _poll_everything(worker)
        clock.set(period.end + timedelta(hours=25), frozen=True)
        _poll_everything(worker)
        what = ", ".join(f"{fake.likes_are} on {fake.name}" for fake in fakes)
        console.print(
            f"{likes} likes over {period} ({what}); the worker made "
            f"{worker.stats['requests']} requests and stored {worker.stats['stored']} flattrs\n"
        )
        outcomes = settle_closed_months(app)  # what the scheduler's settle job does
    finally:
        worker.shutdown(grace=5)
    if not outcomes:
        console.print(styled("the month did not settle", "red"))
        return False

    report = month_report(app.db, period, app.settle_options, currency="EUR")
    _print_payments(console, report)
    if not claim:
        return True

    # ada joins after the month settled: linking her accounts claims what was held for her.
    with app.db.session() as session:
        add_user(session, LATE_CREATOR, parse_money("0", "EUR"))
    console.print()
    for fake in fakes:
        linked = fake.link(linker, LATE_CREATOR).result
        held = sum(linked.claim.posted_minor.values())
        console.print(
            literal(
                f"{LATE_CREATOR} joins and links {fake.name}:{linked.handle}: "
                f"{linked.claim.posted_shares} reserved share(s) paid to her, "
                f"{format_money(held, 'EUR')}"
            )
        )
    with app.db.reader() as session:
        violations = check_ledger(session)
    verdict = (
        styled("all invariants hold", "green") if not violations else styled(violations, "red")
    )
    console.print(Text.assemble(literal("ledger check: "), verdict))
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _until_interrupted(url: str) -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return


def _serve_web(
    console: Console,
    app: App,
    fakes: list[DemoPlatform],
    port: int,
    serving: Callable[[str], None],
) -> None:
    """The web side on the demo's database, a worker beside it, the fakes still up: alice
    (an operator too) signs in with a login link; ada, who has not claimed yet, signs in
    through a platform on her creator page and finds her money."""
    from trickle.core.logins import create_login_link
    from trickle.core.users import set_operator
    from trickle.scheduler import build_scheduler
    from trickle.web.serve import web_server

    port = port or _free_port()
    base = f"http://127.0.0.1:{port}"
    app.settings.web = WebSettings(
        base_url=base, cookie_secret=SecretStr(secrets.token_urlsafe(48))
    )
    for fake in fakes:
        fake.allow_redirect(app.settings.web.callback_url(fake.name))
    signed_in = [fake.name for fake in fakes if fake.sign_in_browser(LATE_CREATOR)]
    with app.db.session() as session:
        set_operator(session, "alice", True)
        token = create_login_link(session, "alice", timedelta(days=1))
        waiting = session.execute(
            select(Creator.platform, Creator.platform_id)
            .join(Share, Share.creator_id == Creator.id)
            .where(Share.state == ShareState.RESERVED.value, Creator.handle.contains(LATE_CREATOR))
            .distinct()
            .order_by(Creator.platform)
        ).all()
    server = web_server(app, host="127.0.0.1", port=port).start()
    worker = Worker(app, threads=2)
    scheduler = build_scheduler(app, worker)
    scheduler.start()
    try:
        console.print()
        console.print(styled(f"the web side is up at {base} (Ctrl-C stops it)", "bold"))
        console.print(literal(f"  alice's month (she is an operator too): {base}/login/{token}"))
        for platform, platform_id in waiting:
            url = f"{base}/c/{platform}/{quote(platform_id, safe='')}"
            console.print(literal(f"  money waiting for {LATE_CREATOR} on {platform}: {url}"))
        if signed_in:
            names = ", ".join(signed_in)
            console.print(
                literal(
                    f"  the fake {names} sign(s) your browser in as {LATE_CREATOR}: 'Sign in "
                    "with this account to claim it' on her page claims her money"
                )
            )
        console.print(literal(f"  operators: {base}/admin, {base}/healthz, {base}/metrics"))
        serving(base)
    finally:
        scheduler.shutdown(wait=False)
        worker.shutdown(grace=5)
        server.stop()


def _linked(console: Console, platform: str, link: DemoLink) -> None:
    result = link.result
    console.print(
        literal(
            f"linked {platform}:{result.handle} (id {result.platform_user_id}) "
            f"to {result.user}: {link.how}"
        )
    )


def _print_payments(console: Console, report: MonthReport) -> None:
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
