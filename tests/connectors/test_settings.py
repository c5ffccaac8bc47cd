"""Typed connector settings: the common keys, a connector's own, and what it still needs."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from trickle.connectors.errors import NotConfigured
from trickle.connectors.settings import (
    MAX_RESPONSE_BYTES_CEILING,
    ConnectorSettings,
    ConnectorSettingsError,
    MiB,
    load_connector_settings,
)


class AppSettings(ConnectorSettings):
    """A connector that needs an OAuth app registered with its platform."""

    required = ("client_id", "client_secret")

    client_id: str | None = None
    client_secret: SecretStr | None = None
    token_url: str | None = None


class TestConnectorSettings:
    def test_defaults(self) -> None:
        settings = ConnectorSettings()
        assert settings.base_url is None
        assert settings.page_size is None
        assert settings.max_pages == 50
        assert settings.timeout_seconds == 20.0
        assert settings.deadline_seconds == 60.0
        assert settings.max_response_bytes == 4 * MiB == 4_194_304

    def test_a_misspelt_key_is_an_error_naming_it(self) -> None:
        with pytest.raises(ConnectorSettingsError, match=r"\(\[connectors.github\]\): max_page: "):
            load_connector_settings(ConnectorSettings, {"max_page": 3}, platform="github")

    @pytest.mark.parametrize(
        "bad",
        [
            {"max_pages": 0},
            {"page_size": 0},
            {"min_interval_seconds": 0},
            {"timeout_seconds": 0},
            {"timeout_seconds": 3601},
            {"deadline_seconds": 0},
            {"deadline_seconds": -5},
            {"deadline_seconds": 86_400},
            {"max_response_bytes": 0},
            {"max_response_bytes": MAX_RESPONSE_BYTES_CEILING + 1},
            {"max_response_bytes": "lots"},
        ],
    )
    def test_rejects_values_that_cannot_work(self, bad: dict[str, object]) -> None:
        with pytest.raises(ValidationError) as caught:
            ConnectorSettings.model_validate(bad)
        assert caught.value.errors()[0]["loc"] == (next(iter(bad)),)

    def test_the_largest_response_size_allowed(self) -> None:
        assert 64 * MiB == MAX_RESPONSE_BYTES_CEILING
        settings = ConnectorSettings(max_response_bytes=MAX_RESPONSE_BYTES_CEILING)
        assert settings.max_response_bytes == MAX_RESPONSE_BYTES_CEILING


class TestAConnectorsOwnSettings:
    def test_a_connector_adds_keys_of_its_own(self) -> None:
        settings = load_connector_settings(
            AppSettings, {"client_id": "app-1", "client_secret": "s3cr3t"}, platform="x"
        )
        assert isinstance(settings, AppSettings)
        assert settings.client_id == "app-1"
        assert settings.secret("client_secret", platform="x") == "s3cr3t"

    def test_a_secret_setting_never_shows_in_its_repr(self) -> None:
        settings = AppSettings(client_secret=SecretStr("s3cr3t-value"))
        assert "s3cr3t-value" not in repr(settings)
        assert settings.secret_values() == ["s3cr3t-value"]

    def test_what_is_missing_is_named_and_a_missing_secret_says_where_to_set_it(self) -> None:
        settings = AppSettings(client_id="app-1")
        assert settings.missing() == ["client_secret"]
        with pytest.raises(
            NotConfigured,
            match=r"\[connectors.x\] client_secret .*TRICKLE_CONNECTORS__X__CLIENT_SECRET",
        ):
            settings.secret("client_secret", platform="x")
        assert AppSettings(client_id="a", client_secret=SecretStr("b")).missing() == []
        assert AppSettings(client_id="", client_secret=SecretStr("")).missing() == [
            "client_id",
            "client_secret",
        ]
