"""500px favorites (``fivehundredpx``), for servers that still speak its closed v1 API."""

from trickle.connectors.fivehundredpx.connector import FiveHundredPxConnector

__all__ = ["FiveHundredPxConnector"]
