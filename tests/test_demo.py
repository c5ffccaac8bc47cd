"""`trickle demo` plays a settled month through the real code paths, offline."""

from __future__ import annotations

import logging
import re
import sqlite3
from pathlib import Path

import pytest
import requests
from rich.console import Console

from trickle.demo import default_platforms, run_demo
from trickle.testing.demo_platform import DemoPlatformError, available_demo_platforms


def test_the_demo_settles_a_month_whose_shares_add_up(tmp_path: Path) -> None:
    console = Console(record=True, width=120, markup=False)  # as the command line prints

    run_demo(console, keep=tmp_path, seed=3, platforms=["github"])

    text = console.export_text()
    assert re.search(
        r"linked github:alice \(id \d+\) to alice: code [A-Z]{4}-[A-Z]{4} entered", text
    )
    assert "linked github:bob (id 1002) to bob: approved in the browser (PKCE)" in text
    assert "linked github:dave (id 1004) to dave: a personal access token pasted" in text
    assert "[bold]" not in text  # styled, not markup printed literally
    assert re.search(r"who paid whom in \d{4}-\d{2}", text)
    assert "adds up" in text
    assert "DOES NOT ADD UP" not in text
    assert "all invariants hold" in text
    assert re.search(r"ada joins and links github:ada: [1-9]\d* reserved share", text)
    with sqlite3.connect(tmp_path / "demo.db") as connection:
        runs = connection.execute("SELECT status FROM settlement_runs").fetchall()
        stored = connection.execute("SELECT count(*) FROM flattrs").fetchone()[0]
        attempts = connection.execute("SELECT count(*) FROM link_attempts").fetchone()[0]
    assert runs == [("done",)]
    assert stored > 20
    assert attempts == 0  # every link begun was completed


@pytest.mark.parametrize("platform", available_demo_platforms())
def test_every_installed_demo_platform_plays_a_settled_month_on_its_own(
    platform: str, tmp_path: Path
) -> None:
    console = Console(record=True, width=120, markup=False)

    run_demo(console, keep=tmp_path, seed=5, platforms=[platform])

    text = console.export_text()
    assert f"linked {platform}:alice" in text
    assert "adds up" in text
    assert "DOES NOT ADD UP" not in text
    assert "all invariants hold" in text
    assert re.search(rf"ada joins and links {platform}:\S+: [1-9]\d* reserved share", text)


def test_the_default_demo_plays_every_default_platform_that_is_installed() -> None:
    installed = set(available_demo_platforms())

    chosen = default_platforms()

    assert "github" in chosen
    assert set(chosen) <= installed


def test_an_unknown_demo_platform_is_refused_with_the_installed_ones_named() -> None:
    with pytest.raises(
        DemoPlatformError, match=r"no demo platform 'myspace' \(installed: .*github"
    ):
        run_demo(Console(record=True), platforms=["github", "myspace"])


def test_demo_web_serves_a_users_month_and_a_creators_money_waiting() -> None:
    console = Console(record=True, width=200)
    seen: dict[str, str] = {}

    def serving(base: str) -> None:
        text = console.export_text(clear=False)
        link = re.search(r"alice's month .*?: (\S+)", text)
        waiting = re.search(r"money waiting for ada on github: (\S+)", text)
        assert link is not None
        assert waiting is not None
        browser = requests.Session()
        asked = browser.get(link.group(1), timeout=10)
        token = re.search(r'name="csrf_token" value="([^"]+)"', asked.text)
        assert token is not None
        seen["me"] = browser.post(
            link.group(1), data={"csrf_token": token.group(1)}, timeout=10
        ).text
        seen["creator"] = requests.get(waiting.group(1), timeout=10).text
        seen["healthz"] = str(requests.get(f"{base}/healthz", timeout=10).status_code)

    run_demo(console, platforms=["github"], web_port=0, serving=serving)

    assert "alice's month" in seen["me"]
    assert "Past months" in seen["me"]
    assert "Waiting for ada" in seen["creator"]
    assert seen["healthz"] == "200"


def test_the_demo_leaves_trickles_log_level_as_it_found_it(tmp_path: Path) -> None:
    logger = logging.getLogger("trickle")
    before = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        run_demo(Console(record=True), keep=tmp_path, platforms=["github"])

        assert logger.level == logging.DEBUG
    finally:
        logger.setLevel(before)
