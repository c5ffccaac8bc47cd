"""Demo platforms are found by entry point, and one that is broken is named, not raised."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from trickle.connectors.github.demo import GitHubDemo
from trickle.testing import demo_platform
from trickle.testing.demo_platform import (
    DemoPlatformError,
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
