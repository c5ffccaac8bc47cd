"""The error every user-facing failure in trickle derives from."""


class TrickleError(Exception):
    """A failure with a message meant for the person who ran the command.

    The CLI prints these as ``error: <message>`` and exits non-zero; anything
    else reaching the top is a bug.
    """
