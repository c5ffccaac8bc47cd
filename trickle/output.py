"""How the ``trickle`` command prints: data as literal text, never as markup.

Most of what trickle shows came from outside: a creator's handle, a
platform's error message, a user name, an item URL. Rich would read
``[bold]`` or ``crash[/]`` in any of them as markup (changing what the
operator reads, or raising), so both consoles here have markup, emoji codes
and highlighting off, every cell and message passes through
:func:`trickle.core.text.printable` (control characters escaped), and
styling is applied explicitly to text trickle itself wrote (:func:`styled`).
Tables fold long cells onto more lines instead of cutting them off, so an
item URL is always shown whole.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from trickle.core.clock import iso_utc
from trickle.core.text import printable

console = Console(markup=False, highlight=False, emoji=False)
"""Standard output: what a command reports."""
err_console = Console(stderr=True, markup=False, highlight=False, emoji=False)
"""Standard error: errors, warnings and progress."""


def literal(value: object) -> Text:
    """``value`` as text shown exactly as it is (control characters escaped)."""
    return Text(printable(str(value)))


def styled(value: object, style: str) -> Text:
    """``value`` shown literally, in ``style`` (``"red"``, ``"bold"``)."""
    return Text(printable(str(value)), style=style)


def line(*parts: object) -> Text:
    """One line from parts: strings and values shown literally, :class:`Text` kept as is."""
    text = Text()
    for part in parts:
        text.append_text(part if isinstance(part, Text) else literal(part))
    return text


def say(*parts: object) -> None:
    """Print one line of parts to standard output."""
    console.print(line(*parts), soft_wrap=True)


def warn(*parts: object) -> None:
    """Print a warning line to standard error."""
    err_console.print(line(styled("warning:", "yellow"), " ", *parts), soft_wrap=True)


def error(message: object, *, label: str = "error") -> None:
    """Print ``label: message`` to standard error, the message literally. A message of
    several lines (an import's errors, one per bad line) prints them under each other,
    indented, so none of them can pass for an error line of its own."""
    first, *rest = str(message).split("\n")
    err_console.print(line(styled(f"{label}:", "red"), " ", first), soft_wrap=True)
    for more in rest:
        err_console.print(line("  ", more), soft_wrap=True)


def table(
    *columns: str,
    title: str | None = None,
    right: tuple[str, ...] = (),
    wide: tuple[str, ...] = (),
) -> Table:
    """A table whose cells are never cut off: ``wide`` columns (URLs, messages) wrap and fold
    onto more lines, the others keep their width (and fold only if nothing else fits);
    ``right`` columns align right."""
    grid = Table(title=literal(title) if title else None)
    for name in columns:
        grid.add_column(
            literal(name),
            overflow="fold",
            no_wrap=name not in wide,
            justify="right" if name in right else "left",
        )
    return grid


def add_row(grid: Table, *cells: object) -> None:
    """Add a row of literal cells (None shows as ``-``)."""
    grid.add_row(
        *(
            cell if isinstance(cell, Text) else literal("-" if cell is None else cell)
            for cell in cells
        )
    )


def print_json(data: Any) -> None:
    """One JSON document on standard output; times as ISO 8601 UTC with ``Z``."""
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default, ensure_ascii=False) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    return str(value)


@contextmanager
def progress(description: str, *, total: float | None = None) -> Iterator[Any]:
    """A progress bar on standard error while the block runs, when it is a terminal.

    Yields ``update(completed, total=None, description=None)``; off a terminal (a pipe, a
    log file, ``--json`` scripts) nothing is drawn and ``update`` does nothing.
    """
    if not err_console.is_terminal:
        yield lambda *args, **kwargs: None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    with bar:
        task = bar.add_task(printable(description), total=total)

        def update(
            completed: float, total: float | None = None, description: str | None = None
        ) -> None:
            changes: dict[str, Any] = {"completed": completed}
            if total is not None:
                changes["total"] = total
            if description is not None:
                changes["description"] = printable(description)
            bar.update(task, **changes)

        yield update


@contextmanager
def waiting(description: str) -> Iterator[None]:
    """A spinner on standard error while the block waits on something slow (a platform)."""
    if not err_console.is_terminal:
        yield
        return
    with err_console.status(literal(description)):
        yield


@contextmanager
def countdown(description: str) -> Iterator[Callable[[int], None]]:
    """A spinner on standard error that counts down while the block waits on a person (a link
    approved in the browser). Yields ``tick(seconds_left)``; off a terminal it does nothing."""
    if not err_console.is_terminal:
        yield lambda seconds: None
        return
    with err_console.status(literal(description)) as status:

        def tick(seconds: int) -> None:
            minutes, rest = divmod(max(0, seconds), 60)
            status.update(literal(f"{description} ({minutes}:{rest:02d} left, Ctrl-C to stop)"))

        yield tick
