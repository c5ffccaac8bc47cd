"""Instagram (``instagram``): saved posts through instaloader, at the private web API's risk;
the data export as the way that always works."""

from trickle.connectors.instagram.connector import InstagramConnector

__all__ = ["InstagramConnector"]
