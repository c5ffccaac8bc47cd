"""Workers' heartbeats: each worker process says in the database that it is alive.

A ``trickle run`` process (and ``trickle run --web``'s worker) writes its
row in ``worker_heartbeats`` every ``worker.heartbeat_seconds``, carrying its
counters (:meth:`trickle.polling.Worker.counters`), and deletes it when it
stops cleanly. Whoever reads the database, on this machine or another (the
web side's ``/healthz`` and ``/metrics``), can then tell which workers are
alive: those seen within :data:`ALIVE_BEATS` of their own interval. Rows of
workers not seen for :data:`FORGET_AFTER` are deleted by the next beat of any
worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from trickle.core.clock import clock
from trickle.core.db import Database, insert
from trickle.core.models import WorkerHeartbeat

ALIVE_BEATS = 3
"""A worker is alive while its last beat is younger than this many of its intervals."""
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class WorkerBeat:
    """One worker's last heartbeat, read back."""

    owner: str
    started_at: datetime
    seen_at: datetime
    interval_seconds: float
    stats: dict[str, Any]

    def alive(self, now: datetime) -> bool:
        """Whether the worker beat recently enough to be taken as running."""
        return now - self.seen_at < timedelta(seconds=ALIVE_BEATS * self.interval_seconds)


def beat(
    db: Database, owner: str, started_at: datetime, interval: float, stats: dict[str, Any]
) -> None:
    """Record that ``owner`` is alive now, with its counters; forget long-silent workers."""
    now = clock.now()
    with db.session() as session:
        values = {
            "owner": owner,
            "started_at": started_at,
            "seen_at": now,
            "interval_seconds": interval,
            "stats": stats,
        }
        session.execute(
            insert(session, WorkerHeartbeat.__table__)
            .values(**values)
            .on_conflict_do_update(
                index_elements=["owner"],
                set_={"seen_at": now, "interval_seconds": interval, "stats": stats},
            )
        )
        session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.seen_at < now - FORGET_AFTER))


def stopped(db: Database, owner: str) -> None:
    """``owner`` stopped cleanly: it is no longer a worker that should be alive."""
    with db.session() as session:
        session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.owner == owner))


def worker_beats(session: Session) -> list[WorkerBeat]:
    """Every worker's last heartbeat, the most recently seen first."""
    rows = session.scalars(select(WorkerHeartbeat).order_by(WorkerHeartbeat.seen_at.desc()))
    return [
        WorkerBeat(r.owner, r.started_at, r.seen_at, r.interval_seconds, dict(r.stats or {}))
        for r in rows
    ]
