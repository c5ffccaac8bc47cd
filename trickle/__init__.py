"""trickle: monthly micropayments from the likes people already give."""

__version__ = "0.1.0"
