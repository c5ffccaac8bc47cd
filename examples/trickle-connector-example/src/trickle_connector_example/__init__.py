"""An example trickle connector plugin: Pebble, a tiny made-up bookmarking API.

trickle finds :class:`PebbleConnector` through the ``trickle.connectors``
entry point this package's ``pyproject.toml`` declares.
:mod:`trickle_connector_example.fake` serves Pebble's API on 127.0.0.1 for
tests and demos (imported separately, so loading the connector stays light).
"""

from trickle_connector_example.connector import PebbleConnector

__all__ = ["PebbleConnector"]
