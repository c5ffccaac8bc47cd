"""X (Twitter) likes (``twitter``): the connector, X's payloads, and a fake X for tests."""

from trickle.connectors.twitter.connector import TwitterConnector

__all__ = ["TwitterConnector"]
