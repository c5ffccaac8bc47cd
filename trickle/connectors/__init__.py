"""Connectors: one module per platform, each turning a linked account's likes into LikeEvents."""
