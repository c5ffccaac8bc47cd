"""Finding connectors: the ``trickle.connectors`` entry point group, loaded lazily by name.

Built-in connectors and operators' plugin packages register the same way
(``github = "trickle.connectors.github:GitHubConnector"``). A connector is
imported only when it is first needed, and one that fails to import is
reported with its reason instead of taking the others down.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from trickle.connectors.base import Connector
from trickle.connectors.quality import Legacy, Tier, assess
from trickle.connectors.settings import (
    ConnectorSettings,
    ConnectorSettingsError,
    load_connector_settings,
)
from trickle.core.errors import TrickleError

ENTRY_POINT_GROUP = "trickle.connectors"


class UnknownPlatform(TrickleError):
    """No connector is registered under that name."""


class ConnectorUnavailable(TrickleError):
    """A connector is registered but cannot be loaded (missing library, broken plugin)."""


@dataclass(frozen=True)
class FlowInfo:
    """One way of linking an account, and the settings it still needs (none: ready)."""

    kind: str
    description: str
    missing_settings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConnectorInfo:
    """What ``trickle connectors list`` shows for one registered connector."""

    name: str
    source: str
    available: bool
    display_name: str | None = None
    tier: Tier | None = None
    quality_rules: tuple[str, ...] = ()
    unmet_rules: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    not_applicable: tuple[str, ...] = ()
    """Rules of the tier about something the platform does not offer."""
    exemptions: Mapping[str, str] | None = None
    problems: tuple[str, ...] = ()
    """Quality declarations that do not stand (unknown rules, bad exemptions)."""
    missing_settings: tuple[str, ...] = ()
    """``[connectors.NAME]`` keys the connector needs that are not set."""
    settings_error: str | None = None
    """Why ``[connectors.NAME]`` is refused, when it is."""
    flows: tuple[FlowInfo, ...] = ()
    """Its link flows, the preferred first (with the settings: what each still needs)."""
    legacy: Legacy | None = None
    """When the platform's public API closed, if it has (see :class:`Legacy`)."""
    error: str | None = None

    @property
    def ready_flows(self) -> tuple[str, ...]:
        """The flows an account can be linked with now."""
        if self.settings_error is not None or self.missing_settings:
            return ()
        return tuple(f.kind for f in self.flows if not f.missing_settings)


class Registry:
    """The connectors this process can use, by name."""

    def __init__(self, targets: Mapping[str, EntryPoint | type[Connector]]) -> None:
        self._targets = dict(targets)
        self._loaded: dict[str, type[Connector]] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_entry_points(cls) -> Registry:
        """Every connector installed in this environment."""
        return cls({ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)})

    @classmethod
    def of(cls, connectors: Iterable[type[Connector]]) -> Registry:
        """A registry of the given classes (tests, embedding)."""
        return cls({c.name: c for c in connectors})

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._targets)

    def load(self, name: str) -> type[Connector]:
        """The connector class registered as ``name``, imported on first use."""
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
            if name not in self._targets:
                known = ", ".join(self.names()) or "none"
                raise UnknownPlatform(f"no connector for platform {name!r} (installed: {known})")
            if name in self._errors:
                raise ConnectorUnavailable(
                    f"connector {name!r} is unavailable: {self._errors[name]}"
                )
            target = self._targets[name]
            try:
                cls = target.load() if isinstance(target, EntryPoint) else target
            except Exception as exc:  # a plugin's import can fail in any way
                self._errors[name] = f"{type(exc).__name__}: {exc}"
                raise ConnectorUnavailable(
                    f"connector {name!r} is unavailable: {self._errors[name]}"
                ) from exc
            if not (isinstance(cls, type) and issubclass(cls, Connector)):
                self._errors[name] = f"{_source(target)} is not a trickle Connector subclass"
                raise ConnectorUnavailable(
                    f"connector {name!r} is unavailable: {self._errors[name]}"
                )
            if getattr(cls, "name", None) != name:
                self._errors[name] = (
                    f"{_source(target)} says its name is {getattr(cls, 'name', None)!r}, "
                    f"but it is registered as {name!r}"
                )
                raise ConnectorUnavailable(
                    f"connector {name!r} is unavailable: {self._errors[name]}"
                )
            self._loaded[name] = cls
            return cls

    def describe(
        self, tables: Mapping[str, Mapping[str, Any] | ConnectorSettings] | None = None
    ) -> list[ConnectorInfo]:
        """Try to load every connector and report each one's state; with the ``[connectors]``
        ``tables`` of the settings, also what each still needs from the operator."""
        infos = []
        for name in self.names():
            source = _source(self._targets[name])
            try:
                cls = self.load(name)
            except ConnectorUnavailable as exc:
                infos.append(ConnectorInfo(name, source, available=False, error=str(exc)))
                continue
            assessment = assess(cls.tier, cls.quality_rules, cls.capabilities, cls.exemptions)
            legacy = getattr(cls, "legacy", None)
            problems = assessment.problems
            if legacy is not None and not isinstance(legacy, Legacy):
                problems = (*problems, "legacy must be a trickle Legacy (closed_on, note)")
                legacy = None
            missing: tuple[str, ...] = ()
            settings_error = None
            flows = tuple(FlowInfo(f.kind, f.describe()) for f in cls.link_flows)
            if tables is not None:
                try:
                    settings = load_connector_settings(
                        cls.settings_model, tables.get(name), platform=name
                    )
                    missing = tuple(settings.missing())
                    flows = tuple(
                        FlowInfo(f.kind, f.describe(), tuple(settings.missing(f.needs)))
                        for f in cls.link_flows
                    )
                except ConnectorSettingsError as exc:
                    settings_error = str(exc)
            infos.append(
                ConnectorInfo(
                    name,
                    source,
                    available=True,
                    display_name=getattr(cls, "display_name", name),
                    tier=cls.tier,
                    quality_rules=tuple(cls.quality_rules),
                    unmet_rules=assessment.unmet,
                    capabilities=tuple(sorted(c.value for c in cls.capabilities)),
                    not_applicable=tuple(assessment.not_applicable),
                    exemptions=dict(assessment.exempt),
                    problems=problems,
                    missing_settings=missing,
                    settings_error=settings_error,
                    flows=flows,
                    legacy=legacy,
                )
            )
        return infos


def _source(target: EntryPoint | type[Connector]) -> str:
    if isinstance(target, EntryPoint):
        return target.value
    return f"{target.__module__}:{target.__qualname__}"
