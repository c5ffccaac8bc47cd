"""Pages anyone may open: sign-in (login links, a platform's OAuth), the OAuth callback,
creators' pages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from trickle.core.logins import redeem_login_link
from trickle.core.models import User
from trickle.linking.accounts import LinkError, LinkResult
from trickle.linking.service import normalize_server
from trickle.web import auth
from trickle.web.app import browser_platforms, linker, trickle_app
from trickle.web.views import creator_view

blueprint = Blueprint("public", __name__)
MAX_PENDING = 5
"""Redirect flows one browser may have begun and not finished."""


@blueprint.get("/")
def home() -> Any:
    next_page = auth.safe_next(request.args.get("next"))
    if auth.current_user() is not None:
        return redirect(next_page)
    return render_template("home.html", platforms=browser_platforms(), next=next_page)


@blueprint.get("/login/<token>")
def login_link(token: str) -> Any:
    """A login link asks before it signs in: link previewers and mail scanners open links,
    and a GET that spent the link would sign nobody in."""
    return render_template(
        "login_link.html", token=token, next=auth.safe_next(request.args.get("next"))
    )


@blueprint.post("/login/<token>")
def login_link_use(token: str) -> Any:
    auth.limit_sign_ins()
    with trickle_app().db.session() as db:
        user = redeem_login_link(db, token)
    if user is None:
        abort(400, description="This login link is unknown, was used already, or has expired: "
              "ask your operator for a new one.")  # fmt: skip
    auth.sign_in(user)
    return auth.go_next(request.form.get("next"))


@blueprint.post("/signin/<platform>")
def sign_in_with(platform: str) -> Response:
    """Begin a sign-in through ``platform``: its account decides (or creates) the user."""
    auth.limit_sign_ins()
    return begin_redirect(platform, None, request.form.get("next"))


@blueprint.post("/logout")
def logout() -> Response:
    auth.sign_out()
    return redirect(url_for("public.home"))


def begin_redirect(platform: str, user: User | None, next_page: str | None) -> Response:
    """Send the browser to ``platform`` to approve, remembering in this browser's session
    that it began this flow (its ``state``), for the callback to check. A platform whose
    accounts live on servers is sent to the one the form's ``server`` field names."""
    _known(platform)
    web = trickle_app().settings.web
    server = request.form.get("server")
    authorization = linker().authorize(
        platform,
        user.name if user else None,
        redirect_uri=web.callback_url(platform),
        host=normalize_server(server) if server is not None else None,
    )
    pending = dict(session.get("pending") or {})
    pending[authorization.state] = {
        "kind": "link" if user else "signin",
        "next": auth.safe_next(next_page),
    }
    session["pending"] = dict(list(pending.items())[-MAX_PENDING:])
    return redirect(authorization.url)


@blueprint.get("/link/<platform>/callback")
def callback(platform: str) -> Any:
    """Where a platform sends the browser back. The ``state`` must be one this browser
    began (a forged or replayed callback links nothing, signs in nobody); the linking
    service then checks it once more, exchanges the code and links the account."""
    auth.limit_sign_ins()
    _known(platform)
    args = request.args
    state = args.get("state") or args.get("oauth_token") or args.get("denied") or ""
    pending = dict(session.get("pending") or {})
    began = pending.pop(state, None)
    session["pending"] = pending
    if not isinstance(began, dict):
        abort(400, description="This answer is not for a sign-in or link begun in this browser: "
              "start again from trickle's page.")  # fmt: skip
    try:
        result = linker().complete(args.to_dict())
    except LinkError as exc:
        flash(str(exc), "error")
        return redirect(
            url_for("account.me") if began["kind"] == "link" else url_for("public.home")
        )
    if result.platform != platform:
        abort(400, description="This answer came back to another platform's address.")
    with trickle_app().db.reader() as db:
        user = db.scalars(select(User).where(User.name == result.user)).one_or_none()
    if began["kind"] == "signin" and user is not None:
        auth.sign_in(user)
        flash(
            f"Welcome, {user.name}: your trickle account was created."
            if result.new_user
            else f"Signed in as {user.name}.",
            "info",
        )
    else:
        flash(f"Linked {result.platform} account {result.handle}.", "info")
    report_claim(result)
    return auth.go_next(began.get("next"))


def report_claim(result: LinkResult) -> None:
    """Tell the user what the account's creator identity claimed as it was linked."""
    if result.claim.posted_shares:
        flash(f"{result.claim.posted_shares} waiting share(s) were paid to you.", "info")


@blueprint.get("/c/<platform>/<path:platform_id>")
def creator(platform: str, platform_id: str) -> Any:
    """A creator's public page: how many people flattred them, what waits for them."""
    with trickle_app().db.reader() as db:
        view = creator_view(db, platform, platform_id)
    if view is None:
        abort(404, description="trickle has seen no flattr for this creator.")
    claim = next((p for p in browser_platforms() if p.name == platform), None)
    return render_template("creator.html", view=view, claim=claim, next=request.path)


def _known(platform: str) -> None:
    if platform not in trickle_app().registry.names():
        abort(404)
