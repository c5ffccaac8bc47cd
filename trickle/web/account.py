"""The signed-in user's pages: the month, budget, privacy, linked accounts, statements."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from trickle.core.clock import clock
from trickle.core.errors import TrickleError
from trickle.core.models import LinkedAccount, User
from trickle.core.money import MoneyError, format_money, parse_money
from trickle.core.periods import Period
from trickle.core.users import set_budget, set_public
from trickle.linking.accounts import LinkError
from trickle.web import auth
from trickle.web.app import browser_platforms, linker, password_platforms, trickle_app
from trickle.web.public import begin_redirect, report_claim
from trickle.web.views import home, month_view

blueprint = Blueprint("account", __name__)


def _user() -> User:
    user = auth.current_user()
    assert user is not None  # login_required
    return user


@blueprint.get("/me")
@auth.login_required
def me() -> Any:
    page = home(trickle_app(), _user())
    return render_template(
        "me.html", page=page, platforms=browser_platforms(), password_platforms=password_platforms()
    )


@blueprint.post("/me/budget")
@auth.login_required
def budget() -> Response:
    user = _user()
    text = request.form.get("budget", "").strip()
    try:
        amount = parse_money(text, user.currency)
        with trickle_app().db.session() as db:
            set_budget(db, user.name, amount)
    except (MoneyError, TrickleError) as exc:
        flash(f"Budget not changed: {exc}", "error")
    else:
        flash(f"Your monthly budget is now {text} {user.currency}.", "info")
    return redirect(url_for("account.me"))


@blueprint.post("/me/privacy")
@auth.login_required
def privacy() -> Response:
    public = request.form.get("public") == "yes"
    with trickle_app().db.session() as db:
        set_public(db, _user().name, public)
    flash(
        "Creators' pages now name you among their likers."
        if public
        else "Creators' pages no longer name you.",
        "info",
    )
    return redirect(url_for("account.me"))


@blueprint.post("/link/<platform>")
@auth.login_required
def link(platform: str) -> Response:
    return begin_redirect(platform, _user(), request.form.get("next") or "/me")


@blueprint.post("/link/<platform>/password")
@auth.login_required
def link_with_password(platform: str) -> Response:
    """Link the account a handle names with an app password typed into the account page.
    The password goes to the linking service, which uses it once; it is not logged, kept in
    the session, nor written back into the page (nor is it in an error: those are redacted).
    """
    auth.limit_sign_ins()
    if platform not in {p.name for p in password_platforms()}:
        abort(404)
    identifier = request.form.get("identifier", "")
    password = request.form.get("password", "")
    try:
        result = linker().sign_in(platform, _user().name, identifier, password)
    except LinkError as exc:
        flash(str(exc), "error")
    else:
        flash(f"Linked {result.platform} account {result.handle}.", "info")
        report_claim(result)
    return redirect(url_for("account.me"))


@blueprint.post("/accounts/<int:account_id>/unlink")
@auth.login_required
def unlink(account_id: int) -> Response:
    user = _user()
    with trickle_app().db.reader() as db:
        account = db.scalars(
            select(LinkedAccount).where(
                LinkedAccount.id == account_id, LinkedAccount.user_id == user.id
            )
        ).one_or_none()
    if account is None:  # not theirs, or no such account: the same answer
        abort(404)
    result = linker().unlink(account.platform, user.name, account.platform_user_id)
    flash(f"Unlinked {result.platform} account {result.handle}: {result.note}.", "info")
    return redirect(url_for("account.me"))


def _period(text: str) -> Period:
    try:
        period = Period.parse(text)
    except TrickleError:
        abort(404)
    if period > Period.of(clock.now()):
        abort(404)
    return period


@blueprint.get("/me/months/<period>")
@auth.login_required
def month(period: str) -> Any:
    view = month_view(trickle_app(), _user(), _period(period))
    return render_template("month.html", month=view)


@blueprint.get("/me/months/<period>.csv")
@auth.login_required
def month_csv(period: str) -> Response:
    user = _user()
    view = month_view(trickle_app(), user, _period(period))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["date", "platform", "item_url", "creator_id", "creator", "amount",
                     "currency", "state", "recipient"])  # fmt: skip
    for row in view.flattrs:
        writer.writerow([
            row.at.strftime("%Y-%m-%d"), row.platform, _cell(row.item_url),
            _cell(row.creator_platform_id), _cell(row.creator_handle),
            "" if row.amount_minor is None else _decimal(row.amount_minor, user.currency),
            user.currency, row.state or "", row.recipient or "",
        ])  # fmt: skip
    name = f"trickle-{user.name}-{view.period}.csv".encode("ascii", "replace").decode()
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name.replace(chr(34), "")}"'},
    )


def _decimal(minor: int, currency: str) -> str:
    return format_money(minor, currency).split(" ")[0]


def _cell(text: str) -> str:
    """A value from outside as a CSV cell a spreadsheet will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
