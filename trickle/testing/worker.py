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
    """A frozen instant that several processes read and the test moves (see the module)."""

    def __init__(self, start: datetime, context: BaseContext) -> None:
        self._micros: Any = context.Value("q", _micros(start))  # a Synchronized[int]

    def now(self) -> datetime:
        """The shared instant."""
        with self._micros.get_lock():
            micros: int = self._micros.value
        return _EPOCH + timedelta(microseconds=micros)

    def set(self, when: datetime) -> None:
        """Move every process to ``when``."""
        with self._micros.get_lock():
            self._micros.value = _micros(when)

    def advance(self, delta: timedelta) -> None:
        """Move every process forward by ``delta``."""
        with self._micros.get_lock():
            self._micros.value += delta // timedelta(microseconds=1)

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
