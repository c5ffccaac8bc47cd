"""The ``trickle`` command.

Every command that prints data has ``--json`` (one JSON document on stdout,
documented in ``docs/cli.md``); human output goes through
:mod:`trickle.output`, which prints everything that came from outside (names,
handles, platform messages, URLs) literally. Errors are one line, ``error:
...``, on stderr with exit status 1 (2 for a mistyped command or option, 130
when interrupted), and never contain a token. Nothing a user can type, and
nothing the file system can do, ends in a traceback.
"""

from __future__ import annotations

import errno
import getpass
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from trickle import __version__
from trickle.config import Settings, load_settings
from trickle.core.clock import iso_utc
from trickle.core.errors import TrickleError
from trickle.core.money import MAX_BUDGET_MINOR, format_money, parse_money
from trickle.core.periods import Period
from trickle.logs import LogFormat, configure_logging
from trickle.output import (
    add_row,
    console,
    countdown,
    err_console,
    error,
    literal,
    print_json,
    progress,
    say,
    styled,
    table,
    waiting,
    warn,
)

if TYPE_CHECKING:  # imported lazily at run time, so that `trickle --help` stays fast
    from trickle.app import App
    from trickle.connectors.registry import Registry
    from trickle.core.reports import MonthReport

cli = typer.Typer(
    name="trickle",
    help="Monthly micropayments from the likes, stars and favourites people already give.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are shown as written: "[worker] processes" stays
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
    registry: Registry | None = None
    """The connectors to use; None: those installed (their entry points)."""
    _settings: Settings | None = None
    _app: App | None = None

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

            self._app = App(self.settings, registry=self.registry)
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


def _money(minor: int, currency: str) -> str:
    return format_money(minor, currency)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _period(text: str) -> Period:
    try:
        return Period.parse(text)
    except TrickleError as exc:
        raise typer.BadParameter(str(exc)) from None


def _show_version(value: bool) -> None:
    if value:
        say(f"trickle {__version__}")
        raise typer.Exit()


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
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """trickle: link accounts, set budgets, and let the worker settle each month."""
    state = ctx.ensure_object(State)
    state.config = config
    state.verbose = verbose
    state.log_format = log_format


# ---------------------------------------------------------------------------
# init, demo, run, poll


@cli.command()
def init(
    ctx: typer.Context,
    new_key: Annotated[
        bool,
        typer.Option(
            "--new-key",
            help=(
                "Create a new key although linked accounts hold credentials sealed with a key "
                "that is gone; those accounts are marked to be linked again."
            ),
        ),
    ] = False,
) -> None:
    """Create or upgrade the database, and create a secret key file if none is configured.

    It will not create a key over credentials sealed with another one (a deleted key
    file, an unset TRICKLE_SECRET_KEY) unless --new-key says so.
    """
    from trickle.core.credentials import create_key_file
    from trickle.core.db import display_url
    from trickle.core.schema import upgrade
    from trickle.core.sealed import key_census, record_key_ids, retire_other_keys

    state = _state(ctx)
    settings = state.settings
    app = state.app
    before, after = upgrade(app.db.engine)
    shown = display_url(settings.database_url)
    if before == after:
        say(f"database {shown}: already at schema {after}")
    elif before is None:
        say(f"database {shown}: created (schema {after})")
    else:
        say(f"database {shown}: upgraded {before} -> {after}")
    with app.db.reader() as session:
        census = key_census(session)
    key_file = settings.secret_key_file
    if settings.secret_key is not None:
        say("secret key: from TRICKLE_SECRET_KEY")
        created = False
    elif key_file.exists():
        say(f"secret key: {key_file}")
        created = False
    elif census.accounts and not new_key:
        raise TrickleError(
            f"no secret key is configured ({key_file} does not exist and TRICKLE_SECRET_KEY is "
            f"not set), but {census.accounts} linked account(s) hold credentials sealed with "
            "one. Restore that key (the key file, or TRICKLE_SECRET_KEY); or run `trickle init "
            "--new-key` to make a new key, after which those accounts must be linked again"
        )
    else:
        create_key_file(key_file)
        created = True
        say(
            f"secret key: created {key_file.resolve()} (readable by you only); keep it safe, "
            "linked accounts' tokens cannot be read without it, and every worker needs it"
        )
    if new_key and not created:
        raise TrickleError(
            "--new-key replaces a lost key, and a key is configured: nothing was replaced"
        )
    box = app.box
    with app.db.session() as session:
        record_key_ids(session, box)
        retired = retire_other_keys(session, box.key_id) if new_key else 0
        census = key_census(session)
    if retired:
        warn(f"{retired} linked account(s) were sealed with the lost key: link them again")
    unreadable = census.accounts - census.by_key.get(box.key_id, 0)
    if unreadable and not new_key:
        others = census.describe_other_keys(box.key_id) or f"{unreadable} with an unknown key"
        warn(
            f"{unreadable} linked account(s) hold credentials this key cannot open ({others}): "
            "configure the key they were sealed with, or link them again"
        )


@cli.command()
def demo(
    days: Annotated[int, typer.Option(help="Days of the simulated month to play.", min=1)] = 31,
    keep: Annotated[
        Path | None, typer.Option(help="Keep the demo's database in this directory.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the simulated likes.")] = 7,
    platforms: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated platforms to play on (default: github and those of "
            "soundcloud, mastodon, bluesky that are installed).",
        ),
    ] = None,
    web: Annotated[
        bool,
        typer.Option(
            "--web",
            help="Then serve the web side on 127.0.0.1, the fakes still up, until Ctrl-C.",
        ),
    ] = False,
    port: Annotated[
        int, typer.Option(help="The web side's port with --web (0: any free one).", min=0)
    ] = 8080,
) -> None:
    """Play a month on fake platforms: users like, the worker polls, the month settles."""
    from trickle.demo import run_demo

    chosen = [name.strip() for name in platforms.split(",") if name.strip()] if platforms else None
    run_demo(
        console, days=days, keep=keep, seed=seed, platforms=chosen, web_port=port if web else None
    )


@cli.command()
def run(
    ctx: typer.Context,
    processes: Annotated[
        int | None, typer.Option(help="Worker processes (default: [worker] processes).", min=1)
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(help="Poll threads per process (default: [worker] threads).", min=1),
    ] = None,
    parent_fd: Annotated[
        int | None,
        typer.Option(hidden=True, help="Stop when this pipe closes (set by `run --processes`)."),
    ] = None,
    web: Annotated[
        bool, typer.Option("--web", help="Serve the web side ([web]) beside the worker.")
    ] = False,
) -> None:
    """Run the background worker: poll due accounts, settle closed months, expire escrow."""
    from trickle.scheduler import end_process, run_processes, run_worker

    state = _state(ctx)
    count = processes or state.settings.worker.processes
    if web and count > 1:
        raise TrickleError(
            "--web runs beside one worker process: run `trickle web` on its own next to "
            "`trickle run --processes N`"
        )
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
    end_process(run_worker(state.app, threads=threads, parent_fd=parent_fd, web=web))


@cli.command("web")
def web_command(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(help="Port (default: [web] port).", min=0)] = None,
    listen: Annotated[
        str | None, typer.Option(help="Address to listen on (default: [web] listen).")
    ] = None,
) -> None:
    """Serve the web side: sign-in, linking, users' months, creators' pages, /healthz, /metrics."""
    from trickle.web.serve import web_server

    app = _app(ctx)
    server = web_server(app, host=listen, port=port)
    say(f"serving {app.settings.web.base_url} on {server.address} (Ctrl-C stops)")
    try:
        server.serve()
    finally:
        server.stop()


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
    with progress("polling") as update:
        outcomes = Poller(app).poll_now(
            user=user, platform=platform, progress=lambda done, total: update(done, total=total)
        )
    if as_json:
        print_json({"accounts": [o.to_json() for o in outcomes]})
    elif not outcomes:
        say("no active accounts to poll")
    else:
        grid = table(
            "user", "platform", "account", "result", "new", "requests", "note",
            right=("new", "requests"), wide=("account", "note"),
        )  # fmt: skip
        for o in outcomes:
            note = o.error or (f"{o.baseline} older likes kept as baseline" if o.baseline else "")
            add_row(grid, o.user, o.platform, o.handle, o.status, o.stored, o.requests, note)
        console.print(grid)
    if any(o.status in ("failed", "auth_expired") for o in outcomes):
        raise typer.Exit(1)


@cli.command()
def link(
    ctx: typer.Context,
    platform: Annotated[str, typer.Argument(help="Connector name, e.g. github.")],
    user: Annotated[str, typer.Option(help="The trickle user the account belongs to.")],
    flow: Annotated[
        str | None,
        typer.Option(
            help=(
                "How to link: device, oauth2, oauth1, registered-app, login, app-password or "
                "token. Default: the "
                "platform's preferred flow whose app is set in [connectors.NAME] "
                "(`trickle connectors list` shows them)."
            ),
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(help="The account's server, for platforms of many (mastodon.social)."),
    ] = None,
    no_browser: Annotated[
        bool,
        typer.Option(
            "--no-browser",
            help=(
                "Do not open a browser: print the address to open anywhere, and paste back "
                "the address the browser is sent to (for a machine without one)."
            ),
        ),
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(
            help=(
                "Link with an access token obtained elsewhere. Asked for (hidden) when the "
                "token flow is chosen, so it stays out of shell history."
            ),
            envvar="TRICKLE_LINK_TOKEN",
            show_envvar=True,
        ),
    ] = None,
    refresh_token: Annotated[
        str | None,
        typer.Option(
            help="The refresh token that came with --token, if any.",
            envvar="TRICKLE_LINK_REFRESH_TOKEN",
            show_envvar=True,
        ),
    ] = None,
    expires_in: Annotated[
        int | None,
        typer.Option(help="Seconds until --token expires, if it does.", min=1),
    ] = None,
    session_file: Annotated[
        Path | None,
        typer.Option(
            help="Link with a session file made by the platform's own client, for platforms "
            "linked by logging in (`trickle connectors list` says which read one).",
            dir_okay=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Link a platform account to a user: through the platform's OAuth flow in the browser,
    a code entered at the platform (device flow), a token made there, or the platform's own
    login."""
    from trickle.connectors.flows import SessionLogin, TokenImport
    from trickle.linking.service import MAX_SESSION_FILE_BYTES, Linker, normalize_server
    from trickle.linking.terminal import Terminal, run_flow

    app = _app(ctx)
    connector = app.connector(platform)
    if connector.legacy is not None:
        warn(connector.legacy.warning(connector.display_name))
    linker = Linker(app)
    host = normalize_server(server) if server is not None else None
    if (refresh_token is not None or expires_in is not None) and token is None:
        raise TrickleError("--refresh-token and --expires-in go with --token")
    if token is not None and flow not in (None, "token"):
        raise TrickleError(f"--token links with the token flow, not {flow!r}")
    if session_file is not None:
        if token is not None or flow not in (None, SessionLogin.kind):
            raise TrickleError("--session-file links with the login flow, alone")
        try:
            with session_file.open("rb") as handle:
                data = handle.read(MAX_SESSION_FILE_BYTES + 1)
        except OSError as exc:
            raise TrickleError(
                f"cannot read {session_file}: {exc.strerror or type(exc).__name__}"
            ) from None
        with waiting(f"asking {connector.display_name} whose session this is"):
            result = Linker(app).import_session_file(platform, user, data)
        _print_link(result, as_json=as_json)
        return
    chosen = linker.flow(platform, "token" if token is not None else flow)
    if connector.multi_host and host is None and not chosen.finds_server:
        raise TrickleError(f"{platform} accounts live on servers: say which with --server")
    preferred = linker.flows(platform)[0]
    if flow is None and token is None and chosen is not preferred and not as_json:
        warn(f"{linker.setup_needed(connector, preferred)}; linking with {chosen.describe()}")
    if isinstance(chosen, TokenImport):
        if token is None:
            if chosen.how:
                say(f"{connector.display_name}: {chosen.how}")
            token = _ask_secret(f"{connector.display_name} token for {user}: ")
        with waiting(f"asking {connector.display_name} whose token this is"):
            result = linker.import_token(
                platform,
                user,
                token,
                refresh_token=refresh_token,
                expires_in=expires_in,
                host=host,
            )
    else:
        terminal = Terminal(
            # soft_wrap: a URL is printed whole, on one line, for the terminal to wrap: a
            # line break rich inserted would be copied with it
            show=lambda text: err_console.print(literal(text), soft_wrap=True),
            ask=_ask_line,
            countdown=countdown,
            open_browser=None if no_browser else _open_browser,
            ask_secret=_ask_password,
        )
        result = run_flow(
            linker,
            chosen,
            platform,
            user,
            terminal=terminal,
            settings=app.settings.linking,
            host=host,
        )
    _print_link(result, as_json=as_json)


def _print_link(result: Any, *, as_json: bool) -> None:
    claimed = result.claim
    if as_json:
        print_json(
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
    say(
        f"{verb} {result.platform} account {result.handle} (id {result.platform_user_id}) to "
        f"{result.user}; the first poll records the likes made before now as the baseline"
    )
    if claimed.posted_shares:
        paid = ", ".join(_money(v, c) for c, v in sorted(claimed.posted_minor.items()))
        say(
            f"{claimed.posted_shares} reserved share(s) for this creator paid to "
            f"{result.user}: {paid}"
        )


@cli.command()
def unlink(
    ctx: typer.Context,
    platform: Annotated[str, typer.Argument(help="Connector name, e.g. github.")],
    user: Annotated[str, typer.Option(help="The trickle user the account belongs to.")],
    account: Annotated[
        str | None,
        typer.Option(help="The account's handle or id, when the user has several there."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Unlink a platform account: revoke its token where the platform allows, delete the
    stored credentials, stop polling. Its flattrs, shares and the ledger are kept."""
    from trickle.linking.service import Linker

    app = _app(ctx)
    with waiting(f"unlinking the {platform} account"):
        result = Linker(app).unlink(platform, user, account)
    if as_json:
        print_json(
            {
                "account_id": result.account_id,
                "platform": result.platform,
                "handle": result.handle,
                "user": result.user,
                "revoked": result.revoked,
                "note": result.note,
            }
        )
        return
    say(
        f"unlinked {platform} account {result.handle} from {result.user}: no longer polled, "
        "its flattrs and ledger kept"
    )
    (say if result.revoked else warn)(result.note)


def _open_browser(url: str) -> bool:
    """Open ``url`` in the user's browser (``$BROWSER`` if set); False when there is none."""
    import webbrowser

    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


def _ask_line(prompt: str) -> str:
    """Read one line from the user; Ctrl-C is an interruption, end of input an error."""
    try:
        return input(prompt)
    except KeyboardInterrupt:
        err_console.print()
        raise typer.Exit(130) from None
    except EOFError:
        raise TrickleError("no input: nothing was linked") from None


def _ask_password(prompt: str) -> str:
    """Read a password without echoing it (see :func:`_ask_hidden`)."""
    return _ask_hidden(prompt, "no password given: nothing was linked")


def _ask_secret(prompt: str) -> str:
    """Read a token without echoing it (see :func:`_ask_hidden`)."""
    return _ask_hidden(prompt, "no token given (use --token, or TRICKLE_LINK_TOKEN)")


def _ask_hidden(prompt: str, missing: str) -> str:
    """Read a secret without echoing it; Ctrl-C is an interruption, end of input the error
    ``missing``."""
    try:
        return _read_hidden(prompt)
    except KeyboardInterrupt:
        err_console.print()
        raise typer.Exit(130) from None
    except EOFError:
        raise TrickleError(missing) from None


def _read_hidden(prompt: str) -> str:
    """One line, hidden at a terminal (getpass). Piped in (``echo "$TOKEN" | trickle link``),
    it is read from standard input as it is, without getpass's warning that it may be
    echoed: there is no terminal to echo it to."""
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(prompt)
    err_console.print(literal(prompt), end="")
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line:
        raise EOFError
    return line.rstrip("\r\n")


# ---------------------------------------------------------------------------
# users


@users_cli.command("add")
def users_add(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(help="Unique user name: letters and digits of any language, . _ @ -."),
    ],
    budget: Annotated[str, typer.Option(help="Monthly budget, e.g. 5.00 or '5 EUR'.")],
    currency: Annotated[
        str | None, typer.Option(help="ISO 4217 currency (default: the configured one).")
    ] = None,
) -> None:
    """Add a user with a monthly budget."""
    from trickle.core.users import add_user

    app = _app(ctx)
    amount = parse_money(
        budget, currency or app.settings.currency, maximum=MAX_BUDGET_MINOR, what="budget"
    )
    if currency and amount.currency != currency.strip().upper():
        raise TrickleError(f"--budget is in {amount.currency} but --currency says {currency!r}")
    with app.db.session() as session:
        added = add_user(session, name, amount)
    say(f"added {added.name} with a monthly budget of {amount}")


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
        new = parse_money(amount, user.currency, maximum=MAX_BUDGET_MINOR, what="budget")
        old = set_budget(session, user.name, new)
    say(f"{user.name}: budget {old} -> {new}")


@users_cli.command("deactivate")
def users_deactivate(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Stop a user's trickle: their accounts are no longer polled, so no later month spends
    anything of theirs. Their wallet, shares and ledger are kept; shares for them as a
    creator are still paid to them."""
    from trickle.core.users import set_active

    app = _app(ctx)
    with app.db.session() as session:
        stopped = set_active(session, name, False)
    say(
        f"deactivated {name}: {stopped} account(s) no longer polled; wallet and ledger kept "
        f"(`trickle users activate {name}` resumes)"
    )


@users_cli.command("activate")
def users_activate(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Resume a deactivated user: their accounts are polled again from now (likes made
    while they were deactivated count as their new baseline's, never paid)."""
    from trickle.core.users import set_active

    app = _app(ctx)
    with app.db.session() as session:
        resumed = set_active(session, name, True)
    say(f"activated {name}: {resumed} account(s) polled again")


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
    from trickle.core.money import MAX_DEPOSIT_MINOR
    from trickle.core.users import fund, get_user

    app = _app(ctx)
    with app.db.session() as session:
        user = get_user(session, name)
        money = parse_money(amount, user.currency, maximum=MAX_DEPOSIT_MINOR, what="deposit")
        credited = fund(session, user.name, money, reference)
    if credited:
        say(f"credited {money} to {user.name}")
    else:
        say(f"reference {reference!r} was already credited: nothing changed")


@users_cli.command("login-link")
def users_login_link(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    minutes: Annotated[
        int | None,
        typer.Option(help="How long the link works (default: [web] login_link_minutes).", min=1),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Make a one-time link that signs NAME in on the web side; give it to them privately."""
    from datetime import timedelta

    from trickle.core.clock import clock
    from trickle.core.logins import create_login_link

    app = _app(ctx)
    web = app.settings.web
    lifetime = timedelta(minutes=minutes or web.login_link_minutes)
    with app.db.session() as session:
        token = create_login_link(session, name, lifetime)
    url = f"{web.base_url}/login/{token}"
    expires = clock.now() + lifetime
    if as_json:
        print_json({"user": name, "url": url, "expires_at": iso_utc(expires)})
        return
    say(url)
    err_console.print(literal(f"signs {name} in once, until {_when(expires)} UTC"))


@users_cli.command("operator")
def users_operator(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    remove: Annotated[bool, typer.Option("--remove", help="Take the right away.")] = False,
) -> None:
    """Let NAME open the web side's admin page (or, with --remove, no longer)."""
    from trickle.core.users import set_operator

    app = _app(ctx)
    with app.db.session() as session:
        user = set_operator(session, name, not remove)
    say(f"{user.name} {'is no longer' if remove else 'is now'} an operator")


@users_cli.command("list")
def users_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Users with budget, balance, reserved and available funds."""
    from trickle.core.users import list_users

    app = _app(ctx)
    with app.db.reader() as session:
        rows = list_users(session)
    if as_json:
        print_json(
            {
                "users": [
                    {
                        "user": r.name,
                        "currency": r.currency,
                        "budget_minor": r.budget_minor,
                        "balance_minor": r.balance_minor,
                        "reserved_minor": r.reserved_minor,
                        "available_minor": r.available_minor,
                        "active": r.active,
                    }
                    for r in rows
                ]
            }
        )
        return
    if not rows:
        say("no users yet: `trickle users add NAME --budget 5`")
        return
    grid = table(
        "user", "budget", "balance", "reserved", "available",
        right=("budget", "balance", "reserved", "available"),
    )  # fmt: skip
    for r in rows:
        add_row(
            grid,
            r.name if r.active else Text.assemble(literal(r.name), styled(" (deactivated)", "dim")),
            _money(r.budget_minor, r.currency),
            _money(r.balance_minor, r.currency),
            _money(r.reserved_minor, r.currency),
            _money(r.available_minor, r.currency),
        )
    console.print(grid)


# ---------------------------------------------------------------------------
# accounts, connectors, events


@accounts_cli.command("list")
def accounts_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Linked accounts with their poll status, and whether the key can open them."""
    from trickle.core.credentials import SecretKeyError
    from trickle.core.models import LinkedAccount, User

    app = _app(ctx)
    try:
        key_id: str | None = app.box.key_id
    except SecretKeyError:
        key_id = None
    with app.db.reader() as session:
        rows = session.execute(
            select(LinkedAccount, User.name)
            .join(User, User.id == LinkedAccount.user_id)
            .order_by(User.name, LinkedAccount.platform, LinkedAccount.handle)
        ).all()

    def credentials(account: LinkedAccount) -> str:
        if account.credentials is None:
            return "none"
        if key_id is None or account.key_id is None:
            return "unknown"
        return "readable" if account.key_id == key_id else "unreadable"

    if as_json:
        print_json(
            {
                "accounts": [
                    {
                        "user": name,
                        "platform": a.platform,
                        "handle": a.handle,
                        "platform_user_id": a.platform_user_id,
                        "status": a.status,
                        "credentials": credentials(a),
                        "linked_at": iso_utc(a.linked_at),
                        "last_poll_at": iso_utc(a.last_poll_at),
                        "last_success_at": iso_utc(a.last_success_at),
                        "next_poll_at": iso_utc(a.next_poll_at),
                        "failures": a.failures,
                        "last_error": a.last_error,
                    }
                    for a, name in rows
                ]
            }
        )
        return
    if not rows:
        say("no linked accounts: `trickle link github --user NAME`")
        return
    grid = table(
        "user", "platform", "account", "status", "last poll", "next poll", "note",
        wide=("account", "note"),
    )  # fmt: skip
    for a, name in rows:
        status: str | Text = a.status
        if a.status == "auth_expired":
            status = styled("relink needed", "red")
        elif credentials(a) == "unreadable":
            status = styled("key missing", "red")
        note = a.last_error or "" if a.failures or a.status != "active" else ""
        if credentials(a) == "unreadable":
            note = f"credentials sealed with key {a.key_id}, not the configured {key_id}"
        add_row(
            grid,
            name,
            a.platform,
            a.handle,
            status,
            _when(a.last_poll_at),
            _when(a.next_poll_at),
            literal(note[:200]),
        )
    console.print(grid)


@connectors_cli.command("list")
def connectors_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Installed connectors: their quality tier, what they still need from the operator, and
    why any cannot load."""
    from trickle.connectors.registry import Registry

    state = _state(ctx)
    registry = state.registry or Registry.from_entry_points()
    infos = registry.describe(state.settings.connectors)
    if as_json:
        print_json(
            {
                "connectors": [
                    {
                        "name": i.name,
                        "source": i.source,
                        "available": i.available,
                        "tier": i.tier.value if i.tier else None,
                        "quality_rules": list(i.quality_rules),
                        "unmet_rules": list(i.unmet_rules),
                        "capabilities": list(i.capabilities),
                        "not_applicable": list(i.not_applicable),
                        "exemptions": dict(i.exemptions or {}),
                        "problems": list(i.problems),
                        "missing_settings": list(i.missing_settings),
                        "settings_error": i.settings_error,
                        "ready_to_link": bool(i.ready_flows),
                        "legacy": (
                            {
                                "closed_on": i.legacy.closed_on.isoformat(),
                                "note": i.legacy.note,
                            }
                            if i.legacy
                            else None
                        ),
                        "link_flows": [
                            {
                                "kind": f.kind,
                                "description": f.description,
                                "ready": f.kind in i.ready_flows,
                                "missing_settings": list(f.missing_settings),
                            }
                            for f in i.flows
                        ],
                        "error": i.error,
                    }
                    for i in infos
                ]
            }
        )
        return
    grid = table(
        "name", "status", "link with", "tier", "source",
        wide=("status", "link with", "tier", "source"),
    )  # fmt: skip
    for i in infos:
        status = _connector_status(i)
        if i.legacy is not None:
            status.append_text(styled(f"; {i.legacy.summary()}", "yellow"))
        tier = literal(i.tier.value if i.tier else "-")
        if i.unmet_rules or i.problems:
            wrong = [*i.unmet_rules, *i.problems]
            tier.append_text(styled(f" (claimed; unmet: {', '.join(wrong)})", "red"))
        if i.not_applicable:
            tier.append_text(
                literal(f"; not offered by the platform: {', '.join(i.not_applicable)}")
            )
        if i.exemptions:
            tier.append_text(literal(f"; exempt: {', '.join(i.exemptions)}"))
        add_row(grid, i.name, status, _link_flows(i), tier, i.source)
    console.print(grid)


def _link_flows(info: Any) -> Text:
    """The flows an account can be linked with, and what each of the others still needs."""
    shown = Text()
    for flow in info.flows:
        if shown:
            shown.append_text(literal(", "))
        if flow.kind in info.ready_flows:
            shown.append_text(styled(flow.kind, "green"))
        else:
            needs = ", ".join(flow.missing_settings)
            shown.append_text(styled(f"{flow.kind} (needs {needs})" if needs else flow.kind, "dim"))
    return shown or literal("-")


def _connector_status(info: Any) -> Text:
    if not info.available:
        return Text.assemble(styled("unavailable", "red"), literal(f": {info.error}"))
    if info.settings_error:
        return Text.assemble(styled("bad settings", "red"), literal(f": {info.settings_error}"))
    if info.missing_settings:
        keys = ", ".join(info.missing_settings)
        return Text.assemble(
            styled("needs settings", "yellow"), literal(f": [connectors.{info.name}] {keys}")
        )
    return literal("ready")


class ImportFormat(StrEnum):
    """What ``events import`` reads."""

    JSONL = "jsonl"
    INSTAGRAM = "instagram"


@events_cli.command("import")
def events_import(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="JSON Lines file, one normalized like per line; with --format instagram, "
            "an Instagram data export (its .zip, its folder, or liked_posts.json or "
            "saved_posts.json)."
        ),
    ],
    file_format: Annotated[
        ImportFormat, typer.Option("--format", help="What FILE is.")
    ] = ImportFormat.JSONL,
    user: Annotated[
        str | None, typer.Option(help="Whose likes an export holds (--format instagram).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Import likes from a JSON Lines file or a platform's data export; one bad line (or
    entry) and nothing is stored."""
    from trickle.core.importer import import_events, read_lines

    if file_format is ImportFormat.INSTAGRAM:
        _import_instagram_export(ctx, file, user, as_json)
        return
    if user is not None:
        raise TrickleError("--user goes with --format instagram: JSON Lines name their users")
    app = _app(ctx)
    with progress(f"importing {file}") as update:
        try:
            lines = []
            for line in read_lines(file):
                lines.append(line)
                if len(lines) % 10_000 == 0:
                    update(len(lines), description=f"reading {file}: {len(lines)} lines")
        except UnicodeDecodeError as exc:
            raise TrickleError(f"cannot read {file}: not UTF-8 text ({exc.reason})") from None
        except OSError as exc:
            raise TrickleError(
                f"cannot read {file}: {exc.strerror or type(exc).__name__}"
            ) from None
        update(0, total=len(lines), description=f"storing {len(lines)} lines")
        with app.db.session() as session:
            result = import_events(session, lines)
        update(len(lines))
    if as_json:
        print_json(
            {"lines": result.lines, "stored": result.stored, "duplicates": result.duplicates}
        )
    else:
        say(
            f"{file}: {result.lines} event(s), {result.stored} stored, "
            f"{result.duplicates} already known"
        )


def _import_instagram_export(
    ctx: typer.Context, path: Path, user: str | None, as_json: bool
) -> None:
    from trickle.connectors.instagram.archive import read_export
    from trickle.connectors.instagram.export import import_export

    if user is None:
        raise TrickleError("--format instagram needs --user: whose export it is")
    app = _app(ctx)
    with progress(f"importing {path}") as update:
        files = read_export(path)
        update(0, description=f"storing the likes of {len(files)} file(s)")
        with app.db.session() as session:
            result = import_export(session, files, user)
    if as_json:
        print_json(
            {
                "files": [f.name for f in files],
                "entries": result.entries,
                "stored": result.stored,
                "duplicates": result.duplicates,
                "baseline": result.baseline,
                "baseline_at": iso_utc(result.baseline_at),
            }
        )
    else:
        say(
            f"{path}: {result.entries} like(s) and save(s) in {len(files)} file(s), "
            f"{result.stored} stored, {result.duplicates} already known, {result.baseline} "
            f"made before {iso_utc(result.baseline_at)} kept as baseline (never paid)"
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
        print_json(
            {
                "platform": platform,
                "creator_id": creator_id,
                "user": owner.name,
                "newly_claimed": result.newly_claimed,
                "posted_shares": result.posted_shares,
                "posted_minor": result.posted_minor,
                "returned_shares": result.returned_shares,
            }
        )
        return
    paid = ", ".join(_money(v, c) for c, v in sorted(result.posted_minor.items())) or "nothing"
    say(
        f"{platform} creator {creator_id} belongs to {owner.name}: "
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
        print_json({"returned_shares": result.shares, "returned_minor": result.returned_minor})
        return
    total = ", ".join(_money(v, c) for c, v in sorted(result.returned_minor.items())) or "nothing"
    say(f"{result.shares} expired reservation(s) returned to their likers ({total})")


@ledger_cli.command("check")
def ledger_check(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Verify the ledger's invariants; exits 1 and shows the offending rows if one fails."""
    from trickle.core.invariants import CHECKS, check_ledger

    app = _app(ctx)
    with waiting("checking the ledger"), app.db.reader() as session:
        violations = check_ledger(session)
    if as_json:
        print_json(
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
        say(f"ledger ok: {len(CHECKS)} invariants hold")
    else:
        for v in violations:
            err_console.print(Text.assemble(styled("FAILED", "red"), " ", literal(v.rule)))
            grid = table(*v.columns, wide=v.columns)
            for row in v.rows:
                add_row(grid, *row)
            err_console.print(grid)
    if violations:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------
# settle, report


@cli.command()
def settle(
    ctx: typer.Context,
    month: Annotated[str, typer.Argument(help="The month to settle, YYYY-MM.")],
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Show what settling would do (the real plan, then rolled back); change nothing.",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Settle even if accounts lag or the grace period runs."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Settle a month: split each user's budget over their flattrs and post it to the ledger."""
    from trickle.core.reports import dry_run_report, month_report

    period = _period(month)
    app = _app(ctx)
    settlement = app.settlement()
    currency = app.settings.currency
    if dry_run:
        with waiting(f"planning {period} (nothing is written)"):
            report = dry_run_report(settlement, period, force=force, currency=currency)
        closing = settlement.closing(period)
        if as_json:
            print_json({"result": "dry_run", "closed": closing.closed, **report.to_json()})
            return
        if report.status == "settled":
            say(f"{period} is already settled; nothing would change")
            return
        if not closing.closed:
            warn(f"settling without --force would refuse: {closing.explain()}")
        _print_month(report, title=f"{period}: what settling now would do (nothing written)")
        return
    with progress(f"settling {period}") as update:

        def step(stage: str, done: int, total: int) -> None:
            what = "planning" if stage == "plan" else f"posting {total} user(s)"
            update(done, total=total, description=f"{period}: {what}")

        outcome = settlement.settle(period, force=force, progress=step)
    report = month_report(app.db, period, app.settle_options, currency=currency)
    if as_json:
        print_json({"result": outcome.status, **report.to_json()})
        return
    if outcome.status == "already_settled":
        say(f"{period} was already settled: nothing changed")
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
    with waiting(f"reading {period}"):
        data = month_report(
            app.db, period, app.settle_options, currency=app.settings.currency, user=user
        )
    if as_json:
        print_json(data.to_json())
        return
    if user is not None:
        _print_statement(data, user)
    elif data.projected:
        _print_month(data, title=f"{period} (open: what settling it now would do)")
    else:
        _print_month(data, title=f"{period} ({data.status})")


def _print_month(report: MonthReport, *, title: str) -> None:
    from trickle.core.reports import SHARE_STATES

    if report.assumes_settled:
        months = ", ".join(str(p) for p in report.assumes_settled)
        say(f"(assumes {months} settle(s) first: their spending decides what is left)")
    if not report.users:
        say(f"{title}: no flattrs counted")
        return
    money = ("budget", "spent", "fee", *SHARE_STATES)
    grid = table("user", "flattrs", *money, title=title, right=("flattrs", *money))
    for u in report.users[:MAX_TABLE_ROWS]:
        add_row(
            grid,
            u.user,
            u.flattrs,
            _money(u.budget_minor, u.currency),
            _money(u.spent_minor, u.currency),
            _money(u.fee_minor, u.currency),
            *(_money(u.minor_in(state), u.currency) for state in SHARE_STATES),
        )
    console.print(grid)
    if len(report.users) > MAX_TABLE_ROWS:
        say(f"... and {len(report.users) - MAX_TABLE_ROWS} more users (--json has all)")
    for currency, t in sorted(report.totals().items()):
        parts = " + ".join(f"{state} {_money(t[state], currency)}" for state in SHARE_STATES)
        say(
            f"total {currency}: spent {_money(t['spent'], currency)} = {parts} "
            f"+ fees {_money(t['fees'], currency)}"
        )


def _print_statement(report: MonthReport, user: str) -> None:
    line = report.users[0] if report.users else None
    would = "would be " if report.projected else ""
    grid = table(
        "item", "creator", "share", "state",
        title=f"{line.user if line else user}, {report.period} ({report.status})",
        right=("share",),
        wide=("item", "creator", "state"),
    )  # fmt: skip
    for s in report.shares:
        if s.state == "reserved":
            state = f"{would}reserved until {_when(s.expires_at)} (creator not on trickle)"
        elif s.state == "returned":
            state = f"returned {_when(s.resolved_at)}"
        else:
            state = f"{would}paid to {s.recipient}"
        add_row(
            grid,
            s.item_url,
            f"{s.creator_handle} ({s.platform} {s.creator_id})",
            _money(s.amount_minor, s.currency),
            state,
        )
    console.print(grid)
    if line is not None:
        say(
            f"{line.flattrs} flattr(s); {would}spent {_money(line.spent_minor, line.currency)} "
            f"of a {_money(line.budget_minor, line.currency)} budget, "
            f"fee {_money(line.fee_minor, line.currency)}"
        )
    else:
        say("no counted flattrs this month: nothing spent")


# ---------------------------------------------------------------------------
# entry point


def main(argv: Sequence[str] | None = None, *, registry: Registry | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.
    ``registry`` gives the connectors when they are not the installed ones:
    a test runs ``trickle run`` with a test-only connector, which has no entry point.

    Every way a command can end is turned into an exit status here: a message for what
    went wrong, never a traceback (``--verbose`` adds one for trickle's own bugs).
    """
    from typer._click.exceptions import ClickException

    args = list(sys.argv[1:] if argv is None else argv)
    state = State(registry=registry)
    try:
        status = cli(args=args, prog_name="trickle", obj=state, standalone_mode=False)
        return status if isinstance(status, int) else 0
    except ClickException as exc:  # usage errors: exit status 2, with the usage line
        exc.show()
        return exc.exit_code
    except typer.Abort:  # Ctrl-C at a prompt
        err_console.print()
        error("interrupted")
        return 130
    except KeyboardInterrupt:
        err_console.print()
        error("interrupted")
        return 130
    except TrickleError as exc:
        error(exc)
        return 1
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        detail = str(orig) if orig is not None else str(exc)
        error(detail.splitlines()[0] if detail else type(exc).__name__, label="database error")
        return 1
    except OSError as exc:
        if exc.errno == errno.EPIPE:  # `trickle ... | head`: the reader left, nothing to say
            return 1
        where = f": {exc.filename}" if exc.filename else ""
        error(f"{exc.strerror or type(exc).__name__}{where}")
        return 1
    except Exception as exc:  # a bug in trickle: say so, briefly, and how to see more
        error(
            f"{type(exc).__name__}: {exc} (a bug in trickle; "
            f"{'the traceback follows' if state.verbose else 'run with --verbose to see where'})",
            label="internal error",
        )
        if state.verbose:
            err_console.print(literal("".join(traceback.format_exception(exc))))
        return 1
    finally:
        state.close()
