"""Demo platforms are found by entry point, and one that is broken is named, not raised."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import UTC, datetime
from importlib.metadata import EntryPoint
from typing import Any

import pytest
import responses

from trickle.connectors.github.demo import GitHubDemo
from trickle.connectors.settings import ConnectorSettings
from trickle.linking.service import Authorization, Linker
from trickle.testing import demo_platform
from trickle.testing.demo_platform import (
    DemoLink,
    DemoPlatform,
    DemoPlatformError,
    Server,
    approve_in_browser,
    available_demo_platforms,
    load_demo_platform,
)


def _installed(monkeypatch: pytest.MonkeyPatch, **targets: str) -> None:
    points = [
        EntryPoint(name, target, demo_platform.ENTRY_POINT_GROUP)
        for name, target in targets.items()
    ]

    def entry_points(*, group: str) -> list[EntryPoint]:
        return [point for point in points if point.group == group]

    monkeypatch.setattr(demo_platform, "entry_points", entry_points)


def test_github_is_a_demo_platform_of_the_installed_package() -> None:
    assert "github" in available_demo_platforms()
    assert load_demo_platform("github") is GitHubDemo


def test_a_platform_that_does_not_import_is_named_with_its_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _installed(monkeypatch, broken="trickle_no_such_module.demo:Demo", github="x:y")

    with pytest.raises(DemoPlatformError, match=r"'broken' does not load: ModuleNotFoundError"):
        load_demo_platform("broken")


def test_something_that_is_not_a_demo_platform_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _installed(monkeypatch, impostor="trickle.connectors.github.connector:GitHubConnector")

    with pytest.raises(DemoPlatformError, match="'impostor' is not a DemoPlatform"):
        load_demo_platform("impostor")


def test_listing_the_platforms_loads_none_of_them(monkeypatch: pytest.MonkeyPatch) -> None:
    _installed(monkeypatch, broken="trickle_no_such_module.demo:Demo", other="also_missing:X")

    assert available_demo_platforms() == ["broken", "other"]


def test_an_unknown_platform_names_the_installed_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    _installed(monkeypatch, github="trickle.connectors.github.demo:GitHubDemo")

    with pytest.raises(DemoPlatformError, match=r"no demo platform 'orkut' \(installed: github\)"):
        load_demo_platform("orkut")


class _Server:
    def __init__(self, name: str, log: list[str], *, fails: bool = False) -> None:
        self.name, self.log, self.fails = name, log, fails
        self.base_url = f"http://127.0.0.1/{name}"

    def start(self) -> None:
        if self.fails:
            raise OSError(f"{self.name}: address in use")
        self.log.append(f"start {self.name}")

    def stop(self) -> None:
        self.log.append(f"stop {self.name}")


class _TwoServers(DemoPlatform):
    name = "two"

    def __init__(self, *, second_fails: bool = False, ready_fails: bool = False) -> None:
        self.log: list[str] = []
        self.ready_fails = ready_fails
        self.parts = [_Server("api", self.log), _Server("oauth", self.log, fails=second_fails)]

    def servers(self) -> Sequence[Server]:
        return self.parts

    def ready(self) -> None:
        if self.ready_fails:
            raise RuntimeError("could not register the app")
        self.log.append("ready")

    def settings(self, **common: Any) -> ConnectorSettings:
        raise NotImplementedError

    def add_person(self, name: str) -> None:
        raise NotImplementedError

    def publish(self, creator: str, count: int) -> list[Hashable]:
        raise NotImplementedError

    def like(self, person: str, item: Hashable, at: datetime) -> None:
        raise NotImplementedError

    def link(self, linker: Linker, person: str) -> DemoLink:
        raise NotImplementedError


def test_a_platform_starts_its_servers_in_order_and_stops_them_in_reverse() -> None:
    platform = _TwoServers()

    with platform:
        assert platform.log == ["start api", "start oauth", "ready"]

    assert platform.log[-2:] == ["stop oauth", "stop api"]
    assert platform.base_url == "http://127.0.0.1/api and http://127.0.0.1/oauth"


def test_a_server_that_fails_to_start_stops_those_started_before_it() -> None:
    platform = _TwoServers(second_fails=True)

    with pytest.raises(OSError, match="address in use"), platform:
        pass

    assert platform.log == ["start api", "stop api"]


def test_a_platform_that_cannot_get_ready_stops_every_server() -> None:
    platform = _TwoServers(ready_fails=True)

    with pytest.raises(RuntimeError), platform:
        pass

    assert platform.log == ["start api", "start oauth", "stop oauth", "stop api"]


@responses.activate
def test_a_consent_page_that_sends_no_one_back_is_a_clear_error() -> None:
    responses.get("http://127.0.0.1:9/authorize", status=200, body="<h1>Sign in</h1>")
    authorization = Authorization(
        url="http://127.0.0.1:9/authorize",
        state="s",
        redirect_uri="http://127.0.0.1:8765/callback",
        expires_at=datetime(2026, 12, 1, tzinfo=UTC),
    )

    with pytest.raises(DemoPlatformError, match="answered 200 without sending the browser back"):
        approve_in_browser(authorization)
