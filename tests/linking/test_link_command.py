"""`trickle link` end to end, from a terminal: the real command in a subprocess, a fake GitHub.

The device flow is completed by the test acting as the user at GitHub's
device page; the browser flow by a browser (``$BROWSER``, a small script
here) that follows GitHub's redirect to trickle's loopback listener, or by
the user pasting the address back with ``--no-browser``. Everything the
command prints, its debug logs included, is searched for every secret in
play: no token, code, verifier or client secret may appear.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.fernet import Fernet

from trickle.cli import main
from trickle.connectors.github.fake import FakeGitHub

CLIENT_ID = "Iv1.e2e0trickle0app0"
CLIENT_SECRET = "e2e-client-s3cret-0123456789abcdef"
LOGIN = "octocat"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_user(LOGIN, token="ghp_personal_token_of_octocat_0123")
        fake.oauth.register_app(CLIENT_ID, CLIENT_SECRET)
        fake.oauth.device_interval = 1  # GitHub's is 5 s; the test need not wait that long
        yield fake


@pytest.fixture
def terminal(
    tmp_path: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> dict[str, str]:
    """The environment of an operator's shell: a database, a key, trickle's GitHub app."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TRICKLE_") and key != "BROWSER"
    }
    env.update(
        TRICKLE_DATABASE_URL=f"sqlite:///{tmp_path / 'trickle.db'}",
        TRICKLE_SECRET_KEY=Fernet.generate_key().decode(),
        TRICKLE_CONNECTORS__GITHUB__BASE_URL=github.base_url,
        TRICKLE_CONNECTORS__GITHUB__OAUTH_BASE_URL=github.base_url,
        TRICKLE_CONNECTORS__GITHUB__CLIENT_ID=CLIENT_ID,
        TRICKLE_CONNECTORS__GITHUB__CLIENT_SECRET=CLIENT_SECRET,
    )
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("TRICKLE_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("TRICKLE_"):
            monkeypatch.setenv(key, value)
    assert main(["init"]) == 0
    assert main(["users", "add", "alice", "--budget", "5"]) == 0
    return env


def trickle(env: dict[str, str], *argv: str, **kwargs: object) -> subprocess.Popen[str]:
    """``trickle --verbose ARGV`` as a shell would start it (debug logs on stderr)."""
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "trickle", "--verbose", *argv],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def read_until(stream: object, pattern: str, seen: list[str]) -> re.Match[str]:
    """Read ``stream`` line by line (keeping them in ``seen``) until one matches."""
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError(f"the command ended without printing {pattern!r}:\n{''.join(seen)}")


def finish(command: subprocess.Popen[str], typed: str | None = None) -> tuple[str, str]:
    """Type ``typed`` (if any) and wait for the command: (the rest of its stdout, stderr).
    Unlike ``communicate()``, this keeps what ``read_until`` already buffered of stderr."""
    assert command.stdin is not None
    assert command.stdout is not None
    assert command.stderr is not None
    if typed is not None:
        command.stdin.write(typed)
    command.stdin.close()
    command.wait(timeout=60)
    return command.stdout.read(), command.stderr.read()


def secrets_in_play(github: FakeGitHub, *more: str) -> list[str]:
    """Every secret the flows handled: the app's secret, every token the fake issued (and the
    personal one), the codes, PKCE verifiers and device codes it saw. (The code challenge is
    no secret: it is in the authorization URL the user is shown.)"""
    oauth = github.oauth
    values = [CLIENT_SECRET, github.users[LOGIN].token, *more]
    values += [issued.token for issued in oauth.issued]
    values += list(oauth._codes)
    values += list(oauth._devices)
    values += oauth.verifiers
    return [v for v in values if v]


def assert_no_secret(output: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in output, f"a secret ({secret[:6]}...) was printed"


def accounts(env: dict[str, str]) -> list[dict[str, object]]:
    listed = subprocess.run(
        [sys.executable, "-m", "trickle", "accounts", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: list[dict[str, object]] = json.loads(listed.stdout)["accounts"]
    return result


# ---------------------------------------------------------------------------
# The device flow: GitHub's default in a terminal


def test_trickle_link_github_completes_the_device_flow(
    terminal: dict[str, str], github: FakeGitHub
) -> None:
    command = trickle(terminal, "link", "github", "--user", "alice", "--no-browser")
    seen: list[str] = []
    shown = read_until(
        command.stderr, r"Open (\S+) and enter the code ([A-Z0-9]{4}-[A-Z0-9]{4})", seen
    )

    assert shown[1] == f"{github.base_url}/login/device"
    github.oauth.enter_code(shown[2], LOGIN)  # the user, at GitHub's device page
    out, err = finish(command)

    assert command.returncode == 0, "".join(seen) + err
    assert "linked github account octocat" in " ".join(out.split())
    [account] = accounts(terminal)
    assert (account["handle"], account["status"], account["credentials"]) == (
        LOGIN,
        "active",
        "readable",
    )
    assert_no_secret("".join(seen) + out + err, secrets_in_play(github))


def test_a_device_code_the_user_refuses_links_nothing(
    terminal: dict[str, str], github: FakeGitHub
) -> None:
    command = trickle(terminal, "link", "github", "--user", "alice", "--no-browser")
    seen: list[str] = []
    shown = read_until(command.stderr, r"enter the code ([A-Z0-9]{4}-[A-Z0-9]{4})", seen)
    github.oauth.deny_code(shown[1])
    out, err = finish(command)

    assert command.returncode == 1
    assert "you did not allow trickle to read your github likes" in err
    assert "Traceback" not in err
    assert accounts(terminal) == []
    assert_no_secret("".join(seen) + out + err, secrets_in_play(github))


# ---------------------------------------------------------------------------
# The browser flow: a loopback listener, or the address pasted back


def browser_script(tmp_path: Path) -> str:
    """A ``$BROWSER`` that opens the authorization page and follows where GitHub sends it,
    which is trickle's listener; it notes the address it was sent back to."""
    script = tmp_path / "browser.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            import requests

            answer = requests.get(sys.argv[1], allow_redirects=False, timeout=10)
            back = answer.headers["Location"]
            open({str(tmp_path / "sent-back.txt")!r}, "w").write(back)
            sys.exit(0 if requests.get(back, timeout=10).status_code == 200 else 1)
            """
        )
    )
    return f"{sys.executable} {script} %s"


def test_the_browser_flow_completes_through_the_loopback_listener(
    terminal: dict[str, str], github: FakeGitHub, tmp_path: Path
) -> None:
    github.oauth.sign_in(LOGIN)
    env = {**terminal, "BROWSER": browser_script(tmp_path)}

    command = trickle(env, "link", "github", "--user", "alice", "--flow", "oauth2")
    out, err = finish(command)

    assert command.returncode == 0, err
    assert "linked github account octocat" in " ".join(out.split())
    sent_back = (tmp_path / "sent-back.txt").read_text()
    assert re.match(r"http://127\.0\.0\.1:\d+/callback\?", sent_back)
    code = parse_qs(urlsplit(sent_back).query)["code"][0]
    assert [a["handle"] for a in accounts(terminal)] == [LOGIN]
    assert_no_secret(out + err, secrets_in_play(github, code))


def test_without_a_browser_the_address_is_pasted_back(
    terminal: dict[str, str], github: FakeGitHub
) -> None:
    github.oauth.sign_in(LOGIN)
    command = trickle(
        terminal, "link", "github", "--user", "alice", "--flow", "oauth2", "--no-browser"
    )
    seen: list[str] = []
    url = read_until(
        command.stderr, rf"^({re.escape(github.base_url)}/login/oauth/authorize\S+)", seen
    )[1]

    # On another machine's browser: GitHub sends it to 127.0.0.1, which does not load there.
    sent_back = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
    out, err = finish(command, sent_back + "\n")

    assert command.returncode == 0, "".join(seen) + err
    assert "may not load" in " ".join(("".join(seen) + err).split())
    assert [a["handle"] for a in accounts(terminal)] == [LOGIN]
    code = parse_qs(urlsplit(sent_back).query)["code"][0]
    assert_no_secret("".join(seen) + out + err, secrets_in_play(github, code))


def test_an_address_pasted_twice_links_once_and_the_second_is_refused(
    terminal: dict[str, str], github: FakeGitHub
) -> None:
    github.oauth.sign_in(LOGIN)
    first = trickle(
        terminal, "link", "github", "--user", "alice", "--flow", "oauth2", "--no-browser"
    )
    seen: list[str] = []
    url = read_until(
        first.stderr, rf"^({re.escape(github.base_url)}/login/oauth/authorize\S+)", seen
    )[1]
    sent_back = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
    assert finish(first, sent_back + "\n")[0]

    again = trickle(
        terminal, "link", "github", "--user", "alice", "--flow", "oauth2", "--no-browser"
    )
    read_until(again.stderr, r"^http", [])
    out, err = finish(again, sent_back + "\n")

    assert again.returncode == 1
    assert "not begun here, was already used, or has expired" in " ".join(err.split())
    code = parse_qs(urlsplit(sent_back).query)["code"][0]
    assert_no_secret(out + err, secrets_in_play(github, code))


def test_a_loopback_port_that_is_taken_is_a_clear_error(
    terminal: dict[str, str], github: FakeGitHub
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**terminal, "TRICKLE_LINKING__LOOPBACK_PORT": str(port), "BROWSER": "true %s"}
        command = trickle(env, "link", "github", "--user", "alice", "--flow", "oauth2")
        _, err = finish(command)

    assert command.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken by another program" in " ".join(err.split())
    assert "Traceback" not in err
    assert accounts(terminal) == []


# ---------------------------------------------------------------------------
# Any OAuth 2 platform: the fake authorization server, a connector that is no entry point

TEST_CONNECTORS = textwrap.dedent(
    """
    import sys

    from trickle.cli import main
    from trickle.connectors.registry import Registry
    from trickle.testing.oauth_connector import FakeOAuthConnector

    sys.exit(main(sys.argv[1:], registry=Registry.of([FakeOAuthConnector])))
    """
)


LINK_FAKE_OAUTH = ("link", "fake_oauth", "--user", "alice", "--flow", "oauth2")


def test_the_oauth2_code_flow_completes_from_a_terminal_against_the_fake_server(
    terminal: dict[str, str], tmp_path: Path
) -> None:
    from trickle.testing.fake_device import FakeDeviceServer

    with FakeDeviceServer() as server:
        server.add_account("ann-at-fake")
        server.register_client(
            "trickle-app", CLIENT_SECRET, redirect_uris=("http://127.0.0.1/callback",)
        )
        server.sign_in("ann-at-fake")
        env = {
            **terminal,
            "BROWSER": browser_script(tmp_path),
            "TRICKLE_CONNECTORS__FAKE_OAUTH__BASE_URL": server.base_url,
            "TRICKLE_CONNECTORS__FAKE_OAUTH__OAUTH_BASE_URL": server.base_url,
            "TRICKLE_CONNECTORS__FAKE_OAUTH__CLIENT_ID": "trickle-app",
            "TRICKLE_CONNECTORS__FAKE_OAUTH__CLIENT_SECRET": CLIENT_SECRET,
        }
        command = subprocess.Popen(
            [sys.executable, "-c", TEST_CONNECTORS, "--verbose", *LINK_FAKE_OAUTH],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, err = finish(command)

        assert command.returncode == 0, err
        assert "linked fake_oauth account ann-at-fake" in " ".join(out.split())
        sent_back = (tmp_path / "sent-back.txt").read_text()
        query = parse_qs(urlsplit(sent_back).query)
        code = query["code"][0]
        [issued] = server.codes
        assert (issued.code, issued.spent) == (code, True)  # exchanged, with its verifier
        assert issued.challenge is not None
        tokens = [*server._access, *server._refresh]
        assert tokens
        assert_no_secret(out + err, [CLIENT_SECRET, code, *tokens])
