"""The shared clock of ``trickle run`` test workers: one instant for every process, and no
worker killed mid-read can stop the others."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.context import BaseContext
from typing import Any

import pytest

from trickle.testing.worker import SharedClock

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def context() -> BaseContext:
    return multiprocessing.get_context("forkserver")


def _read_forever(shared: SharedClock, reading: Any) -> None:
    reading.set()
    while True:
        shared.now()


def _report(shared: SharedClock, seen: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    seen.put(shared.now())


def test_another_process_reads_the_instant_the_test_set(context: BaseContext) -> None:
    shared = SharedClock(START, context)
    shared.advance(timedelta(hours=2))
    seen = context.Queue()

    child = context.Process(target=_report, args=(shared, seen))
    child.start()
    child.join(30)

    assert seen.get(timeout=5) == START + timedelta(hours=2)


def test_set_and_advance_move_the_instant(context: BaseContext) -> None:
    shared = SharedClock(START, context)

    shared.set(START + timedelta(days=3))
    shared.advance(timedelta(minutes=-30))

    assert shared.now() == START + timedelta(days=3, minutes=-30)


def test_readers_killed_in_the_middle_of_reading_leave_the_clock_readable(
    context: BaseContext,
) -> None:
    shared = SharedClock(START, context)
    for _ in range(20):  # each reader is killed while it reads as fast as it can
        reading = context.Event()
        reader = context.Process(target=_read_forever, args=(shared, reading))
        reader.start()
        assert reading.wait(30)
        time.sleep(0.01)
        assert reader.pid is not None
        os.kill(reader.pid, signal.SIGKILL)
        reader.join(10)

    answered: list[datetime] = []
    asking = threading.Thread(target=lambda: answered.append(shared.now()), daemon=True)
    asking.start()
    asking.join(5)

    assert answered == [START]
