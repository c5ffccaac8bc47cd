"""The `trickle` command, end to end through `main(argv)`, on a SQLite file and a fake GitHub."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from rich.console import Console

from tests.conftest import postgres_base_url, postgres_schema
from trickle import output
from trickle.cli import main
from trickle.connectors.github.fake import FakeGitHub, FakeRepo
from trickle.core.clock import clock
from trickle.testing.fakeplatform import FakeResponse

TOKEN = "ghp_cliTestToken0123456789abcdef"


@pytest.fixture
def github():
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, github: FakeGitHub, restore_logging: None
) -> Path:
    """A working directory with its own database, key and fake GitHub."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "TRICKLE_DATABASE_URL",
        "TRICKLE_SECRET_KEY",
        "TRICKLE_CONFIG",
        "TRICKLE_LOG_FORMAT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRICKLE_CONNECTORS__GITHUB__BASE_URL", github.base_url)
    monkeypatch.setenv("TRICKLE_FEE_BPS", "100")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_init_creates_the_database_and_a_private_key_file_and_is_safe_twice(env, capsys):
    code, out, _ = run(capsys, "init")
    assert code == 0
    assert "created (schema" in out
    key = env / "trickle.key"
    assert key.stat().st_mode & 0o777 == 0o600
    Fernet(key.read_bytes().strip())  # a usable key

    code, out, _ = run(capsys, "init")
    assert code == 0
    assert "already at schema" in out
    assert key.read_bytes().strip()


def test_commands_on_an_uninitialized_database_say_to_run_init(env, capsys):
    code, _, err = run(capsys, "settle", "2026-10")
    assert code == 1
    assert "trickle init" in err


def test_a_typo_in_a_command_is_a_usage_error(env, capsys):
    code, _, err = run(capsys, "setle", "2026-10")
    assert code == 2
    assert "No such command" in err


def test_a_bad_month_is_a_usage_error(env, capsys):
    run(capsys, "init")
    code, _, err = run(capsys, "settle", "October")
    assert code == 2
    assert "YYYY-MM" in err


def test_every_command_has_help(capsys):
    for argv in (
        [],
        ["users"],
        ["users", "add"],
        ["accounts", "list"],
        ["events", "import"],
        ["settle"],
        ["report"],
        ["link"],
        ["unlink"],
        ["users", "deactivate"],
        ["users", "activate"],
        ["poll"],
        ["run"],
        ["ledger", "check"],
        ["creators", "claim"],
        ["connectors", "list"],
        ["expire"],
        ["demo"],
        ["init"],
    ):
        code, out, _ = run(capsys, *argv, "--help")
        assert code == 0, argv
        assert "Usage" in out


def test_users_are_added_funded_budgeted_and_listed(env, capsys):
    run(capsys, "init")
    assert run(capsys, "users", "add", "alice", "--budget", "5")[0] == 0
    assert run(capsys, "users", "fund", "alice", "20.00 EUR", "--reference", "r1")[0] == 0
    code, out, _ = run(capsys, "users", "fund", "alice", "20.00", "--reference", "r1")
    assert code == 0
    assert "already credited" in out
    assert run(capsys, "users", "budget", "alice", "7.50")[0] == 0

    listed = run_json(capsys, "users", "list")

    assert listed == {
        "users": [
            {
                "user": "alice",
                "currency": "EUR",
                "budget_minor": 750,
                "balance_minor": 2000,
                "reserved_minor": 0,
                "available_minor": 2000,
                "active": True,
            }
        ]
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["users", "add", "bob", "--budget", "4.999"], "more decimals than EUR allows"),
        (["users", "add", "bob", "--budget", "-1"], "must not be negative"),
        (["users", "add", "bob", "--budget", "5", "--currency", "XYZ"], "unknown currency"),
        (["users", "fund", "nobody", "5"], "no user called 'nobody'"),
        (["users", "add", "alice", "--budget", "1"], "already exists"),
    ],
)
def test_bad_user_input_is_a_clear_error(env, capsys, argv, message):
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "5")
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert message in " ".join(err.split())


def _write_events(path: Path, lines: list[dict | str]) -> Path:
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    )
    return path


def _event(user: str, item: str, creator: str = "77", liked_at: str = "2026-10-05T10:00:00Z"):
    return {
        "user": user,
        "platform": "github",
        "item_id": item,
        "item_url": f"https://github.com/x/{item}",
        "creator_id": creator,
        "creator_handle": f"c{creator}",
        "liked_at": liked_at,
    }


def test_a_month_is_imported_settled_once_and_reported(env, capsys):
    clock.set(datetime(2026, 10, 1, tzinfo=UTC), frozen=True)
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    run(capsys, "users", "fund", "alice", "10")
    clock.set(datetime(2026, 11, 3, tzinfo=UTC), frozen=True)
    events = _write_events(env / "likes.jsonl", [_event("alice", f"r{i}") for i in range(3)])
    assert run_json(capsys, "events", "import", str(events)) == {
        "lines": 3,
        "stored": 3,
        "duplicates": 0,
    }
    projected = run_json(capsys, "report", "2026-10")
    assert projected["status"] == "open"
    assert {s["state"] for s in projected["shares"]} == {"reserved"}  # creator not on trickle

    first = run_json(capsys, "settle", "2026-10")
    ledger_after_first = run_json(capsys, "ledger", "check")
    second = run_json(capsys, "settle", "2026-10")

    assert first["result"] == "settled"
    assert second["result"] == "already_settled"
    assert first["users"] == second["users"]
    assert first["shares"] == second["shares"]
    assert first["users"] == [
        {
            "user": "alice",
            "currency": "EUR",
            "flattrs": 3,
            "budget_minor": 300,
            "available_minor": 1000,
            "spent_minor": 300,
            "fee_minor": 3,
            "paid_minor": 0,
            "reserved_minor": 297,
            "returned_minor": 0,
        }
    ]
    assert projected["users"] == first["users"]
    assert projected["shares"] == first["shares"]
    assert sum(s["amount_minor"] for s in first["shares"]) == 297
    assert {s["state"] for s in first["shares"]} == {"reserved"}
    assert [s["amount_minor"] for s in projected["shares"]] == [
        s["amount_minor"] for s in first["shares"]
    ]
    assert ledger_after_first["ok"] is True
    code, out, _ = run(capsys, "settle", "2026-10")
    assert "already settled: nothing changed" in out
    code, out, _ = run(capsys, "report", "2026-10", "--user", "alice")
    assert code == 0
    assert "reserved until" in out


def test_a_dry_run_writes_nothing(env, capsys):
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    run(capsys, "users", "fund", "alice", "10")
    _write_events(env / "likes.jsonl", [_event("alice", "r1")])
    run(capsys, "events", "import", "likes.jsonl")

    dry = run_json(capsys, "settle", "2026-10", "--dry-run")

    assert dry["result"] == "dry_run"
    assert dry["status"] == "open"
    assert run_json(capsys, "report", "2026-10")["status"] == "open"


def test_a_bad_import_line_stores_nothing_and_names_the_line(env, capsys):
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    events = _write_events(
        env / "likes.jsonl",
        [_event("alice", "r1"), "{not json", _event("zed", "r2"), _event("alice", "r3")],
    )

    code, _, err = run(capsys, "events", "import", str(events))

    assert code == 1
    assert "line 2: not JSON" in err
    assert "line 3: no user called 'zed'" in err
    assert run_json(capsys, "report", "2026-10")["shares"] == []


def test_a_missing_import_file_is_a_clear_error(env, capsys):
    run(capsys, "init")
    code, _, err = run(capsys, "events", "import", "nope.jsonl")
    assert code == 1
    assert "cannot read nope.jsonl" in err


INSTAGRAM_EXPORT = Path(__file__).parent / "connectors" / "instagram" / "fixtures" / "export"


def _zip_export(path: Path, folder: Path) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(folder.rglob("*.json")):
            archive.write(file, file.relative_to(folder).as_posix())
    return path


def test_an_instagram_export_is_imported_from_its_zip_for_the_user_named(env, capsys):
    clock.set(datetime(2026, 9, 1, tzinfo=UTC), frozen=True)
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    clock.set(datetime(2026, 10, 15, tzinfo=UTC), frozen=True)
    export = _zip_export(env / "instagram-alice.zip", INSTAGRAM_EXPORT / "current")
    args = ("events", "import", str(export), "--format", "instagram", "--user", "alice")
    assert run_json(capsys, *args) == {
        "files": [
            "your_instagram_activity/likes/liked_posts.json",
            "your_instagram_activity/saved/saved_posts.json",
        ],
        "entries": 5,
        "stored": 3,
        "duplicates": 1,
        "baseline": 1,
        "baseline_at": "2026-09-01T00:00:00Z",
    }
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert "0 stored, 4 already known, 1 made before 2026-09-01T00:00:00Z kept as baseline" in out


def test_a_bad_instagram_export_entry_is_shown_literally_and_nothing_is_stored(env, capsys):
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    liked = env / "liked_posts.json"
    entry = {
        "title": "[bold red]ada[/]",
        "string_list_data": [{"href": "https://www.instagram.com/p/X1/", "timestamp": 1}],
    }
    liked.write_text(json.dumps({"likes_media_likes": [entry]}))
    code, _, err = run(
        capsys, "events", "import", str(liked), "--format", "instagram", "--user", "alice"
    )
    assert code == 1
    assert "liked_posts.json entry 1: the owner '[bold red]ada[/]' is not an Instagram" in err
    assert "Traceback" not in err
    assert run_json(capsys, "report", "2026-10")["shares"] == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--format", "instagram"], "--format instagram needs --user"),
        (["--user", "alice"], "--user goes with --format instagram"),
    ],
)
def test_events_import_says_which_options_go_together(env, capsys, options, message):
    run(capsys, "init")
    code, _, err = run(capsys, "events", "import", "export.zip", *options)
    assert code == 1
    assert message in err


def test_linking_polling_and_listing_accounts_never_show_the_token(env, capsys, github):
    clock.set(datetime(2026, 10, 1, tzinfo=UTC), frozen=True)
    github.add_user("alice-gh", TOKEN, user_id=4242)
    old = FakeRepo(1, "old", "someone", 500)
    github.star("alice-gh", old, datetime(2026, 9, 1, tzinfo=UTC))
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")

    linked = run_json(capsys, "link", "github", "--user", "alice", "--token", TOKEN)
    baseline = run_json(capsys, "poll")
    github.star("alice-gh", FakeRepo(2, "new", "someone", 500), datetime(2026, 10, 2, tzinfo=UTC))
    polled = run_json(capsys, "poll", "--user", "alice", "--platform", "github")
    accounts = run_json(capsys, "accounts", "list")
    human = [run(capsys, "accounts", "list")[1], run(capsys, "poll")[1]]

    assert linked["platform_user_id"] == "4242"
    assert linked["handle"] == "alice-gh"
    assert baseline["accounts"][0]["status"] == "baseline"
    assert baseline["accounts"][0]["baseline"] == 1
    assert polled["accounts"][0]["status"] == "ok"
    assert polled["accounts"][0]["stored"] == 1
    assert accounts["accounts"][0]["status"] == "active"
    for text in [json.dumps(x) for x in (linked, baseline, polled, accounts)] + human:
        assert TOKEN not in text
    assert TOKEN.encode() not in (env / "trickle.db").read_bytes()


def test_a_revoked_token_is_reported_and_the_account_needs_relinking(env, capsys, github):
    github.add_user("alice-gh", TOKEN, user_id=4242)
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    run(capsys, "link", "github", "--user", "alice", "--token", TOKEN)
    github.revoke("alice-gh")

    code, out, err = run(capsys, "poll", "--json")
    polled = json.loads(out)
    accounts = run_json(capsys, "accounts", "list")

    assert code == 1  # an operator's script notices: someone must relink
    assert polled["accounts"][0]["status"] == "auth_expired"
    assert TOKEN not in json.dumps(polled) + err
    assert accounts["accounts"][0]["status"] == "auth_expired"


def _linked(capsys, github, *logins: str) -> None:
    """An initialized database with one user per login, each with that GitHub account."""
    run(capsys, "init")
    for n, login in enumerate(logins):
        github.add_user(login, f"{TOKEN}{n}", user_id=4242 + n)
        run(capsys, "users", "add", login, "--budget", "3")
        run(capsys, "link", "github", "--user", login, "--token", f"{TOKEN}{n}")


def test_poll_exits_0_when_an_account_is_only_rate_limited(env, capsys, github):
    _linked(capsys, github, "alice", "bob")
    github.rate_limit("alice", datetime.now(UTC) + timedelta(minutes=30))

    code, out, err = run(capsys, "poll", "--json")

    assert code == 0, err
    statuses = [(a["user"], a["status"]) for a in json.loads(out)["accounts"]]
    assert statuses == [("alice", "rate_limited"), ("bob", "baseline")]
    assert all(a["next_poll_at"].endswith("Z") for a in json.loads(out)["accounts"])


def test_poll_shows_progress_on_a_terminal_and_leaves_stdout_to_the_json(
    env, capsys, github, monkeypatch
):
    _linked(capsys, github, "alice", "bob")
    terminal = io.StringIO()
    monkeypatch.setattr(
        output, "err_console", Console(file=terminal, force_terminal=True, width=80)
    )

    code, out, _ = run(capsys, "poll", "--json")

    assert code == 0
    assert len(json.loads(out)["accounts"]) == 2  # stdout is the JSON document alone
    assert "polling" in terminal.getvalue()


FORGED = "nope\n2026-10-15 12:00:00,000 INFO trickle.polling: alice paid carol\x1b[2J"


@pytest.mark.parametrize(
    ("argv", "environment", "as_json"),
    [
        ([], {}, False),
        (["--log-format", "json"], {}, True),
        ([], {"TRICKLE_LOG_FORMAT": "json"}, True),
    ],
    ids=["text", "--log-format json", "TRICKLE_LOG_FORMAT=json"],
)
def test_a_platforms_error_message_cannot_forge_a_log_line(
    env, capsys, github, monkeypatch, argv, environment, as_json
):
    _linked(capsys, github, "alice")
    github.tamper("alice", lambda request, response: FakeResponse(422, {"message": FORGED}))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    code, _, err = run(capsys, *argv, "poll")

    assert code == 1
    lines = err.splitlines()
    [failing] = [line for line in lines if "failing" in line]
    assert "\x1b" not in err
    assert not any(line.startswith("2026-10-15 12:00:00,000 INFO") for line in lines)
    if as_json:
        records = [json.loads(line) for line in lines]  # every line is a record
        [record] = [r for r in records if "failing" in r["message"]]
        assert record["level"] == "WARNING"
        assert record["message"].endswith(
            "422 nope\\n2026-10-15 12:00:00,000 INFO trickle.polling: alice paid carol\\x1b[2J"
        )
    else:
        assert " WARNING trickle.polling: github account alice of alice failing: " in failing
        assert failing.endswith(
            "422 nope\\n2026-10-15 12:00:00,000 INFO trickle.polling: alice paid carol\\x1b[2J"
        )


def test_linking_with_a_refused_token_is_a_clear_error(env, capsys, github):
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    code, _, err = run(capsys, "link", "github", "--user", "alice", "--token", "ghp_wrong")
    assert code == 1
    assert "relink" in err
    assert "ghp_wrong" not in err


def test_linking_an_unknown_platform_lists_the_installed_ones(env, capsys):
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    code, _, err = run(capsys, "link", "myspace", "--user", "alice", "--token", "t")
    assert code == 1
    assert "no connector for platform 'myspace'" in err
    assert "github" in err


def test_creators_are_claimed_and_reserved_shares_expire(env, capsys, monkeypatch):
    monkeypatch.setenv("TRICKLE_ESCROW_DAYS", "10")
    clock.set(datetime(2026, 10, 1, tzinfo=UTC), frozen=True)
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    run(capsys, "users", "add", "erin", "--budget", "0")
    run(capsys, "users", "fund", "alice", "10")
    clock.set(datetime(2026, 10, 20, tzinfo=UTC), frozen=True)
    _write_events(env / "likes.jsonl", [_event("alice", "r1", "erin-id"), _event("alice", "r2")])
    run(capsys, "events", "import", "likes.jsonl")
    clock.set(datetime(2026, 11, 5, tzinfo=UTC), frozen=True)
    run(capsys, "settle", "2026-10", "--force")

    claimed = run_json(capsys, "creators", "claim", "github", "erin-id", "--user", "erin")
    clock.set(datetime(2026, 11, 16, tzinfo=UTC), frozen=True)
    expired = run_json(capsys, "expire")
    users = {u["user"]: u for u in run_json(capsys, "users", "list")["users"]}

    assert claimed["posted_shares"] == 1
    assert expired["returned_shares"] == 1
    assert users["erin"]["balance_minor"] == claimed["posted_minor"]["EUR"]
    assert users["alice"]["reserved_minor"] == 0
    assert run(capsys, "ledger", "check")[0] == 0


def test_ledger_check_fails_with_the_offending_rows(env, capsys):
    import sqlite3

    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    run(capsys, "users", "fund", "alice", "10")
    with sqlite3.connect(env / "trickle.db") as connection:
        connection.execute("UPDATE ledger_entries SET amount_minor = amount_minor + 1 WHERE id = 1")

    code, _, err = run(capsys, "ledger", "check")

    assert code == 1
    assert "FAILED every transaction sums to zero per currency" in " ".join(err.split())


def test_connectors_list_shows_github_with_its_tier(capsys):
    listed = run_json(capsys, "connectors", "list")
    github = next(c for c in listed["connectors"] if c["name"] == "github")
    assert github["available"] is True
    assert github["tier"] == "gold"


def test_a_legacy_connector_is_listed_with_the_date_its_api_closed_and_linking_warns(
    env, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "250")
    from datetime import date

    from trickle.connectors.quality import Legacy
    from trickle.connectors.registry import Registry
    from trickle.testing.oauth1_connector import FakeOAuth1Connector

    class Closed(FakeOAuth1Connector):
        name = "closed"
        legacy = Legacy(date(2018, 6, 15), "set base_url to a server that still speaks it")

    registry = Registry.of([Closed, FakeOAuth1Connector])
    assert main(["connectors", "list", "--json"], registry=registry) == 0
    listed = {c["name"]: c for c in json.loads(capsys.readouterr().out)["connectors"]}
    assert listed["closed"]["legacy"] == {
        "closed_on": "2018-06-15",
        "note": "set base_url to a server that still speaks it",
    }
    assert listed["fake_oauth1"]["legacy"] is None
    assert main(["connectors", "list"], registry=registry) == 0
    human = " ".join(capsys.readouterr().out.split())
    assert "legacy: its API closed on 2018-06-15" in human
    run(capsys, "init")
    run(capsys, "users", "add", "ann", "--budget", "3")

    code = main(["link", "closed", "--user", "ann"], registry=registry)

    err = " ".join(capsys.readouterr().err.split())
    assert code == 1  # no consumer key is set: nothing can be linked
    assert (
        "warning: Fake OAuth 1.0a platform's public API closed on 2018-06-15: set base_url to a "
        "server that still speaks it"
    ) in err


def test_a_registry_given_to_main_replaces_the_installed_connectors(env, capsys):
    from trickle.connectors.registry import Registry
    from trickle.testing.oauth_connector import FakeOAuthConnector

    code = main(["connectors", "list", "--json"], registry=Registry.of([FakeOAuthConnector]))
    out, err = capsys.readouterr()
    assert code == 0, err
    listed = json.loads(out)["connectors"]
    assert [(c["name"], c["tier"]) for c in listed] == [("fake_oauth", "gold")]
    assert listed[0]["missing_settings"] == ["client_id", "client_secret"]


def test_a_bad_config_file_is_a_clear_error(env, capsys):
    (env / "trickle.toml").write_text("escrow_days = 'lots'\n")
    code, _, err = run(capsys, "users", "list")
    assert code == 1
    assert "escrow_days" in err


def test_the_month_must_be_closed_unless_forced(env, capsys, github):
    github.add_user("alice-gh", TOKEN, user_id=4242)
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    clock.set(datetime(2026, 10, 1, tzinfo=UTC), frozen=True)
    run(capsys, "link", "github", "--user", "alice", "--token", TOKEN)
    run(capsys, "poll")
    clock.set(datetime(2026, 11, 5, tzinfo=UTC), frozen=True)

    code, _, err = run(capsys, "settle", "2026-10")

    assert code == 1
    assert "alice/github:alice-gh" in " ".join(err.split())
    assert "--force" in err
    assert run(capsys, "settle", "2026-10", "--force")[0] == 0


# ---------------------------------------------------------------------------
# What an operator meets in the first hour (issue 8)


def test_version_is_printed(capsys):
    from trickle import __version__

    code, out, _ = run(capsys, "--version")
    assert (code, out.strip()) == (0, f"trickle {__version__}")


def test_help_texts_are_shown_as_written(capsys):
    _, out, _ = run(capsys, "run", "--help")
    assert "[worker] processes" in " ".join(out.split())
    _, out, _ = run(capsys, "link", "--help")
    text = " ".join(out.split())
    assert "whose app is set in [connectors.NAME]" in text
    token_help = text.split("--token", 1)[1].split("--json", 1)[0]
    assert "required" not in token_help  # it is asked for when omitted


def test_shell_completion_is_offered(capsys):
    _, out, _ = run(capsys, "--help")
    assert "--install-completion" in out


def test_a_name_full_of_markup_is_refused_as_typed(env, capsys):
    run(capsys, "init")
    code, _, err = run(capsys, "users", "add", "[bold]x[/bold]", "--budget", "1")
    assert code == 1
    assert "bad user name '[bold]x[/bold]'" in err


def test_a_name_with_an_accent_is_a_name(env, capsys):
    run(capsys, "init")
    assert run(capsys, "users", "add", "élodie", "--budget", "1")[0] == 0
    assert run_json(capsys, "users", "list")["users"][0]["user"] == "élodie"


def test_platform_text_is_printed_literally_everywhere(env, capsys, github, monkeypatch):
    """A handle like ``crash[/]`` made report, accounts list and link crash every time, and
    an escape sequence reached the terminal."""
    monkeypatch.setenv("COLUMNS", "200")
    clock.set(datetime(2026, 10, 1, tzinfo=UTC), frozen=True)
    github.add_user("crash[/]", TOKEN, user_id=4242)
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    run(capsys, "users", "fund", "alice", "10")
    code, out, err = run(capsys, "link", "github", "--user", "alice", "--token", TOKEN)
    assert code == 0, err
    assert "crash[/]" in out
    run(capsys, "poll")
    evil = FakeRepo(7, "tool\x1b[31m[red]x[/red]", "[bold]maker", 999)
    github.star("crash[/]", evil, datetime(2026, 10, 2, tzinfo=UTC))
    clock.set(datetime(2026, 10, 3, tzinfo=UTC), frozen=True)
    run(capsys, "poll")

    for argv in (
        ("accounts", "list"),
        ("report", "2026-10"),
        ("report", "2026-10", "--user", "alice"),
    ):
        code, out, err = run(capsys, *argv)
        assert code == 0, (argv, err)
        assert "\x1b" not in out
    assert "crash[/]" in run(capsys, "accounts", "list")[1]
    statement = run(capsys, "report", "2026-10", "--user", "alice")[1]
    assert "[red]x[/red]" in statement
    assert "\\x1b" in statement


def test_long_urls_are_folded_not_cut_at_80_columns(env, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    clock.set(datetime(2026, 10, 1, tzinfo=UTC), frozen=True)
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    run(capsys, "users", "fund", "alice", "10")
    clock.set(datetime(2026, 10, 20, tzinfo=UTC), frozen=True)
    event = _event("alice", "r1")
    event["item_url"] = "https://github.com/a-rather-long-organisation-name/and-a-long-repo-name"
    run(capsys, "events", "import", str(_write_events(env / "likes.jsonl", [event])))

    _, out, _ = run(capsys, "report", "2026-10", "--user", "alice")

    assert "…" not in out
    first_column = "".join(
        row.split("│")[1].strip() for row in out.splitlines() if row.startswith("│")
    )
    assert event["item_url"] in first_column


def test_a_dry_run_refuses_a_month_the_settle_would_refuse(env, capsys):
    clock.set(datetime(2026, 9, 1, tzinfo=UTC), frozen=True)
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    run(capsys, "users", "fund", "alice", "10")
    clock.set(datetime(2026, 11, 20, tzinfo=UTC), frozen=True)
    lines = [_event("alice", "r1", liked_at="2026-09-05T10:00:00Z"), _event("alice", "r2")]
    run(capsys, "events", "import", str(_write_events(env / "likes.jsonl", lines)))

    code, out, err = run(capsys, "settle", "2026-10", "--dry-run", "--json")

    assert code == 1
    assert out == ""
    assert "settle 2026-09 first" in err
    code, out, _ = run(capsys, "settle", "2026-09", "--dry-run")
    assert code == 0
    header = " ".join(out.split())
    for column in ("spent", "fee", "paid", "reserved", "returned"):
        assert column in header


def test_init_masks_the_database_password(env, capsys, monkeypatch):
    base = postgres_base_url()
    if base is None:
        pytest.skip("needs TRICKLE_TEST_POSTGRES_URL")
    with postgres_schema(base) as url:
        with_password = url.replace("postgres@", "postgres:hunter2-secret@", 1)
        monkeypatch.setenv("TRICKLE_DATABASE_URL", with_password)
        code, out, err = run(capsys, "init")
        assert code == 0, err
        assert "hunter2-secret" not in out + err
        assert "***" in out


def test_a_new_database_file_is_readable_by_its_owner_only(env, capsys):
    run(capsys, "init")
    assert (env / "trickle.db").stat().st_mode & 0o777 == 0o600


def test_init_will_not_create_a_key_over_credentials_sealed_with_a_lost_one(env, capsys, github):
    github.add_user("alice-gh", TOKEN, user_id=4242)
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    run(capsys, "link", "github", "--user", "alice", "--token", TOKEN)
    (env / "trickle.key").unlink()

    code, _, err = run(capsys, "init")

    assert code == 1
    assert "1 linked account(s) hold credentials sealed with one" in " ".join(err.split())
    assert not (env / "trickle.key").exists()
    code, _, err = run(capsys, "init", "--new-key")
    assert code == 0
    assert "1 linked account(s) were sealed with the lost key" in " ".join(err.split())
    (account,) = run_json(capsys, "accounts", "list")["accounts"]
    assert account["status"] == "auth_expired"
    assert run(capsys, "link", "github", "--user", "alice", "--token", TOKEN)[0] == 0
    (account,) = run_json(capsys, "accounts", "list")["accounts"]
    assert (account["status"], account["credentials"]) == ("active", "readable")


def test_accounts_sealed_with_another_key_are_shown_as_unreadable(env, capsys, github, monkeypatch):
    github.add_user("alice-gh", TOKEN, user_id=4242)
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    run(capsys, "link", "github", "--user", "alice", "--token", TOKEN)
    monkeypatch.setenv("TRICKLE_SECRET_KEY", Fernet.generate_key().decode())

    (account,) = run_json(capsys, "accounts", "list")["accounts"]
    code, _, err = run(capsys, "init")
    _, out, _ = run(capsys, "accounts", "list")

    assert account["credentials"] == "unreadable"
    assert code == 0
    assert "1 linked account(s) hold credentials this key cannot open" in " ".join(err.split())
    assert "key missing" in out


def test_ctrl_c_at_the_token_prompt_exits_130(env, capsys, monkeypatch):
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")

    def interrupted(prompt: str) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("trickle.cli._read_hidden", interrupted)
    assert run(capsys, "link", "github", "--user", "alice")[0] == 130


def test_the_token_prompt_names_the_platform_and_links(env, capsys, monkeypatch, github):
    github.add_user("alice-gh", TOKEN, user_id=4242)
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    prompts = []

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        return TOKEN

    monkeypatch.setattr("trickle.cli._read_hidden", answer)
    assert run(capsys, "link", "github", "--user", "alice")[0] == 0
    assert prompts == ["GitHub token for alice: "]


def test_a_token_piped_in_links_without_a_word_about_echoing(env, capsys, monkeypatch, github):
    github.add_user("alice-gh", TOKEN, user_id=4242)
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    monkeypatch.setattr("sys.stdin", io.StringIO(TOKEN + "\n"))

    code, _, err = run(capsys, "link", "github", "--user", "alice")

    assert code == 0, err
    assert "echoed" not in err
    assert TOKEN not in err


def test_nothing_piped_in_for_the_token_is_a_clear_error(env, capsys, monkeypatch):
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    code, _, err = run(capsys, "link", "github", "--user", "alice")

    assert code == 1
    assert "no token given (use --token, or TRICKLE_LINK_TOKEN)" in err
    assert "echoed" not in err


def test_an_unreachable_platform_when_linking_says_where_it_looked(env, capsys, monkeypatch):
    monkeypatch.setenv("TRICKLE_CONNECTORS__GITHUB__BASE_URL", "http://127.0.0.1:9")
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    code, _, err = run(capsys, "link", "github", "--user", "alice", "--token", TOKEN)
    assert code == 1
    text = " ".join(err.split())
    assert "could not reach GitHub at http://127.0.0.1:9" in text
    assert "base_url" in text


def test_a_short_refused_token_does_not_garble_the_error(env, capsys, github):
    """``--token t`` turned the URL into ``h******ps://api.gi***hub.com``."""
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    code, _, err = run(capsys, "link", "github", "--user", "alice", "--token", "t")
    assert code == 1
    assert f"GET {github.base_url}/user: 401 Bad credentials" in " ".join(err.split())
    assert "***" not in err


def _bad_inputs(env: Path) -> list[tuple[list[str], dict[str, str], str]]:
    """(argv, environment, what the error says) for every bad input issue 8 lists."""
    directory = env / "a-directory"
    directory.mkdir(exist_ok=True)
    binary = env / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    huge = "99999999999999999999999"
    return [
        (["users", "budget", "alice", huge], {}, "at most"),
        (["users", "fund", "alice", huge], {}, "at most"),
        (["users", "add", "bob", "--budget", huge], {}, "at most"),
        (["users", "fund", "alice", "5", "--reference", ""], {}, "cannot be empty"),
        (["users", "add", "[bold]x[/bold]", "--budget", "1"], {}, "[bold]x[/bold]"),
        (["users", "add", "x" * 5000, "--budget", "1"], {}, "bad user name"),
        (["users", "add", "bob", "--budget", "1", "--currency", "X" * 5000], {}, "currency"),
        (["users", "fund", "alice", "1" * 5000], {}, "too large"),
        (["settle", "1969-12"], {}, "no such month"),
        (["report", "9999-12"], {}, "no such month"),
        (["events", "import", "missing.jsonl"], {}, "cannot read"),
        (["events", "import", str(directory)], {}, "cannot read"),
        (["events", "import", str(binary)], {}, "not UTF-8"),
        (["link", "github", "--user", "alice", "--token", "t\r\nX-Evil: 1"], {}, "control"),
        (["link", "github", "--user", "nobody", "--token", TOKEN], {}, "no user called"),
        (["users", "list"], {"TRICKLE_DATABASE_URL": "sqlite://"}, "in-memory"),
        (["users", "list"], {"TRICKLE_DATABASE_URL": "sqlite:///:memory:"}, "in-memory"),
        (["users", "list"], {"TRICKLE_DATABASE_URL": "nonsense://x"}, "database URL"),
        (["init"], {"TRICKLE_DATABASE_URL": f"sqlite:///{env}/no/such/dir/t.db"}, "does not exist"),
        (
            ["link", "github", "--user", "alice", "--token", TOKEN],
            {"TRICKLE_SECRET_KEY_FILE": str(directory)},
            "cannot read the key file",
        ),
        (
            ["link", "github", "--user", "alice", "--token", TOKEN],
            {"TRICKLE_SECRET_KEY": "not-a-fernet-key"},
            "not a Fernet key",
        ),
        (["demo", "--keep", str(binary / "sub")], {}, "Not a directory"),
        (["users", "list"], {"TRICKLE_CONFIG": str(binary)}, "TOML"),
        (["users", "list"], {"TRICKLE_WORKER__THREADS": "many"}, "threads"),
        (["settle", "2026-10", "--dry-run"], {}, ""),  # not an error: nothing to settle
    ]


def test_no_command_ends_in_a_traceback_whatever_is_typed(env, capsys, monkeypatch):
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    for argv, environment, message in _bad_inputs(env):
        with monkeypatch.context() as patched:
            for name, value in environment.items():
                patched.setenv(name, value)
            code, out, err = run(capsys, *argv)
        said = " ".join((out + err).split())
        assert "Traceback" not in said, argv
        assert "internal error" not in said, (argv, said)
        assert message in said, (argv[:3], said[:300])
        if message:
            assert code in (1, 2), argv


# ---------------------------------------------------------------------------
# linking flows, unlinking, deactivating


def test_without_an_oauth_app_github_links_with_a_token_and_says_what_the_app_would_need(
    env, capsys, monkeypatch, github
):
    github.add_user("alice-gh", TOKEN, user_id=4242)
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    monkeypatch.setattr("trickle.cli._read_hidden", lambda prompt: TOKEN)

    code, out, err = run(capsys, "link", "github", "--user", "alice")

    assert code == 0, err
    text = " ".join(err.split())
    assert "registered with GitHub at https://github.com/settings/applications/new" in text
    assert "[connectors.github] client_id" in text
    assert "linking with a token made at the platform" in text
    assert "personal access token at https://github.com/settings/tokens" in " ".join(out.split())
    assert "linked github account alice-gh" in " ".join(out.split())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--refresh-token", "rt-123"], "--refresh-token and --expires-in go with --token"),
        (["--expires-in", "60"], "--refresh-token and --expires-in go with --token"),
        (["--token", TOKEN, "--flow", "device"], "--token links with the token flow"),
        (["--flow", "oauth1"], "cannot be linked with 'oauth1'"),
        (["--flow", "device"], "needs trickle's app registered with GitHub"),
        (["--server", "https://example.org/path"], "is not a server"),
    ],
)
def test_a_link_asked_for_wrongly_is_a_clear_error(env, capsys, argv, message):
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    code, _, err = run(capsys, "link", "github", "--user", "alice", *argv)
    assert code == 1
    assert message in " ".join(err.split())
    assert "Traceback" not in err


def test_unlinking_stops_polling_keeps_history_and_says_who_revokes_the_token(env, capsys, github):
    github.add_user("alice-gh", TOKEN, user_id=4242)
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    run(capsys, "link", "github", "--user", "alice", "--token", TOKEN)

    code, out, err = run(capsys, "unlink", "github", "--user", "alice")

    assert code == 0, err
    assert "unlinked github account alice-gh from alice" in " ".join(out.split())
    assert "the token was made at GitHub: revoke it there" in " ".join(err.split())
    [account] = run_json(capsys, "accounts", "list")["accounts"]
    assert (account["status"], account["credentials"]) == ("unlinked", "none")
    assert run_json(capsys, "poll")["accounts"] == []
    code, _, err = run(capsys, "unlink", "github", "--user", "alice")
    assert code == 1
    assert "alice has no linked github account" in err

    relinked = run_json(capsys, "link", "github", "--user", "alice", "--token", TOKEN)
    assert relinked["relinked"] is True
    assert run_json(capsys, "poll")["accounts"][0]["status"] == "baseline"


def test_a_deactivated_user_is_not_polled_until_activated(env, capsys, github):
    github.add_user("alice-gh", TOKEN, user_id=4242)
    run(capsys, "init")
    run(capsys, "users", "add", "alice", "--budget", "3")
    run(capsys, "link", "github", "--user", "alice", "--token", TOKEN)

    code, out, _ = run(capsys, "users", "deactivate", "alice")
    assert code == 0
    assert "deactivated alice: 1 account(s) no longer polled" in " ".join(out.split())
    assert run_json(capsys, "poll")["accounts"] == []
    assert run_json(capsys, "users", "list")["users"][0]["active"] is False
    assert "(deactivated)" in run(capsys, "users", "list")[1]
    code, _, err = run(capsys, "link", "github", "--user", "alice", "--token", TOKEN)
    assert code == 1
    assert "alice is deactivated" in err
    assert run(capsys, "users", "deactivate", "alice")[0] == 1

    code, out, _ = run(capsys, "users", "activate", "alice")
    assert code == 0
    assert "activated alice: 1 account(s) polled again" in out
    assert run_json(capsys, "poll")["accounts"][0]["status"] == "baseline"


def test_connectors_list_says_which_flows_can_link_now(env, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # every installed connector is a row: none wraps
    listed = run_json(capsys, "connectors", "list")
    github = next(c for c in listed["connectors"] if c["name"] == "github")
    assert github["ready_to_link"] is True
    assert [(f["kind"], f["ready"], f["missing_settings"]) for f in github["link_flows"]] == [
        ("device", False, ["client_id"]),
        ("oauth2", False, ["client_id", "client_secret"]),
        ("token", True, []),
    ]
    monkeypatch.setenv("TRICKLE_CONNECTORS__GITHUB__CLIENT_ID", "Iv1.0123456789abcdef")
    listed = run_json(capsys, "connectors", "list")
    github = next(c for c in listed["connectors"] if c["name"] == "github")
    assert [f["kind"] for f in github["link_flows"] if f["ready"]] == ["device", "token"]
    monkeypatch.setenv("COLUMNS", "240")  # one line per cell, however many connectors
    human = run(capsys, "connectors", "list")[1]
    assert "link with" in " ".join(human.split())
    assert "(needs" in human
    assert "client_secret)," in human
