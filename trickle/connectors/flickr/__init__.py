"""Flickr favorites (``flickr``): the connector, Flickr's payloads, and a fake Flickr."""

from trickle.connectors.flickr.connector import FlickrConnector

__all__ = ["FlickrConnector"]
