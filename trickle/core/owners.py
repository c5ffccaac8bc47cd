"""Names for the processes that hold leases and locks, and telling whether one is gone.

An owner is ``host:pid:nonce``. When a lease's owner ran on this host and its
pid no longer exists, the lease is known dead and can be taken over at once
instead of after it times out.
"""

from __future__ import annotations

import os
import socket
import uuid


def new_owner() -> str:
    """A unique owner name for this process (a fresh nonce on every call)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str | None) -> bool:
    """True when ``owner`` ran on this host and its process no longer exists."""
    if not owner:
        return True
    host, pid_text, _nonce = [*owner.rsplit(":", 2), "", ""][:3]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
