"""GitHub stars (``github``): the connector, GitHub's payloads, and a fake GitHub for tests."""

from trickle.connectors.github.connector import GitHubConnector

__all__ = ["GitHubConnector"]
