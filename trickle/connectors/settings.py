"""Typed connector settings: the ``[connectors.NAME]`` table, validated by the connector's model.

Every connector declares a ``settings_model``: :class:`ConnectorSettings`
(what every connector understands: the API root, polling intervals,
concurrency, the HTTP limits) or a subclass adding the platform's own keys
(an app's client id, its secret as a :class:`~pydantic.SecretStr`, an API
key). A misspelt key is an error that names it, and a key the connector
needs (``required``) but the operator has not set is reported by
``trickle connectors list`` and refused, with where to set it, when it is
needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from trickle.connectors.errors import NotConfigured
from trickle.core.errors import TrickleError

MiB = 1 << 20

DEFAULT_TIMEOUT_SECONDS = 20.0
"""How long one connect, or one wait for data, may take by default."""
DEFAULT_DEADLINE_SECONDS = 60.0
"""How long one request may take by default, retries and reading the body included."""
DEFAULT_MAX_RESPONSE_BYTES = 4 * MiB
"""The most one answer may hold by default, after decompression. GitHub's page of 100 stars
is about 0.5 MB; a page eight times that size is not a page of likes."""
MAX_RESPONSE_BYTES_CEILING = 64 * MiB
"""The highest ``max_response_bytes`` may be set: every poll thread may hold that much."""


class ConnectorSettingsError(TrickleError):
    """A ``[connectors.NAME]`` table the connector's settings model refuses."""


class ConnectorSettings(BaseModel):
    """What every connector understands in ``[connectors.NAME]``.

    ``timeout_seconds``, ``deadline_seconds`` and ``max_response_bytes`` bound every HTTP
    request the connector makes (see :class:`trickle.connectors.http.Limits`). Subclasses
    add the platform's keys and name in ``required`` those it cannot work without.
    """

    model_config = ConfigDict(extra="forbid")

    required: ClassVar[tuple[str, ...]] = ()
    """Keys the connector needs set (an app's credentials): see :meth:`missing`."""

    base_url: str | None = None  # None: the platform's real API root
    oauth_base_url: str | None = None
    """Replaces the origin of the platform's OAuth endpoints (a fake authorization server)."""
    min_interval_seconds: int = Field(default=300, ge=1)
    max_interval_seconds: int = Field(default=3600, ge=1)
    max_concurrency: int = Field(default=8, ge=1)
    timeout_seconds: float = Field(default=DEFAULT_TIMEOUT_SECONDS, gt=0, le=3600)
    deadline_seconds: float = Field(default=DEFAULT_DEADLINE_SECONDS, gt=0, le=3600)
    max_response_bytes: int = Field(
        default=DEFAULT_MAX_RESPONSE_BYTES, gt=0, le=MAX_RESPONSE_BYTES_CEILING
    )
    page_size: int | None = Field(default=None, ge=1)
    max_pages: int = Field(default=50, ge=1)
    allow_private_hosts: bool = False
    """For a connector whose hosts users name: let them be private, loopback or other
    non-public addresses, and plain http to those (a fake on 127.0.0.1, servers on the
    operator's own network); see :mod:`trickle.connectors.hosts`."""

    def missing(self, names: Iterable[str] | None = None) -> list[str]:
        """Which of ``names`` (default: the ``required`` keys) are not set."""
        wanted = self.required if names is None else names
        return [name for name in wanted if not _is_set(getattr(self, name, None))]

    def secret(self, name: str, *, platform: str) -> str:
        """The value of the key ``name`` (a secret's revealed), or :class:`NotConfigured`
        saying where to set it."""
        value = getattr(self, name, None)
        if not _is_set(value):
            raise NotConfigured(
                f"{platform}: the setting {name} is not set "
                f"([connectors.{platform}] {name} in the settings file, or "
                f"TRICKLE_CONNECTORS__{platform.upper()}__{name.upper()})"
            )
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)

    def secret_values(self) -> list[str]:
        """Every :class:`~pydantic.SecretStr` value set, for redacting them from messages."""
        values = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                values.append(value.get_secret_value())
        return values


def _is_set(value: Any) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return value is not None and value != ""


def load_connector_settings(
    model: type[ConnectorSettings],
    values: Mapping[str, Any] | ConnectorSettings | None,
    *,
    platform: str,
) -> ConnectorSettings:
    """Validate a ``[connectors.NAME]`` table with ``model`` (a table given as settings of
    another model is validated again as its keys); errors name the key and say where."""
    if isinstance(values, ConnectorSettings):
        values = values.model_dump(exclude_unset=True)
    try:
        return model(**(values or {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(table)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConnectorSettingsError(
            f"bad settings for connector {platform!r} ([connectors.{platform}]): {problems}"
        ) from None
