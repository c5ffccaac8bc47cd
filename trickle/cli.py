"""The ``trickle`` command.

Every command that prints data has ``--json`` (one JSON document on stdout,
documented in ``docs/cli.md``); human output goes through rich tables.
Errors are one line, ``error: ...``, on stderr with exit status 1 (2 for a
mistyped command or option), and never contain a token.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from trickle.config import Settings, load_settings
from trickle.core.errors import TrickleError
from trickle.core.money import format_money, parse_money
from trickle.core.periods import Period
from trickle.logs import LogFormat, configure_logging

if TYPE_CHECKING:  # imported lazily at run time, so that `trickle --help` stays fast
    from trickle.app import App

console = Console()
err_console = Console(stderr=True)

cli = typer.Typer(
    name="trickle",
    help="Monthly micropayments from the likes, stars and favourites people already give.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
users_cli = typer.Typer(help="Users: budgets and funds.", no_args_is_help=True)
accounts_cli = typer.Typer(help="Linked platform accounts.", no_args_is_help=True)
events_cli = typer.Typer(help="Likes stored as flattrs.", no_args_is_help=True)
connectors_cli = typer.Typer(help="Installed platform connectors.", no_args_is_help=True)
creators_cli = typer.Typer(help="Creators and their claims.", no_args_is_help=True)
ledger_cli = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
cli.add_typer(users_cli, name="users")
cli.add_typer(accounts_cli, name="accounts")
cli.add_typer(events_cli, name="events")
cli.add_typer(connectors_cli, name="connectors")
cli.add_typer(creators_cli, name="creators")
cli.add_typer(ledger_cli, name="ledger")

MAX_TABLE_ROWS = 50
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


@dataclass
class State:
    """Per-invocation state: where the settings come from, and the App once built."""

    config: Path | None = None
    verbose: bool = False
    log_format: LogFormat | None = None
    _settings: Settings | None = None
    _app: Any = None

    @property
    def settings(self) -> Settings:
        """Settings, loaded on first use."""
        if self._settings is None:
            self._settings = load_settings(self.config)
            _configure_logging(
                self._settings.log_level, self.verbose, self.log_format or self._settings.log_format
            )
        return self._settings

    @property
    def app(self) -> App:
        """The App, built on first use."""
        if self._app is None:
            from trickle.app import App

            self._app = App(self.settings)
        return self._app

    def close(self) -> None:
        """Release what the App opened."""
        if self._app is not None:
            self._app.close()


def _configure_logging(level: str, verbose: bool, log_format: str) -> None:
    configure_logging(level, verbose=verbose, log_format=log_format)


def _state(ctx: typer.Context) -> State:
    return ctx.find_root().obj  # type: ignore[no-any-return]


def _app(ctx: typer.Context) -> App:
    """The App, after checking the database is initialized and current."""
    from trickle.core.schema import require_current

    app = _state(ctx).app
    require_current(app.db.engine)
    return app


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def _money(minor: int, currency: str) -> str:
    return format_money(minor, currency)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _period(text: str) -> Period:
    try:
        return Period.parse(text)
    except TrickleError as exc:
        raise typer.BadParameter(str(exc)) from None


@cli.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="TOML settings file (default: ./trickle.toml if present)."
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(
            "--log-format",
            help="Logs on stderr as text or one JSON object a line (default: log_format).",
        ),
    ] = None,
) -> None:
    """trickle: link accounts, set budgets, and let the worker settle each month."""
    state = ctx.ensure_object(State)
    state.config = config
    state.verbose = verbose
    state.log_format = log_format


# ---------------------------------------------------------------------------
# init, demo, run, poll


@cli.command()
def init(ctx: typer.Context) -> None:
    """Create or upgrade the database, and create a secret key file if none is configured."""
    from trickle.core.credentials import create_key_file
    from trickle.core.schema import upgrade

    state = _state(ctx)
    settings = state.settings
    before, after = upgrade(state.app.db.engine)
    if before == after:
        console.print(f"database {settings.database_url}: already at schema {after}")
    elif before is None:
        console.print(f"database {settings.database_url}: created (schema {after})")
    else:
        console.print(f"database {settings.database_url}: upgraded {before} -> {after}")
    if settings.secret_key is not None:
        console.print("secret key: from TRICKLE_SECRET_KEY")
    elif settings.secret_key_file.is_file():
        console.print(f"secret key: {settings.secret_key_file}")
    else:
        create_key_file(settings.secret_key_file)
        console.print(
            f"secret key: created {settings.secret_key_file.resolve()} (readable by you only); "
            "keep it safe, linked accounts' tokens cannot be read without it"
        )


@cli.command()
def demo(
    days: Annotated[int, typer.Option(help="Days of the simulated month to play.")] = 31,
    keep: Annotated[
        Path | None, typer.Option(help="Keep the demo's database in this directory.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the simulated stars.")] = 7,
) -> None:
    """Play a month on a fake GitHub: users star, the worker polls, the month settles."""
    from trickle.demo import run_demo

    run_demo(console, days=days, keep=keep, seed=seed)


@cli.command()
def run(
    ctx: typer.Context,
    processes: Annotated[
        int | None, typer.Option(help="Worker processes (default: worker.processes).", min=1)
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(help="Poll threads per process (default: worker.threads).", min=1),
    ] = None,
    parent_fd: Annotated[
        int | None,
        typer.Option(hidden=True, help="Stop when this pipe closes (set by `run --processes`)."),
    ] = None,
) -> None:
    """Run the background worker: poll due accounts, settle closed months, expire escrow."""
    from trickle.scheduler import end_process, run_processes, run_worker

    state = _state(ctx)
    count = processes or state.settings.worker.processes
    if count > 1:
        argv = []
        if state.config is not None:
            argv += ["--config", str(state.config)]
        if state.verbose:
            argv.append("--verbose")
        if state.log_format is not None:
            argv += ["--log-format", state.log_format.value]
        argv.append("run")
        if threads is not None:
            argv += ["--threads", str(threads)]
        raise typer.Exit(run_processes(argv, count))
    end_process(run_worker(state.app, threads=threads, parent_fd=parent_fd))


@cli.command()
def poll(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option(help="Only this user's accounts.")] = None,
    platform: Annotated[str | None, typer.Option(help="Only accounts on this platform.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Poll accounts now, whatever their schedule, and report what each one found."""
    from trickle.polling import Poller

    app = _app(ctx)
    if platform is not None:
        app.registry.load(platform)
    if user is not None:
        from trickle.core.users import get_user

        with app.db.reader() as session:
            get_user(session, user)
    with _poll_progress() as progress:
        outcomes = Poller(app).poll_now(user=user, platform=platform, progress=progress)
    if as_json:
        _print_json({"accounts": [o.to_json() for o in outcomes]})
    else:
        table = Table("user", "platform", "account", "result", "new", "requests", "note")
        for o in outcomes:
            note = o.error or (f"{o.baseline} older likes kept as baseline" if o.baseline else "")
            table.add_row(
                o.user, o.platform, o.handle, o.status, str(o.stored), str(o.requests), note
            )
        console.print(table if outcomes else "no active accounts to poll")
    if any(o.status in ("failed", "auth_expired") for o in outcomes):
        raise typer.Exit(1)


@contextmanager
def _poll_progress() -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr while `trickle poll` runs, when stderr is a terminal."""
    if not err_console.is_terminal:
        yield None
        return
    from rich.progress import Progress

    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("polling", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@cli.command()
def link(
    ctx: typer.Context,
    platform: Annotated[str, typer.Argument(help="Connector name, e.g. github.")],
    user: Annotated[str, typer.Option(help="The trickle user the account belongs to.")],
    token: Annotated[
        str,
        typer.Option(
            help="Access token (prompted for when omitted, so it stays out of shell history).",
            prompt=True,
            hide_input=True,
            envvar="TRICKLE_LINK_TOKEN",
            show_envvar=True,
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Link a platform account with a token obtained from the platform."""
    from trickle.core.credentials import Credentials
    from trickle.linking import link_account

    app = _app(ctx)
    result = link_account(app, platform, user, Credentials(token=token.strip()))
    claimed = result.claim
    if as_json:
        _print_json(
            {
                "account_id": result.account_id,
                "platform": result.platform,
                "platform_user_id": result.platform_user_id,
                "handle": result.handle,
                "relinked": result.relinked,
                "claimed_shares": claimed.posted_shares,
                "claimed_minor": claimed.posted_minor,
            }
        )
        return
    verb = "relinked" if result.relinked else "linked"
    console.print(
        f"{verb} {platform} account {result.handle} (id {result.platform_user_id}) to {user}; "
        "the first poll records the likes made before now as the baseline"
    )
    if claimed.posted_shares:
        paid = ", ".join(_money(v, c) for c, v in sorted(claimed.posted_minor.items()))
        console.print(
            f"{claimed.posted_shares} reserved share(s) for this creator paid to {user}: {paid}"
        )


# ---------------------------------------------------------------------------
# users


@users_cli.command("add")
def users_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Unique user name.")],
    budget: Annotated[str, typer.Option(help="Monthly budget, e.g. 5.00 or '5 EUR'.")],
    currency: Annotated[
        str | None, typer.Option(help="ISO 4217 currency (default: the configured one).")
    ] = None,
) -> None:
    """Add a user with a monthly budget."""
    from trickle.core.users import add_user

    app = _app(ctx)
    amount = parse_money(budget, currency or app.settings.currency)
    if currency and amount.currency != currency.upper():
        raise TrickleError(f"--budget is in {amount.currency} but --currency says {currency}")
    with app.db.session() as session:
        add_user(session, name, amount)
    console.print(f"added {name} with a monthly budget of {amount}")


@users_cli.command("budget")
def users_budget(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    amount: Annotated[str, typer.Argument(help="New monthly budget.")],
) -> None:
    """Change a user's monthly budget (the one in force at a month's end applies)."""
    from trickle.core.users import get_user, set_budget

    app = _app(ctx)
    with app.db.session() as session:
        user = get_user(session, name)
        new = parse_money(amount, user.currency)
        old = set_budget(session, name, new)
    console.print(f"{name}: budget {old} -> {new}")


@users_cli.command("fund")
def users_fund(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    amount: Annotated[str, typer.Argument(help="Amount deposited, e.g. 20 or '20.00 EUR'.")],
    reference: Annotated[
        str | None,
        typer.Option(help="Payment reference; the same reference is never credited twice."),
    ] = None,
) -> None:
    """Record money a user paid in."""
    from trickle.core.users import fund, get_user

    app = _app(ctx)
    with app.db.session() as session:
        user = get_user(session, name)
        money = parse_money(amount, user.currency)
        credited = fund(session, name, money, reference)
    if credited:
        console.print(f"credited {money} to {name}")
    else:
        console.print(f"reference {reference!r} was already credited: nothing changed")


@users_cli.command("list")
def users_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Users with budget, funds, reserved and available funds."""
    from trickle.core.users import list_users

    app = _app(ctx)
    with app.db.reader() as session:
        rows = list_users(session)
    if as_json:
        _print_json(
            {
                "users": [
                    {
                        "user": r.name,
                        "currency": r.currency,
                        "budget_minor": r.budget_minor,
                        "funds_minor": r.funds_minor,
                        "reserved_minor": r.reserved_minor,
                        "available_minor": r.available_minor,
                    }
                    for r in rows
                ]
            }
        )
        return
    table = Table("user", "budget", "funds", "reserved", "available")
    for r in rows:
        table.add_row(
            r.name,
            _money(r.budget_minor, r.currency),
            _money(r.funds_minor, r.currency),
            _money(r.reserved_minor, r.currency),
            _money(r.available_minor, r.currency),
        )
    console.print(table if rows else "no users yet: `trickle users add NAME --budget 5`")


# ---------------------------------------------------------------------------
# accounts, connectors, events


@accounts_cli.command("list")
def accounts_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Linked accounts with their poll status."""
    from trickle.core.models import LinkedAccount, User

    app = _app(ctx)
    with app.db.reader() as session:
        rows = session.execute(
            select(LinkedAccount, User.name)
            .join(User, User.id == LinkedAccount.user_id)
            .order_by(User.name, LinkedAccount.platform, LinkedAccount.handle)
        ).all()
    if as_json:
        _print_json(
            {
                "accounts": [
                    {
                        "user": name,
                        "platform": a.platform,
                        "handle": a.handle,
                        "platform_user_id": a.platform_user_id,
                        "status": a.status,
                        "linked_at": _iso(a.linked_at),
                        "last_poll_at": _iso(a.last_poll_at),
                        "last_success_at": _iso(a.last_success_at),
                        "next_poll_at": _iso(a.next_poll_at),
                        "failures": a.failures,
                        "last_error": a.last_error,
                    }
                    for a, name in rows
                ]
            }
        )
        return
    table = Table("user", "platform", "account", "status", "last poll", "next poll", "note")
    for a, name in rows:
        status = a.status if a.status != "auth_expired" else "[red]relink needed[/red]"
        note = (a.last_error or "")[:60] if a.failures or a.status != "active" else ""
        table.add_row(
            name, a.platform, a.handle, status, _when(a.last_poll_at), _when(a.next_poll_at), note
        )
    console.print(table if rows else "no linked accounts: `trickle link github --user NAME`")


@connectors_cli.command("list")
def connectors_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Installed connectors, their quality tier, and why any cannot load."""
    from trickle.connectors.registry import Registry

    infos = Registry.from_entry_points().describe()
    if as_json:
        _print_json(
            {
                "connectors": [
                    {
                        "name": i.name,
                        "source": i.source,
                        "available": i.available,
                        "tier": i.tier.value if i.tier else None,
                        "quality_rules": list(i.quality_rules),
                        "unmet_rules": list(i.unmet_rules),
                        "error": i.error,
                    }
                    for i in infos
                ]
            }
        )
        return
    table = Table("name", "status", "tier", "source")
    for i in infos:
        status = "available" if i.available else f"[red]unavailable[/red]: {i.error}"
        tier = i.tier.value if i.tier else "-"
        if i.unmet_rules:
            tier += f" [red](claimed; unmet: {', '.join(i.unmet_rules)})[/red]"
        table.add_row(i.name, status, tier, i.source)
    console.print(table)


@events_cli.command("import")
def events_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON Lines file, one normalized like per line.")],
    as_json: JsonOption = False,
) -> None:
    """Import likes from a JSON Lines file; one bad line and nothing is stored."""
    from trickle.core.importer import import_events

    app = _app(ctx)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrickleError(f"cannot read {file}: {exc}") from None
    with app.db.session() as session:
        result = import_events(session, text.splitlines())
    if as_json:
        _print_json(
            {"lines": result.lines, "stored": result.stored, "duplicates": result.duplicates}
        )
    else:
        console.print(
            f"{file}: {result.lines} event(s), {result.stored} stored, "
            f"{result.duplicates} already known"
        )


# ---------------------------------------------------------------------------
# creators, expiry, ledger


@creators_cli.command("claim")
def creators_claim(
    ctx: typer.Context,
    platform: Annotated[str, typer.Argument()],
    creator_id: Annotated[str, typer.Argument(help="The platform's permanent id of the creator.")],
    user: Annotated[str, typer.Option(help="The user the operator verified to be this creator.")],
    as_json: JsonOption = False,
) -> None:
    """Give a creator identity to a user (operator-verified) and pay its reserved shares."""
    from trickle.core.escrow import claim_creator
    from trickle.core.users import get_user

    app = _app(ctx)
    with app.db.session() as session:
        owner = get_user(session, user)
        result = claim_creator(session, platform=platform, platform_id=creator_id, user_id=owner.id)
    if as_json:
        _print_json(
            {
                "platform": platform,
                "creator_id": creator_id,
                "user": user,
                "newly_claimed": result.newly_claimed,
                "posted_shares": result.posted_shares,
                "posted_minor": result.posted_minor,
                "returned_shares": result.returned_shares,
            }
        )
        return
    paid = ", ".join(_money(v, c) for c, v in sorted(result.posted_minor.items())) or "nothing"
    console.print(
        f"{platform} creator {creator_id} belongs to {user}: "
        f"{result.posted_shares} reserved share(s) paid ({paid})"
    )


@cli.command()
def expire(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Return reserved shares older than escrow_days to their likers."""
    from trickle.core.escrow import expire_reserved

    app = _app(ctx)
    with app.db.session() as session:
        result = expire_reserved(session)
    if as_json:
        _print_json({"returned_shares": result.shares, "returned_minor": result.returned_minor})
        return
    total = ", ".join(_money(v, c) for c, v in sorted(result.returned_minor.items())) or "nothing"
    console.print(f"{result.shares} expired reservation(s) returned to their likers ({total})")


@ledger_cli.command("check")
def ledger_check(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Verify the ledger's invariants; exits 1 and shows the offending rows if one fails."""
    from trickle.core.invariants import CHECKS, check_ledger

    app = _app(ctx)
    with app.db.reader() as session:
        violations = check_ledger(session)
    if as_json:
        _print_json(
            {
                "ok": not violations,
                "checked": list(CHECKS),
                "violations": [
                    {"rule": v.rule, "columns": list(v.columns), "rows": [list(r) for r in v.rows]}
                    for v in violations
                ],
            }
        )
    elif not violations:
        console.print(f"ledger ok: {len(CHECKS)} invariants hold")
    else:
        for v in violations:
            err_console.print(f"[red]FAILED[/red] {v.rule}")
            table = Table(*v.columns)
            for row in v.rows:
                table.add_row(*(str(x) for x in row))
            err_console.print(table)
    if violations:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------
# settle, report


@cli.command()
def settle(
    ctx: typer.Context,
    month: Annotated[str, typer.Argument(help="The month to settle, YYYY-MM.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what settling would do; change nothing.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Settle even if accounts lag or the grace period runs."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Settle a month: split each user's budget over their flattrs and post it to the ledger."""
    from trickle.core.reports import month_report

    period = _period(month)
    app = _app(ctx)
    settlement = app.settlement()
    if dry_run:
        closing = settlement.closing(period)
        with app.db.reader() as session:
            report = month_report(
                session, period, app.settle_options, currency=app.settings.currency
            )
        if as_json:
            _print_json({"result": "dry_run", "closed": closing.closed, **report.to_json()})
            return
        if report.status != "open":
            console.print(f"{period} is already settled; nothing would change")
        elif not closing.closed:
            console.print(f"[yellow]{closing.explain()}[/yellow]")
        _print_month(report, title=f"{period}: what settling now would do (nothing written)")
        return
    outcome = settlement.settle(period, force=force)
    with app.db.reader() as session:
        report = month_report(session, period, app.settle_options, currency=app.settings.currency)
    if as_json:
        _print_json({"result": outcome.status, **report.to_json()})
        return
    if outcome.status == "already_settled":
        console.print(f"{period} was already settled: nothing changed")
        return
    resumed = " (resumed an interrupted run)" if outcome.resumed else ""
    _print_month(report, title=f"{period} settled{resumed}")


@cli.command()
def report(
    ctx: typer.Context,
    month: Annotated[str, typer.Argument(help="YYYY-MM")],
    user: Annotated[str | None, typer.Option(help="One user's statement.")] = None,
    as_json: JsonOption = False,
) -> None:
    """A month's flattrs and shares: settled, or projected for an open month."""
    from trickle.core.reports import month_report

    period = _period(month)
    app = _app(ctx)
    with app.db.reader() as session:
        data = month_report(
            session, period, app.settle_options, currency=app.settings.currency, user=user
        )
    if as_json:
        _print_json(data.to_json())
        return
    if user is not None:
        _print_statement(data, user)
    else:
        _print_month(data, title=f"{period} ({data.status})")


def _print_month(report: Any, *, title: str) -> None:
    table = Table("user", "flattrs", "spent", "fee", "paid", "reserved", title=title)
    by_user: dict[str, dict[str, int]] = {}
    for s in report.shares:
        bucket = by_user.setdefault(s.user, {})
        bucket[s.state] = bucket.get(s.state, 0) + s.amount_minor
    for line in report.users[:MAX_TABLE_ROWS]:
        states = by_user.get(line.user, {})
        paid = states.get("paid", 0) + states.get("projected", 0)
        table.add_row(
            line.user,
            str(line.flattrs),
            _money(line.spent_minor, line.currency),
            _money(line.fee_minor, line.currency),
            _money(paid, line.currency),
            _money(states.get("reserved", 0), line.currency),
        )
    console.print(table if report.users else f"{title}: no flattrs counted")
    if len(report.users) > MAX_TABLE_ROWS:
        console.print(f"... and {len(report.users) - MAX_TABLE_ROWS} more users (--json has all)")
    for currency, t in sorted(report.totals().items()):
        shares = sum(v for k, v in t.items() if k not in ("spent", "fees"))
        console.print(
            f"total {currency}: spent {_money(t['spent'], currency)} = "
            f"shares {_money(shares, currency)} + fees {_money(t['fees'], currency)}"
        )


def _print_statement(report: Any, user: str) -> None:
    line = report.users[0] if report.users else None
    table = Table(
        "item", "creator", "share", "state", title=f"{user}, {report.period} ({report.status})"
    )
    for s in report.shares:
        if s.state == "reserved":
            state = f"reserved until {_when(s.expires_at)}"
        elif s.state == "returned":
            state = f"returned {_when(s.resolved_at)}"
        elif s.state == "paid":
            state = f"paid to {s.recipient}"
        else:
            state = "projected" + (
                f" (to {s.recipient})" if s.recipient else " (creator not on trickle)"
            )
        table.add_row(
            s.item_url,
            f"{s.creator_handle} ({s.platform} {s.creator_id})",
            _money(s.amount_minor, s.currency),
            state,
        )
    console.print(table)
    if line is not None:
        console.print(
            f"{line.flattrs} flattr(s); spent {_money(line.spent_minor, line.currency)} of a "
            f"{_money(line.budget_minor, line.currency)} budget, "
            f"fee {_money(line.fee_minor, line.currency)}"
        )
    else:
        console.print("no counted flattrs this month: nothing spent")


# ---------------------------------------------------------------------------
# entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    state = State()
    try:
        cli(args=args, prog_name="trickle", obj=state)
    except SystemExit as exc:  # Typer always ends this way: usage errors, --help, success
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except TrickleError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
        return 1
    except SQLAlchemyError as exc:
        detail = str(exc.orig) if getattr(exc, "orig", None) is not None else str(exc)
        err_console.print(f"[red]database error:[/red] {detail.splitlines()[0]}", highlight=False)
        return 1
    finally:
        state.close()
    return 0
