"""Mastodon in ``trickle demo``: two fake servers, a creator liked from both is one creator."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rich.console import Console

from trickle.demo import run_demo


def test_the_demo_settles_a_month_on_two_servers_paying_one_creator_from_both(
    tmp_path: Path,
) -> None:
    console = Console(record=True, width=200, markup=False)

    run_demo(console, keep=tmp_path, seed=5, platforms=["mastodon"])

    text = console.export_text()
    assert "all invariants hold" in text
    assert "trickle's app registered there" in text
    assert "trickle's app reused" in text
    with sqlite3.connect(tmp_path / "demo.db") as db:
        hosts = {h for (h,) in db.execute("SELECT DISTINCT host FROM linked_accounts")}
        from_where = db.execute(
            "SELECT c.platform_id, count(DISTINCT a.host) FROM flattrs f "
            "JOIN creators c ON c.id = f.creator_id "
            "JOIN linked_accounts a ON a.id = f.account_id "
            "WHERE c.platform_id LIKE '%/users/ada' GROUP BY c.platform_id"
        ).fetchall()
    assert len(hosts) == 2
    ((ada, servers),) = from_where  # one creator identity, whichever server liked her
    assert servers == 2
    assert f"ada joins and links mastodon:ada@{ada.split('/')[2]}" in text
