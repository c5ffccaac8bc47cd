"""SoundCloud likes (``soundcloud``): the connector, SoundCloud's payloads, and a fake SoundCloud
for tests and the demo."""

from trickle.connectors.soundcloud.connector import SoundCloudConnector

__all__ = ["SoundCloudConnector"]
