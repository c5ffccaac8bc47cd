"""trickle's logs on stderr: one line per record, as text or JSON, with control characters
escaped so that what a platform says can neither forge a record nor drive the terminal."""

from __future__ import annotations

import io
import json
import logging
import re
import sys

import pytest

from trickle.logs import INDENT, configure_logging

pytestmark = pytest.mark.usefixtures("restore_logging")

FORGED = "nope\n2026-10-15 12:00:00,000 INFO trickle: all is well\x1b[2J\r\t\x9b6n\u2028é"
ESCAPED = "nope\\n2026-10-15 12:00:00,000 INFO trickle: all is well\\x1b[2J\\r\\t\\x9b6n\\u2028é"
log = logging.getLogger("trickle.test_logs")


def records(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The lines written to stderr since the last call."""
    return capsys.readouterr().err.splitlines()


def test_text_records_are_one_line_with_the_message_and_its_arguments_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO")
    log.warning("github account %s failing: %s", "alice\x1b]0;owned\x07", FORGED)

    [line] = records(capsys)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING trickle\.test_logs: "
        r"github account alice\\x1b\]0;owned\\x07 failing: .*",
        line,
    ), line
    assert line.endswith(ESCAPED)
    assert not re.search("[\x00-\x1f\x7f-\x9f]", line)


def test_a_text_traceback_follows_on_indented_lines_none_of_which_passes_for_a_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO")
    try:
        raise ValueError(FORGED)
    except ValueError:
        log.exception("storing the poll failed")

    first, *trace = records(capsys)
    assert first.endswith(" ERROR trickle.test_logs: storing the poll failed")
    assert trace[0] == INDENT + "Traceback (most recent call last):"
    assert all(line.startswith(INDENT) for line in trace)
    assert trace[-2:] == [
        INDENT + "ValueError: nope",
        INDENT + "2026-10-15 12:00:00,000 INFO trickle: all is well\\x1b[2J\\r\\t\\x9b6n\\u2028é",
    ]


def test_json_records_are_one_object_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", log_format="json")
    log.info("polled %d account(s)", 3)
    log.warning("failing: %s", FORGED)
    try:
        raise ValueError(FORGED)
    except ValueError:
        log.exception("storing the poll failed")

    lines = records(capsys)
    assert len(lines) == 3
    info, warning, error = (json.loads(line) for line in lines)
    assert info == {
        "time": info["time"],
        "level": "INFO",
        "logger": "trickle.test_logs",
        "message": "polled 3 account(s)",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", info["time"])
    assert warning["message"] == "failing: " + ESCAPED
    assert error["message"] == "storing the poll failed"
    trace = error["exception"].split("\n")
    assert trace[0] == "Traceback (most recent call last):"
    assert trace[-2:] == ["ValueError: nope", ESCAPED.split("\\n", 1)[1]]
    assert not any(re.search("[\x00-\x1f\x7f-\x9f\u2028]", line) for line in lines)


def test_the_level_applies_and_verbose_means_debug(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING")
    log.info("not shown")
    log.warning("shown")
    assert [line.rsplit(": ", 1)[1] for line in records(capsys)] == ["shown"]

    configure_logging("WARNING", verbose=True)
    log.debug("details")
    assert [line.rsplit(": ", 1)[1] for line in records(capsys)] == ["details"]


def test_configuring_again_replaces_the_earlier_setup(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    configure_logging("INFO", log_format="json")
    log.info("once")

    [line] = records(capsys)
    assert json.loads(line)["message"] == "once"


def test_records_go_to_the_standard_error_of_the_moment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure_logging("INFO")
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)  # as a progress display or a capture does
    log.info("after")
    assert later.getvalue().endswith(": after\n")


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="xml"):
        configure_logging("INFO", log_format="xml")
