"""`trickle demo` plays a settled month through the real code paths, offline."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from rich.console import Console

from trickle.demo import run_demo


def test_the_demo_settles_a_month_whose_shares_add_up(tmp_path: Path) -> None:
    console = Console(record=True, width=120, markup=False)  # as the command line prints

    run_demo(console, keep=tmp_path, seed=3)

    text = console.export_text()
    assert re.search(
        r"linked github:alice \(id \d+\) to alice: code [A-Z]{4}-[A-Z]{4} entered", text
    )
    assert "linked github:dave (id 1004) to dave: approved in the browser (PKCE)" in text
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
