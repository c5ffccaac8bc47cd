"""pnut.io bookmarks (``pnut``) and App.net stars (``appnet``): one App.net-derived API in two
dialects, with a fake of each for tests and the demo."""

from trickle.connectors.pnut.connector import AppNetConnector, PnutConnector

__all__ = ["AppNetConnector", "PnutConnector"]
