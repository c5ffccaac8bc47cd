"""/healthz, /metrics and the admin page."""

from __future__ import annotations

from tests.web.conftest import Site, words
from trickle.core.clock import clock
from trickle.core.users import set_operator
from trickle.heartbeat import beat


def test_healthz_needs_a_live_worker(site: Site) -> None:
    client = site.client()
    down = client.get("/healthz")
    assert down.status_code == 503
    assert down.json["database"] == "ok"
    assert "no worker" in down.json["problem"]

    beat(site.app.db, "host:1:w", clock.now(), 15, {})
    up = client.get("/healthz")
    assert up.status_code == 200
    assert up.json["workers"]["alive"] == 1


def test_metrics_come_from_heartbeats_and_the_database(site: Site) -> None:
    site.waiting_money_for_ada()
    stats = {
        "polls": {"github": {"ok": 3, "baseline": 1}},
        "poll_seconds": {"github": {"sum": 0.5, "count": 4}},
        "stored": 1,
        "rate_limit_pauses": {"github": 2},
    }
    beat(site.app.db, "host:1:w", clock.now(), 15, stats)

    text = site.client().get("/metrics").text

    assert 'trickle_polls_total{platform="github",result="ok",worker="host:1:w"} 3.0' in text
    assert 'trickle_poll_duration_seconds_count{platform="github",worker="host:1:w"} 4.0' in text
    assert 'trickle_flattrs_stored_total{worker="host:1:w"} 1.0' in text
    assert 'trickle_rate_limit_pauses_total{platform="github",worker="host:1:w"} 2.0' in text
    assert 'trickle_accounts{platform="github",status="active"} 1.0' in text
    assert 'trickle_flattrs{platform="github"} 1.0' in text
    # the end of October 2026, the month settled
    assert "trickle_last_settled_month_end_timestamp_seconds 1.7934912e+09" in text
    assert "trickle_workers_alive 1.0" in text


def test_the_admin_page_is_for_operators_only(site: Site) -> None:
    site.user("alice")
    assert site.client().get("/admin").status_code == 302
    assert site.signed_in("alice").get("/admin").status_code == 404
    with site.app.db.session() as session:
        set_operator(session, "alice", True)
    page = words(site.signed_in("alice").get("/admin").text)
    assert "Accounts failing" in page
    assert "No worker has written a heartbeat" in page


def test_a_request_naming_another_host_is_refused(site: Site) -> None:
    answer = site.client().get("/", headers={"Host": "evil.example"})
    assert answer.status_code == 400
    assert "does not answer for that host" in answer.text
