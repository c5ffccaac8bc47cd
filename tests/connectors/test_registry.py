"""trickle.connectors.registry: connectors found through entry points, loaded lazily by name.

A broken plugin (fails to import, is not a Connector, calls itself by another
name) shows up as unavailable with its reason and never takes the others down.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from datetime import date
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar

import pytest

from trickle.connectors.github import GitHubConnector
from trickle.connectors.quality import Legacy, Tier, assess
from trickle.connectors.registry import (
    ENTRY_POINT_GROUP,
    ConnectorInfo,
    ConnectorUnavailable,
    FlowInfo,
    Registry,
    UnknownPlatform,
)

GITHUB_ENTRY_POINT = EntryPoint(
    name="github", value="trickle.connectors.github:GitHubConnector", group=ENTRY_POINT_GROUP
)

PLUGINS = {
    # imports a library that is not installed
    "trickle_test_plugin_missing_lib": """
        import trickle_test_no_such_library  # noqa: F401
    """,
    # raises while importing, and logs each attempt so a test can count them
    "trickle_test_plugin_crashes": """
        from pathlib import Path

        with (Path(__file__).parent / "imports.log").open("a") as log:
            log.write("crashes\\n")
        raise RuntimeError("the plugin needs TRICKLE_MYSPACE_KEY")
    """,
    # loads fine, but what it registers is not a Connector
    "trickle_test_plugin_not_a_connector": """
        class MySpace:
            name = "myspace"

        def factory():
            return MySpace
    """,
    # a real Connector that calls itself by another name than its entry point
    "trickle_test_plugin_misnamed": """
        from trickle.connectors.base import Connector, Tier

        class Friendster(Connector):
            name = "friendster"
            display_name = "Friendster"
            default_base_url = "https://api.friendster.example"
            tier = Tier.SILVER

            def identify(self, credentials):
                raise NotImplementedError

            def poll(self, account, state):
                raise NotImplementedError
    """,
    # a well-made plugin
    "trickle_test_plugin_good": """
        from trickle.connectors.base import Connector, Tier

        class Orkut(Connector):
            name = "orkut"
            display_name = "Orkut"
            default_base_url = "https://api.orkut.example"
            tier = Tier.SILVER
            quality_rules = ("links-with-token", "typed-errors")

            def identify(self, credentials):
                raise NotImplementedError

            def poll(self, account, state):
                raise NotImplementedError
    """,
}


def entry_point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Plugin modules in a fresh folder on sys.path (forgotten again after the test)."""
    for module, source in PLUGINS.items():
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in PLUGINS:
        sys.modules.pop(module, None)


@pytest.fixture
def mixed(plugin_dir: Path) -> Registry:
    """GitHub, one good plugin and four broken ones."""
    return Registry(
        {
            "github": GITHUB_ENTRY_POINT,
            "orkut": entry_point("orkut", "trickle_test_plugin_good:Orkut"),
            "myspace": entry_point("myspace", "trickle_test_plugin_not_a_connector:factory"),
            "tribe": entry_point("tribe", "trickle_test_plugin_misnamed:Friendster"),
            "bebo": entry_point("bebo", "trickle_test_plugin_missing_lib:Bebo"),
            "hi5": entry_point("hi5", "trickle_test_plugin_crashes:Hi5"),
            "vine": entry_point("vine", "trickle_test_plugin_good:Vine"),  # no such attribute
        }
    )


# ---------------------------------------------------------------------------
# Discovery


def test_the_installed_entry_points_include_github() -> None:
    registry = Registry.from_entry_points()
    assert "github" in registry.names()
    assert registry.load("github") is GitHubConnector


def test_github_is_described_with_its_tier_and_rules() -> None:
    infos = {info.name: info for info in Registry.from_entry_points().describe()}
    assert infos["github"] == ConnectorInfo(
        name="github",
        source="trickle.connectors.github:GitHubConnector",
        available=True,
        display_name="GitHub",
        tier=Tier.GOLD,
        quality_rules=GitHubConnector.quality_rules,
        capabilities=("conditional-requests", "like-time", "rate-limit-headers"),
        not_applicable=("refreshes-credentials",),  # GitHub's tokens do not expire
        exemptions={},
        flows=tuple(FlowInfo(f.kind, f.describe()) for f in GitHubConnector.link_flows),
    )


def test_which_flows_can_link_follows_the_settings() -> None:
    registry = Registry.of([GitHubConnector])
    [bare] = registry.describe({})
    assert bare.ready_flows == ("token",)
    assert [f.missing_settings for f in bare.flows] == [
        ("client_id",),
        ("client_id", "client_secret"),
        (),
    ]
    [device_only] = registry.describe({"github": {"client_id": "Iv1.abc"}})
    assert device_only.ready_flows == ("device", "token")
    [full] = registry.describe({"github": {"client_id": "Iv1.abc", "client_secret": "s"}})
    assert full.ready_flows == ("device", "oauth2", "token")


class _ClosedGitHub(GitHubConnector):
    """GitHub as it would be listed had its API closed."""

    name = "closed_github"
    legacy = Legacy(date(2018, 6, 15), "for servers that still speak it")


def test_a_connector_whose_platform_closed_its_api_is_described_as_legacy() -> None:
    closed, github = Registry.of([_ClosedGitHub, GitHubConnector]).describe()
    assert closed.legacy == Legacy(date(2018, 6, 15), "for servers that still speak it")
    assert closed.problems == ()
    assert github.legacy is None


def test_a_legacy_declaration_that_is_not_a_legacy_is_a_problem() -> None:
    class Muddled(GitHubConnector):
        name = "muddled"
        legacy = "closed in 2018"  # type: ignore[assignment]

    [info] = Registry.of([Muddled]).describe()
    assert info.legacy is None
    assert info.problems == ("legacy must be a trickle Legacy (closed_on, note)",)


def test_a_registry_of_classes() -> None:
    registry = Registry.of([GitHubConnector])
    assert registry.names() == ["github"]
    assert registry.load("github") is GitHubConnector
    [info] = registry.describe()
    assert info.source == "trickle.connectors.github.connector:GitHubConnector"
    assert info.available


def test_names_are_sorted(mixed: Registry) -> None:
    assert mixed.names() == ["bebo", "github", "hi5", "myspace", "orkut", "tribe", "vine"]


def test_nothing_is_imported_until_asked_for(plugin_dir: Path) -> None:
    registry = Registry({"hi5": entry_point("hi5", "trickle_test_plugin_crashes:Hi5")})
    assert registry.names() == ["hi5"]
    assert not (plugin_dir / "imports.log").exists()


# ---------------------------------------------------------------------------
# Broken plugins


def test_describe_reports_every_broken_plugin_with_its_reason(mixed: Registry) -> None:
    infos = {info.name: info for info in mixed.describe()}
    assert [info.name for info in mixed.describe()] == mixed.names()

    assert infos["github"].available
    assert infos["orkut"] == ConnectorInfo(
        name="orkut",
        source="trickle_test_plugin_good:Orkut",
        available=True,
        display_name="Orkut",
        tier=Tier.SILVER,
        quality_rules=("links-with-token", "typed-errors"),
        unmet_rules=assess(Tier.SILVER, ("links-with-token", "typed-errors")).unmet,
        not_applicable=("reads-rate-limits", "like-time", "refreshes-credentials"),
        exemptions={},
        flows=(FlowInfo("token", "a token made at the platform"),),
    )
    assert "honours-rate-limits" in infos["orkut"].unmet_rules  # a claim its rules do not back

    broken = {name: info for name, info in infos.items() if not info.available}
    assert set(broken) == {"bebo", "hi5", "myspace", "tribe", "vine"}
    for info in broken.values():
        assert info.error is not None
        assert info.tier is None
        assert info.display_name is None

    def reason(name: str) -> str:
        error = broken[name].error
        assert error is not None
        return error

    assert reason("bebo") == (
        "connector 'bebo' is unavailable: "
        "ModuleNotFoundError: No module named 'trickle_test_no_such_library'"
    )
    assert reason("hi5") == (
        "connector 'hi5' is unavailable: RuntimeError: the plugin needs TRICKLE_MYSPACE_KEY"
    )
    assert reason("myspace") == (
        "connector 'myspace' is unavailable: "
        "trickle_test_plugin_not_a_connector:factory is not a trickle Connector subclass"
    )
    assert reason("tribe") == (
        "connector 'tribe' is unavailable: trickle_test_plugin_misnamed:Friendster "
        "says its name is 'friendster', but it is registered as 'tribe'"
    )
    assert reason("vine").startswith("connector 'vine' is unavailable: AttributeError: ")
    assert broken["bebo"].source == "trickle_test_plugin_missing_lib:Bebo"


def test_a_plugin_registered_under_another_name_is_refused(plugin_dir: Path) -> None:
    registry = Registry(
        {"friendster2": entry_point("friendster2", "trickle_test_plugin_misnamed:Friendster")}
    )
    with pytest.raises(ConnectorUnavailable) as caught:
        registry.load("friendster2")
    assert str(caught.value) == (
        "connector 'friendster2' is unavailable: trickle_test_plugin_misnamed:Friendster "
        "says its name is 'friendster', but it is registered as 'friendster2'"
    )


def test_a_connector_class_without_a_name_is_refused(plugin_dir: Path) -> None:
    registry = Registry({"base": entry_point("base", "trickle.connectors.base:Connector")})
    with pytest.raises(ConnectorUnavailable, match="says its name is None"):
        registry.load("base")


def test_loading_a_broken_plugin_raises_unavailable_with_the_cause(mixed: Registry) -> None:
    with pytest.raises(ConnectorUnavailable, match="RuntimeError: the plugin needs") as caught:
        mixed.load("hi5")
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_a_broken_plugin_does_not_stop_the_others_from_loading(mixed: Registry) -> None:
    with pytest.raises(ConnectorUnavailable):
        mixed.load("bebo")
    assert mixed.load("github") is GitHubConnector
    assert mixed.load("orkut").display_name == "Orkut"


def test_a_failed_import_is_remembered_not_retried(mixed: Registry, plugin_dir: Path) -> None:
    for _ in range(3):
        with pytest.raises(ConnectorUnavailable, match="the plugin needs TRICKLE_MYSPACE_KEY"):
            mixed.load("hi5")
    mixed.describe()
    assert (plugin_dir / "imports.log").read_text() == "crashes\n"


# ---------------------------------------------------------------------------
# Caching and unknown names


class CountingEntryPoint(EntryPoint):
    """An entry point that counts how often it is loaded."""

    loads: ClassVar[int] = 0

    def load(self) -> Any:
        type(self).loads += 1
        return super().load()


def test_load_imports_once_and_caches_the_class() -> None:
    CountingEntryPoint.loads = 0
    counted = CountingEntryPoint(
        name="github", value="trickle.connectors.github:GitHubConnector", group=ENTRY_POINT_GROUP
    )
    registry = Registry({"github": counted})
    first = registry.load("github")
    assert registry.load("github") is first is GitHubConnector
    registry.describe()
    assert CountingEntryPoint.loads == 1


def test_an_unknown_platform_names_the_installed_ones(mixed: Registry) -> None:
    with pytest.raises(UnknownPlatform) as caught:
        mixed.load("myspace-classic")
    assert str(caught.value) == (
        "no connector for platform 'myspace-classic' "
        "(installed: bebo, github, hi5, myspace, orkut, tribe, vine)"
    )


def test_an_unknown_platform_in_an_empty_registry() -> None:
    with pytest.raises(UnknownPlatform, match=r"\(installed: none\)"):
        Registry({}).load("github")
