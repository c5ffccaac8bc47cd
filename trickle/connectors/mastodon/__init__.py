"""Mastodon favourites (``mastodon``, any server): the connector, Mastodon's payloads, a fake
Mastodon server for tests and the demo."""

from trickle.connectors.mastodon.connector import MastodonConnector

__all__ = ["MastodonConnector"]
