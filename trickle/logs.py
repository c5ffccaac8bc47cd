"""Logging for trickle's commands: one line per record on stderr, as text or as JSON.

Log messages quote what platforms send (error messages, handles), so every
control character in a message or its arguments is escaped (``\\n``,
``\\x1b``): a newline in a platform's error cannot forge a second record, and
an escape sequence never reaches the operator's terminal. A traceback stays
multi-line in text format, each of its lines indented so that none can pass
for a record; in JSON it is a field of the record's one line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import TextIO

from trickle.core.clock import iso_utc
from trickle.core.text import printable

INDENT = "    "


class LogFormat(StrEnum):
    """How records are written: ``text`` for people, ``json`` for log shippers."""

    text = "text"
    json = "json"


def _printable_lines(text: str) -> list[str]:
    """The lines of a multi-line text (a traceback), each escaped."""
    return [printable(line) for line in text.rstrip("\n").split("\n")]


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message`` on one line, the message escaped; a traceback or stack
    follows on lines indented by four spaces."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line, plus its indented traceback if it has one."""
        line = (
            f"{self.formatTime(record)} {record.levelname} {record.name}: "
            f"{printable(record.getMessage())}"
        )
        details = [line]
        for block in _details(self, record).values():
            details.extend(INDENT + part for part in _printable_lines(block))
        return "\n".join(details)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (ISO 8601 in UTC with a ``Z``),
    ``level``, ``logger``, ``message``, and ``exception`` (the traceback) or ``stack`` when
    the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry = {
            "time": iso_utc(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname,
            "logger": record.name,
            "message": printable(record.getMessage()),
        }
        for name, block in _details(self, record).items():
            entry[name] = "\n".join(_printable_lines(block))
        return json.dumps(entry, ensure_ascii=False)


def _details(formatter: logging.Formatter, record: logging.LogRecord) -> dict[str, str]:
    """The record's traceback and stack, formatted (not cached on the record, which other
    handlers format their own way)."""
    details = {}
    if record.exc_info and record.exc_info[0] is not None:
        details["exception"] = formatter.formatException(record.exc_info)
    elif record.exc_text:
        details["exception"] = record.exc_text
    if record.stack_info:
        details["stack"] = formatter.formatStack(record.stack_info)
    return details


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record comes (rich's progress display
    and test captures replace it), not to the one there was when logging was configured."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:  # type: ignore[override]
        """The current standard error."""
        return sys.stderr


def configure_logging(
    level: str = "INFO", *, verbose: bool = False, log_format: str = LogFormat.text.value
) -> None:
    """Send every record of ``level`` and above (DEBUG when ``verbose``) to stderr in
    ``log_format``. Calling it again replaces what an earlier call set up; handlers others
    added (a test's capture) are left alone."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    formatter = JsonFormatter() if LogFormat(log_format) is LogFormat.json else TextFormatter()
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else getattr(logging, level.upper(), logging.INFO))
    # urllib3 logs every retried URL at WARNING; they carry no secrets but are noisy.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
