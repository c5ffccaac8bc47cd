"""``trickle run`` processes for tests: on the test's simulated clock, with test-only connectors.

A test that plays days of a platform's life in seconds (tokens that expire
every hour, a week of them) moves trickle's clock by hand; the workers it
starts as separate processes, to kill them with SIGKILL, must live at the
same instant. A :class:`SharedClock` is that instant in shared memory: the
test moves it, and every process that installed it (the test's, each
worker's) reads it on every ``clock.now()``. :func:`run_trickle` is a worker
process's entry point: it installs the clock and runs trickle's command line
with the given connectors, which need no entry point.

    clock_ = SharedClock(start, context)
    clock_.install()
    worker = context.Process(
        target=run_trickle, args=(["--config", path, "run"], clock_, [FakeOAuthConnector])
    )
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from multiprocessing.context import BaseContext
from typing import Any

from trickle.connectors.base import Connector
from trickle.connectors.registry import Registry
from trickle.core.clock import clock, ensure_utc

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(when: datetime) -> int:
    return (ensure_utc(when) - _EPOCH) // timedelta(microseconds=1)


class SharedClock:
    """A frozen instant that several processes read and the test moves (see the module).

    Readers take no lock: the test kills workers with SIGKILL at random moments, and a
    worker killed while holding a lock shared between processes would leave it held for
    good, stopping every other reader (the test's own process included). The instant is
    a sequence counter and a value in shared memory (a seqlock): a writer makes the
    counter odd, writes, makes it even; a reader retries while the counter is odd or
    changed under it. Only the process that made the clock moves it (its threads take a
    lock of that process's own), so no kill can leave a write half done.
    """

    def __init__(self, start: datetime, context: BaseContext) -> None:
        self._cells: Any = context.RawArray("q", [0, _micros(start)])  # [sequence, micros]
        self._writing = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"cells": self._cells}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._cells = state["cells"]
        self._writing = threading.Lock()

    def now(self) -> datetime:
        """The shared instant."""
        cells = self._cells
        while True:
            sequence = cells[0]
            micros: int = cells[1]
            if sequence % 2 == 0 and cells[0] == sequence:
                return _EPOCH + timedelta(microseconds=micros)
            time.sleep(0)  # a write is under way: let the writer finish

    def _write(self, micros: int) -> None:
        with self._writing:
            self._cells[0] += 1
            self._cells[1] = micros
            self._cells[0] += 1

    def set(self, when: datetime) -> None:
        """Move every process to ``when``."""
        self._write(_micros(when))

    def advance(self, delta: timedelta) -> None:
        """Move every process forward by ``delta``."""
        with self._writing:
            micros = self._cells[1] + delta // timedelta(microseconds=1)
            self._cells[0] += 1
            self._cells[1] = micros
            self._cells[0] += 1

    def install(self) -> None:
        """Make this process's trickle clock tell the shared instant (``clock.reset()`` stops
        it)."""
        clock.follow(self.now)


def run_trickle(
    argv: Sequence[str], shared: SharedClock, connectors: Sequence[type[Connector]]
) -> int:
    """Run ``trickle ARGV`` in this process on the shared clock, with ``connectors`` as its
    registry; returns the exit status (``trickle run`` ends the process itself)."""
    from trickle import cli  # the command line is imported by the worker process only

    shared.install()
    return cli.main(list(argv), registry=Registry.of(connectors))
