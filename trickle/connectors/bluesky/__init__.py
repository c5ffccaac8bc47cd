"""Bluesky likes (``bluesky``): the connector, atproto identity resolution, fakes of a PDS,
the PLC directory, handle resolution and DNS for tests and the demo."""

from trickle.connectors.bluesky.connector import BlueskyConnector

__all__ = ["BlueskyConnector"]
