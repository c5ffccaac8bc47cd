"""Lease owners: unique names, and telling a dead local owner from a live or remote one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trickle.core.owners import new_owner, owner_is_dead


def test_an_owner_names_this_host_and_process() -> None:
    host, pid, nonce = new_owner().split(":")
    assert host == socket.gethostname()
    assert pid == str(os.getpid())
    assert len(nonce) == 8


def test_every_owner_name_is_new() -> None:
    assert len({new_owner() for _ in range(200)}) == 200


@pytest.mark.parametrize("owner", [None, ""])
def test_a_lease_without_an_owner_counts_as_dead(owner: str | None) -> None:
    assert owner_is_dead(owner)


def test_this_process_is_alive() -> None:
    assert not owner_is_dead(new_owner())


def test_an_owner_on_another_host_is_never_declared_dead() -> None:
    assert not owner_is_dead(f"not-{socket.gethostname()}:999999999:abcd1234")


def test_an_owner_name_that_cannot_be_read_is_not_declared_dead() -> None:
    assert not owner_is_dead(f"{socket.gethostname()}:notapid:abcd1234")
    assert not owner_is_dead(socket.gethostname())


def test_a_live_local_process_is_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not owner_is_dead(f"{socket.gethostname()}:{child.pid}:abcd1234")
    finally:
        child.kill()
        child.wait()


def test_a_local_process_that_exited_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert owner_is_dead(f"{socket.gethostname()}:{child.pid}:abcd1234")


def test_a_host_name_with_colons_is_read_from_the_right(monkeypatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "fe80::1")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert owner_is_dead(f"fe80::1:{child.pid}:abcd1234")
    assert not owner_is_dead(f"fe80::1:{os.getpid()}:abcd1234")


def test_a_local_process_that_exited_but_was_not_reaped_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "child did not exit"
            time.sleep(0.01)
        assert owner_is_dead(f"{socket.gethostname()}:{child.pid}:abcd1234")
    finally:
        child.wait()
