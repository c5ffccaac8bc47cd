"""Vimeo likes (``vimeo``): the connector, Vimeo's payloads, and a fake Vimeo for tests and
the demo."""

from trickle.connectors.vimeo.connector import VimeoConnector

__all__ = ["VimeoConnector"]
