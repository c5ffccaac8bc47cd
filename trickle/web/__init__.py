"""The web side: users sign in, link accounts and watch their month; creators find money
waiting; operators see health. Flask and Jinja2, server-rendered, no JavaScript needed.

:func:`~trickle.web.app.create_app` builds the Flask application on a
:class:`~trickle.app.App` (the same database, connectors and linking service
as the CLI and the worker); :mod:`trickle.web.serve` serves it with waitress.
"""

from trickle.web.app import create_app

__all__ = ["create_app"]
