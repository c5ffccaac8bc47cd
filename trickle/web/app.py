"""The Flask application: settings, security headers, CSRF, errors, and the page areas.

Flask with Jinja2 fits trickle: synchronous like its SQLAlchemy sessions and
``requests`` connectors, server-rendered with autoescaping (every handle and
platform message is escaped), no JavaScript build. The application holds the
process's :class:`~trickle.app.App` and a :class:`~trickle.linking.Linker`,
and every page goes through them: the registry for the platforms, the linking
service for sign-in and linking, the core's reports and users for money.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask, current_app, render_template
from werkzeug.exceptions import HTTPException, SecurityError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from trickle.app import App
from trickle.connectors.base import Connector
from trickle.connectors.flows import AppPassword
from trickle.connectors.registry import ConnectorUnavailable, UnknownPlatform
from trickle.core.errors import TrickleError
from trickle.core.money import format_money
from trickle.linking.accounts import LinkError
from trickle.linking.service import Linker
from trickle.web import auth, csrf

MAX_FORM_BYTES = 64 * 1024
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class WebConfigError(TrickleError):
    """The ``[web]`` settings cannot serve the web side."""


@dataclass(frozen=True)
class PlatformButton:
    """A platform a user can sign in or link with through the browser."""

    name: str
    display_name: str
    needs_server: bool = False
    """Its accounts live on servers (Mastodon's): the form asks which one."""
    legacy: str | None = None
    """Its public API has closed: what ``trickle link`` warns, shown by the button."""


@dataclass(frozen=True)
class PasswordPlatform:
    """A platform whose accounts are linked with a handle and an app password typed into a
    form here (:class:`~trickle.connectors.flows.AppPassword`, Bluesky's)."""

    name: str
    display_name: str
    identifier: str
    """What the account is named by (``handle``)."""
    example: str
    app_page: str | None
    """Where the user makes an app password."""
    legacy: str | None = None


def trickle_app() -> App:
    """The :class:`~trickle.app.App` behind the current request."""
    app: App = current_app.extensions["trickle"]
    return app


def linker() -> Linker:
    """The linking service behind the current request."""
    service: Linker = current_app.extensions["trickle_linker"]
    return service


def browser_platforms() -> list[PlatformButton]:
    """The installed platforms whose browser flow the operator has set up, by name."""
    app = trickle_app()
    buttons = []
    for name in app.registry.names():
        try:
            flow = linker().flow(name, redirects=True)
            connector = app.connector(name)
        except (LinkError, UnknownPlatform, ConnectorUnavailable):
            continue
        needs_server = connector.multi_host and not flow.finds_server
        buttons.append(
            PlatformButton(name, connector.display_name, needs_server, _legacy(connector))
        )
    return buttons


def password_platforms() -> list[PasswordPlatform]:
    """The installed platforms whose preferred flow without a redirect is an app password,
    by name: the account page has a form for each."""
    app = trickle_app()
    forms = []
    for name in app.registry.names():
        try:
            connector = app.connector(name)
            flows = [f for f in linker().flows(name) if not f.redirects]
        except (UnknownPlatform, ConnectorUnavailable):
            continue
        if flows and isinstance(flows[0], AppPassword):
            flow = flows[0]
            forms.append(
                PasswordPlatform(
                    name,
                    connector.display_name,
                    flow.identifier,
                    flow.example,
                    flow.app_page,
                    _legacy(connector),
                )
            )
    return forms


def _legacy(connector: Connector) -> str | None:
    return connector.legacy.warning(connector.display_name) if connector.legacy else None


def create_app(app: App, *, linker: Linker | None = None) -> Flask:
    """The web side on ``app``; its ``[web]`` settings must hold a cookie secret."""
    web = app.settings.web
    if web.cookie_secret is None or len(web.cookie_secret.get_secret_value()) < 32:
        raise WebConfigError(
            "the web side needs [web] cookie_secret (or TRICKLE_WEB__COOKIE_SECRET): a random "
            "string of at least 32 characters, e.g. from `python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'`"
        )
    flask = Flask("trickle.web")
    flask.config.update(
        SECRET_KEY=web.cookie_secret.get_secret_value(),
        SESSION_COOKIE_NAME="trickle_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=web.secure,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(days=web.session_days),
        TRUSTED_HOSTS=web.hosts(),
        MAX_CONTENT_LENGTH=MAX_FORM_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_FORM_BYTES,
        PREFERRED_URL_SCHEME="https" if web.secure else "http",
    )
    if web.proxies:
        flask.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            flask.wsgi_app, x_for=web.proxies, x_proto=web.proxies, x_host=web.proxies
        )
    flask.extensions["trickle"] = app
    flask.extensions["trickle_linker"] = linker or Linker(app)
    flask.extensions["trickle_sign_in_limit"] = auth.RateLimit(web.sign_in_attempts_per_minute)
    flask.jinja_env.globals.update(
        csrf_token=csrf.token,
        csrf_field=csrf.FIELD,
        current_user=auth.current_user,
    )
    flask.jinja_env.filters["money"] = lambda minor, currency: format_money(int(minor), currency)
    flask.jinja_env.filters["when"] = lambda value: (
        value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"
    )
    flask.jinja_env.filters["day"] = lambda value: value.strftime("%Y-%m-%d") if value else "-"
    flask.before_request(csrf.check)
    flask.after_request(_headers)
    flask.register_error_handler(HTTPException, _http_error)
    flask.register_error_handler(TrickleError, _trickle_error)

    from trickle.web import account, ops, public

    flask.register_blueprint(public.blueprint)
    flask.register_blueprint(account.blueprint)
    flask.register_blueprint(ops.blueprint)
    return flask


def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"  # login tokens and codes stay here
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response


def _http_error(exc: HTTPException) -> Any:
    status = exc.code or 500
    if isinstance(exc, SecurityError):  # a host not allowed: no page can be built for it
        return Response("This server does not answer for that host name.\n", 400,
                        mimetype="text/plain")  # fmt: skip
    return render_template(
        "error.html", status=status, title=exc.name, message=exc.description
    ), status


def _trickle_error(exc: TrickleError) -> Any:
    return render_template(
        "error.html", status=400, title="That did not work", message=str(exc)
    ), 400
