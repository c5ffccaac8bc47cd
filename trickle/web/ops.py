"""The operator's side: ``/healthz``, ``/metrics`` and the admin page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from werkzeug.wrappers import Response

from trickle.core.clock import clock, iso_utc
from trickle.heartbeat import worker_beats
from trickle.web import auth
from trickle.web.app import trickle_app
from trickle.web.metrics import render
from trickle.web.views import failing_accounts, month_states

blueprint = Blueprint("ops", __name__)


@blueprint.get("/healthz")
def healthz() -> Any:
    """200 when the database answers and at least one worker beat recently; else 503, with
    what is wrong. The body is JSON, for a load balancer or a person."""
    now = clock.now()
    try:
        with trickle_app().db.reader() as session:
            session.execute(text("SELECT 1"))
            beats = worker_beats(session)
    except Exception as exc:  # any driver's connection error
        down = {"status": "unhealthy", "database": f"unreachable ({type(exc).__name__})"}
        return jsonify(down), 503
    alive = [b for b in beats if b.alive(now)]
    body: dict[str, Any] = {
        "status": "ok" if alive else "unhealthy",
        "database": "ok",
        "workers": {
            "alive": len(alive),
            "silent": len(beats) - len(alive),
            "last_seen": iso_utc(beats[0].seen_at) if beats else None,
        },
    }
    if not alive:
        body["problem"] = "no worker has written a heartbeat recently: is `trickle run` running?"
    return jsonify(body), 200 if alive else 503


@blueprint.get("/metrics")
def metrics() -> Response:
    return Response(render(trickle_app()), mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                    headers={"Content-Type": CONTENT_TYPE_LATEST})  # fmt: skip


@blueprint.get("/admin")
@auth.operator_required
def admin() -> Any:
    now = clock.now()
    with trickle_app().db.reader() as session:
        failing = failing_accounts(session)
        months = month_states(session)
        beats = worker_beats(session)
    return render_template("admin.html", failing=failing, months=months, beats=beats, now=now)
