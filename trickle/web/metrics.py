"""``/metrics``: Prometheus metrics read from the database at each scrape.

Workers run in other processes, maybe on other machines; what they did
reaches the web side through their heartbeats (:mod:`trickle.heartbeat`),
each carrying the counters of one worker process since it started. They are
exported per worker (label ``worker``), so a restarted worker is a new series
and ``rate()`` stays right. What the database itself holds (accounts by
status, flattrs stored, the last settled month) is counted at the scrape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from trickle.app import App
from trickle.core.clock import clock
from trickle.core.models import Flattr, LinkedAccount, RunStatus, SettlementRun
from trickle.core.periods import Period
from trickle.heartbeat import worker_beats


class TrickleCollector(Collector):
    """Every trickle metric, gathered from the database when Prometheus scrapes."""

    def __init__(self, app: App) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        now = clock.now()
        with self.app.db.reader() as session:
            beats = worker_beats(session)
            accounts = session.execute(
                select(LinkedAccount.platform, LinkedAccount.status, func.count()).group_by(
                    LinkedAccount.platform, LinkedAccount.status
                )
            ).all()
            flattrs = session.execute(
                select(Flattr.platform, func.count()).group_by(Flattr.platform)
            ).all()
            last_settled = session.scalar(
                select(func.max(SettlementRun.period)).where(
                    SettlementRun.status == RunStatus.DONE.value
                )
            )
        polls = CounterMetricFamily(
            "trickle_polls", "Polls by platform and result, per worker process.",
            labels=["worker", "platform", "result"],
        )  # fmt: skip
        latency = SummaryMetricFamily(
            "trickle_poll_duration_seconds", "Time one poll took, per platform and worker.",
            labels=["worker", "platform"],
        )  # fmt: skip
        stored = CounterMetricFamily(
            "trickle_flattrs_stored", "New flattrs a worker stored.", labels=["worker"]
        )
        pauses = CounterMetricFamily(
            "trickle_rate_limit_pauses", "App-wide rate-limit pauses a worker began.",
            labels=["worker", "platform"],
        )  # fmt: skip
        seen = GaugeMetricFamily(
            "trickle_worker_heartbeat_timestamp_seconds", "When a worker last said it is alive.",
            labels=["worker"],
        )  # fmt: skip
        alive = GaugeMetricFamily("trickle_workers_alive", "Workers whose heartbeat is recent.")
        alive.add_metric([], sum(1 for b in beats if b.alive(now)))
        for beat in beats:
            worker = beat.owner
            seen.add_metric([worker], beat.seen_at.timestamp())
            stats: dict[str, Any] = beat.stats
            for platform, results in _mapping(stats.get("polls")).items():
                for result, count in _mapping(results).items():
                    polls.add_metric([worker, platform, result], _number(count))
            for platform, timed in _mapping(stats.get("poll_seconds")).items():
                timed = _mapping(timed)
                latency.add_metric(
                    [worker, platform], int(_number(timed.get("count"))), _number(timed.get("sum"))
                )
            stored.add_metric([worker], _number(stats.get("stored")))
            for platform, count in _mapping(stats.get("rate_limit_pauses")).items():
                pauses.add_metric([worker, platform], _number(count))
        by_status = GaugeMetricFamily(
            "trickle_accounts", "Linked accounts by platform and status.",
            labels=["platform", "status"],
        )  # fmt: skip
        for platform, status, count in accounts:
            by_status.add_metric([platform, status], count)
        in_db = GaugeMetricFamily(
            "trickle_flattrs", "Flattrs in the database, by platform.", labels=["platform"]
        )
        for platform, count in flattrs:
            in_db.add_metric([platform], count)
        settled = GaugeMetricFamily(
            "trickle_last_settled_month_end_timestamp_seconds",
            "The end of the latest settled month (0: none settled yet).",
        )
        settled.add_metric([], Period.parse(last_settled).end.timestamp() if last_settled else 0)
        yield from (polls, latency, stored, pauses, seen, alive, by_status, in_db, settled)


def _mapping(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def render(app: App) -> bytes:
    """The metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TrickleCollector(app))
    return generate_latest(registry)
