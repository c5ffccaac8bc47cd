"""How the command line prints: outside text literally, errors one per line."""

from __future__ import annotations

import pytest

from trickle import output


def test_an_error_of_several_lines_prints_them_under_each_other_indented(
    capsys: pytest.CaptureFixture[str],
) -> None:
    output.error("the file was not imported:\nline 2: no time\nline 7: [bold]x[/bold]")

    assert capsys.readouterr().err.splitlines() == [
        "error: the file was not imported:",
        "  line 2: no time",
        "  line 7: [bold]x[/bold]",
    ]


def test_a_message_cannot_forge_an_error_line_of_its_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    output.error("no user 'x\nerror: the ledger is broken'")

    lines = capsys.readouterr().err.splitlines()
    assert lines[1] == "  error: the ledger is broken'"


def test_control_characters_in_an_error_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    output.error("bad name \x1b[31mred\x1b[0m\r")

    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert "\r" not in err
