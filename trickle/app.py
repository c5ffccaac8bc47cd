"""The wiring: one object that holds settings, database, connectors and keys for a process.

The CLI, the worker, the scheduler and the demo all build an :class:`App`
from :class:`~trickle.config.Settings` and ask it for what they need, so
there is exactly one place where a connector gets its settings and HTTP
client, and where the secret key is loaded.
"""

from __future__ import annotations

import threading
from functools import cached_property

from trickle.config import Settings
from trickle.connectors.base import Connector
from trickle.connectors.http import HttpClient, Limits
from trickle.connectors.registry import ConnectorUnavailable, Registry, UnknownPlatform
from trickle.connectors.settings import ConnectorSettings, load_connector_settings
from trickle.core.credentials import CredentialBox, SecretKeyError, load_key
from trickle.core.db import Database
from trickle.core.settlement import Settlement, SettleOptions


class App:
    """Everything one trickle process needs, created lazily."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: Registry | None = None,
        http: HttpClient | None = None,
    ) -> None:
        self.settings = settings
        self._registry = registry
        self._http = http
        self._connectors: dict[str, Connector] = {}
        self._lock = threading.Lock()

    @cached_property
    def db(self) -> Database:
        """The database (connects on first use)."""
        pool = max(5, self.settings.worker.threads + 4)
        return Database(self.settings.database_url, pool_size=pool, max_overflow=pool)

    @cached_property
    def registry(self) -> Registry:
        """The installed connectors."""
        return self._registry or Registry.from_entry_points()

    @cached_property
    def http(self) -> HttpClient:
        """The HTTP client of this process: its per-thread sessions and connection pools serve
        every connector, each through a view holding the connector's own limits."""
        return self._http or HttpClient(pool_size=max(10, self.settings.worker.threads))

    @cached_property
    def box(self) -> CredentialBox:
        """Seals and opens stored credentials; a missing key is a clear error."""
        secret = self.settings.secret_key.get_secret_value() if self.settings.secret_key else None
        key = load_key(secret, self.settings.secret_key_file)
        if key is None:
            raise SecretKeyError(
                f"no secret key: set TRICKLE_SECRET_KEY or run `trickle init`, which creates "
                f"{self.settings.secret_key_file}"
            )
        return CredentialBox(key)

    @property
    def settle_options(self) -> SettleOptions:
        """The settlement rules from the settings."""
        return SettleOptions(
            fee_bps=self.settings.fee_bps,
            escrow_days=self.settings.escrow_days,
            unclaimed=self.settings.unclaimed,
            grace_hours=self.settings.settle_grace_hours,
        )

    def settlement(self) -> Settlement:
        """A settlement under the settings' rules and posting batch size."""
        return Settlement(
            self.db, self.settle_options, batch_users=self.settings.settle_batch_users
        )

    def connector(self, platform: str) -> Connector:
        """The connector instance for ``platform`` (one per process, thread-safe), with its
        ``[connectors.NAME]`` settings validated by its model and an HTTP client bounded by
        their timeout, deadline and response size."""
        with self._lock:
            connector = self._connectors.get(platform)
            if connector is None:
                cls = self.registry.load(platform)
                settings = self._table(platform, cls.settings_model)
                connector = cls(settings, self.http.with_limits(Limits.of(settings)))
                self._connectors[platform] = connector
            return connector

    def connector_settings(self, platform: str) -> ConnectorSettings:
        """``[connectors.NAME]`` of ``platform``, validated by its connector's settings model
        (for a platform whose connector is not installed, by the common model)."""
        try:
            return self.connector(platform).settings
        except (UnknownPlatform, ConnectorUnavailable):
            return self._table(platform, ConnectorSettings)

    def _table(self, platform: str, model: type[ConnectorSettings]) -> ConnectorSettings:
        return load_connector_settings(
            model, self.settings.connectors.get(platform), platform=platform
        )

    def close(self) -> None:
        """Release database connections."""
        if "db" in self.__dict__:
            self.db.dispose()
