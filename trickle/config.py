"""trickle's settings: defaults, then a TOML file, then ``TRICKLE_*`` environment variables.

Every key is documented in ``config/trickle.example.toml``. Nested keys use a
double underscore in the environment: ``TRICKLE_WORKER__THREADS=32`` sets
``[worker] threads``; ``TRICKLE_CONNECTORS__GITHUB__BASE_URL`` sets
``[connectors.github] base_url``.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from trickle.connectors.settings import ConnectorSettings
from trickle.core.errors import TrickleError
from trickle.core.money import MoneyError, normalize_currency

DEFAULT_CONFIG_FILE = Path("trickle.toml")


class ConfigError(TrickleError):
    """The configuration file or environment holds something trickle cannot use."""


class WorkerSettings(BaseModel):
    """How a `trickle run` process polls and settles."""

    model_config = ConfigDict(extra="forbid")  # a misspelt [worker] key is an error

    processes: int = Field(default=1, ge=1)
    threads: int = Field(default=16, ge=1)
    tick_seconds: float = Field(default=2.0, gt=0)
    claim_batch: int = Field(default=100, ge=1)
    lease_seconds: int = Field(default=300, ge=1)
    failure_backoff_seconds: int = Field(default=60, ge=1)
    max_backoff_seconds: int = Field(default=6 * 3600, ge=1)
    jitter: float = Field(default=0.1, ge=0, lt=1)
    settle_every_seconds: int = Field(default=3600, ge=1)
    expire_every_seconds: int = Field(default=86400, ge=1)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    summary_seconds: float = Field(default=60.0, gt=0)
    heartbeat_seconds: float = Field(default=15.0, gt=0, le=3600)
    """How often a worker records in the database that it is alive (``/healthz``)."""


class LinkingSettings(BaseModel):
    """``[linking]``: how ``trickle link`` waits for a platform's redirect in a terminal."""

    model_config = ConfigDict(extra="forbid")

    loopback_port: int = Field(default=0, ge=0, le=65535)
    """The port of the redirect URI ``http://127.0.0.1:PORT/callback`` (0: any free port,
    for platforms that accept any loopback port as RFC 8252 asks)."""
    timeout_seconds: float = Field(default=300.0, ge=10, le=3600)
    """How long a link waits for the user to approve in the browser."""


class WebSettings(BaseModel):
    """``[web]``: the web side (``trickle web``, ``trickle run --web``)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = "http://127.0.0.1:8080"
    """The public address users open (an origin: ``https://trickle.example.org``); the OAuth
    callbacks to register are ``BASE_URL/link/PLATFORM/callback``."""
    listen: str = "127.0.0.1"
    """The address ``trickle web`` listens on (a proxy in front of it serves ``base_url``)."""
    port: int = Field(default=8080, ge=0, le=65535)
    cookie_secret: SecretStr | None = None
    """Signs the session cookies: a long random string, the same on every web process."""
    allowed_hosts: list[str] = []
    """Host names requests may name (default: ``base_url``'s); others are refused."""
    threads: int = Field(default=8, ge=1, le=256)
    session_days: float = Field(default=14, gt=0, le=366)
    login_link_minutes: int = Field(default=60, ge=1, le=30 * 24 * 60)
    """How long a link from ``trickle users login-link`` signs its user in."""
    sign_in_attempts_per_minute: int = Field(default=10, ge=1)
    """Per client address: sign-ins (login links, platform sign-ins, callbacks) beyond this
    are answered 429."""
    proxies: int = Field(default=0, ge=0, le=5)
    """How many reverse proxies in front set ``X-Forwarded-For``/``-Proto``/``-Host``
    (0: the headers are ignored)."""

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http or https address, e.g. https://example.org")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("base_url is an origin only (scheme, host, port), without a path")
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def secure(self) -> bool:
        """Served over https: cookies are sent over https only."""
        return self.base_url.startswith("https://")

    def hosts(self) -> list[str]:
        """The host names requests may name."""
        from urllib.parse import urlsplit

        return self.allowed_hosts or [urlsplit(self.base_url).netloc]

    def callback_url(self, platform: str) -> str:
        """The redirect URI to register for ``platform``'s OAuth app."""
        return f"{self.base_url}/link/{platform}/callback"


class ConnectorTable(ConnectorSettings):
    """A ``[connectors.NAME]`` table as the settings file holds it: the common keys checked,
    any other key kept for the connector's own settings model to check."""

    model_config = ConfigDict(extra="allow")


class Settings(BaseSettings):
    """All of trickle's settings."""

    model_config = SettingsConfigDict(
        env_prefix="TRICKLE_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    database_url: str = "sqlite:///trickle.db"
    fee_bps: int = Field(default=0, ge=0, le=10_000)
    escrow_days: int = Field(default=90, ge=1)
    currency: str = "EUR"
    secret_key: SecretStr | None = None
    secret_key_file: Path = Path("trickle.key")
    settle_grace_hours: int = Field(default=24, ge=0)
    settle_batch_users: int = Field(default=500, ge=1)
    unclaimed: Literal["reserve", "skip"] = "reserve"
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    worker: WorkerSettings = WorkerSettings()
    linking: LinkingSettings = LinkingSettings()
    web: WebSettings = WebSettings()
    connectors: dict[str, ConnectorTable] = {}
    """``[connectors.NAME]`` tables: the keys every connector understands checked here, a
    connector's own keys kept for its settings model (see
    :meth:`trickle.app.App.connector_settings`), which refuses the ones it does not know."""

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        from trickle.core.db import is_memory_sqlite

        if is_memory_sqlite(value):
            raise ValueError(
                "an in-memory SQLite database is gone when the command that made it ends; "
                "use a file, e.g. sqlite:///trickle.db"
            )
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        try:
            return normalize_currency(value)
        except MoneyError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("connectors", mode="before")
    @classmethod
    def _connector_tables(cls, value: Any) -> Any:
        # Code may give a connector's settings as a model instance; files and the
        # environment give tables.
        if isinstance(value, dict):
            return {
                name: table.model_dump(exclude_unset=True)
                if isinstance(table, ConnectorSettings)
                else table
                for name, table in value.items()
            }
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _toml_file.get()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


_toml_file: ContextVar[Path | None] = ContextVar("trickle_toml_file", default=None)


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Read settings; ``config_file`` (or ``./trickle.toml`` when it exists) under the env.

    Raises :class:`ConfigError` naming the file and the bad key.
    """
    path: Path | None
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
    elif "TRICKLE_CONFIG" in os.environ:
        path = Path(os.environ["TRICKLE_CONFIG"])
        if not path.is_file():
            raise ConfigError(f"config file not found: {path} (from TRICKLE_CONFIG)")
    else:
        path = DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None
    token = _toml_file.set(path)
    try:
        return Settings(**overrides)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    except SettingsError as exc:  # e.g. TRICKLE_WORKER='not json'
        raise ConfigError(f"bad configuration (environment): {exc}") from None
    except ValidationError as exc:
        where = f"{path} / environment" if path else "environment"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"bad configuration ({where}): {problems}") from None
    finally:
        _toml_file.reset(token)
