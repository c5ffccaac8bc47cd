"""Settings: defaults, then a TOML file, then TRICKLE_* environment variables."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trickle.app import App
from trickle.config import (
    ConfigError,
    LinkingSettings,
    Settings,
    WebSettings,
    WorkerSettings,
    load_settings,
)
from trickle.connectors.github.connector import GitHubSettings
from trickle.connectors.settings import ConnectorSettings, ConnectorSettingsError

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "trickle.example.toml"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No TRICKLE_* variables and an empty working directory (so no ./trickle.toml)."""
    for name in list(os.environ):
        if name.startswith("TRICKLE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------
# defaults and the environment


def test_without_file_or_environment_the_defaults_apply() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite:///trickle.db"
    assert settings.fee_bps == 0
    assert settings.escrow_days == 90
    assert settings.currency == "EUR"
    assert settings.secret_key is None
    assert settings.secret_key_file == Path("trickle.key")
    assert settings.settle_grace_hours == 24
    assert settings.unclaimed == "reserve"
    assert settings.log_level == "INFO"
    assert settings.log_format == "text"
    assert settings.worker == WorkerSettings()
    assert settings.worker.threads == 16
    assert settings.worker.summary_seconds == 60
    assert settings.connectors == {}


def test_environment_variables_with_the_trickle_prefix_override_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRICKLE_FEE_BPS", "250")
    monkeypatch.setenv("TRICKLE_DATABASE_URL", "postgresql+psycopg://u@db/trickle")
    monkeypatch.setenv("TRICKLE_UNCLAIMED", "skip")
    monkeypatch.setenv("TRICKLE_SECRET_KEY", "k" * 44)
    settings = load_settings()
    assert settings.fee_bps == 250
    assert settings.database_url == "postgresql+psycopg://u@db/trickle"
    assert settings.unclaimed == "skip"
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == "k" * 44


def test_variables_without_the_prefix_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEE_BPS", "250")
    assert load_settings().fee_bps == 0


def test_unrelated_trickle_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRICKLE_TEST_POSTGRES_URL", "postgresql+psycopg://x@y/z")
    assert load_settings().database_url == "sqlite:///trickle.db"


def test_the_log_format_is_text_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().log_format == "text"
    monkeypatch.setenv("TRICKLE_LOG_FORMAT", "json")
    assert load_settings().log_format == "json"
    monkeypatch.setenv("TRICKLE_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="log_format"):
        load_settings()


def test_the_currency_is_normalized_to_upper_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRICKLE_CURRENCY", "usd")
    assert load_settings().currency == "USD"


def test_nested_keys_join_with_a_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRICKLE_WORKER__THREADS", "32")
    monkeypatch.setenv("TRICKLE_CONNECTORS__GITHUB__BASE_URL", "http://127.0.0.1:9999")
    settings = load_settings()
    assert settings.worker.threads == 32
    assert settings.worker.lease_seconds == 300
    assert settings.connectors["github"].base_url == "http://127.0.0.1:9999"


def test_the_secret_key_is_never_shown_in_the_settings_repr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRICKLE_SECRET_KEY", "very-secret-key-value")
    settings = load_settings()
    assert "very-secret-key-value" not in repr(settings)
    assert "very-secret-key-value" not in str(settings)


def test_keyword_overrides_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRICKLE_FEE_BPS", "250")
    assert load_settings(fee_bps=100).fee_bps == 100


# ---------------------------------------------------------------------------
# the TOML file


def test_a_toml_file_given_by_path_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path / "elsewhere.toml",
        'fee_bps = 300\ncurrency = "gbp"\n[worker]\nthreads = 4\n'
        '[connectors.github]\nmax_pages = 3\nplugin_knob = "on"\n',
    )
    for given in (path, str(path)):
        settings = load_settings(given)
        assert settings.fee_bps == 300
        assert settings.currency == "GBP"
        assert settings.worker.threads == 4
        assert settings.worker.claim_batch == 100
        assert settings.connectors["github"].max_pages == 3
        assert settings.connectors["github"].model_extra == {"plugin_knob": "on"}


def test_trickle_toml_in_the_working_directory_is_found(clean_environment: Path) -> None:
    write(clean_environment / "trickle.toml", "escrow_days = 30\n")
    assert load_settings().escrow_days == 30


def test_a_file_named_by_trickle_config_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write(tmp_path / "trickle.toml", "escrow_days = 30\n")
    path = write(tmp_path / "other.toml", "escrow_days = 60\n")
    monkeypatch.setenv("TRICKLE_CONFIG", str(path))
    assert load_settings().escrow_days == 60


def test_an_explicit_file_wins_over_trickle_config_and_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write(tmp_path / "trickle.toml", "escrow_days = 30\n")
    monkeypatch.setenv("TRICKLE_CONFIG", str(write(tmp_path / "env.toml", "escrow_days = 60\n")))
    assert load_settings(write(tmp_path / "cli.toml", "escrow_days = 7\n")).escrow_days == 7


def test_the_environment_beats_the_toml_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write(tmp_path / "t.toml", "fee_bps = 300\n[worker]\nthreads = 8\nlease_seconds = 100\n")
    monkeypatch.setenv("TRICKLE_FEE_BPS", "50")
    monkeypatch.setenv("TRICKLE_WORKER__THREADS", "32")
    settings = load_settings(path)
    assert settings.fee_bps == 50
    assert settings.worker.threads == 32
    assert settings.worker.lease_seconds == 100  # the file's other [worker] keys still apply


def test_a_file_is_only_read_by_the_load_that_names_it(tmp_path: Path) -> None:
    load_settings(write(tmp_path / "t.toml", "fee_bps = 300\n"))
    assert Settings().fee_bps == 0
    assert load_settings().fee_bps == 0


def test_a_connector_without_a_table_gets_the_default_settings(tmp_path: Path) -> None:
    assert "mastodon" not in load_settings().connectors
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'x.db'}")
    assert App(settings).connector_settings("mastodon") == ConnectorSettings()


def test_a_connectors_own_model_refuses_a_key_it_does_not_know(tmp_path: Path) -> None:
    path = write(tmp_path / "t.toml", "[connectors.github]\nmax_page = 3\n")
    app = App(load_settings(path, database_url=f"sqlite:///{tmp_path / 'x.db'}"))
    with pytest.raises(ConnectorSettingsError, match=r"\[connectors.github\]\): max_page:"):
        app.connector("github")


# ---------------------------------------------------------------------------
# errors


def test_a_missing_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.toml"):
        load_settings(tmp_path / "nope.toml")


def test_a_missing_file_named_by_trickle_config_says_where_the_name_came_from(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRICKLE_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match=r"nope\.toml \(from TRICKLE_CONFIG\)"):
        load_settings()


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path)


def test_a_file_that_is_not_toml_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.toml", "fee_bps = \n[worker\n")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML: .*line 1"):
        load_settings(path)


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("fee_bps = 20000", "fee_bps"),
        ("fee_bps = 'lots'", "fee_bps"),
        ("escrow_days = 0", "escrow_days"),
        ('currency = "XYZ"', "currency"),
        ('unclaimed = "pay"', "unclaimed"),
        ("fee_bsp = 250", "fee_bsp"),
        ("[worker]\nthreads = 0", "worker.threads"),
        ("[worker]\njitter = 1.5", "worker.jitter"),
        ("[worker]\nthread = 32", "worker.thread"),
        ("[connectors.github]\nmax_concurrency = 0", "connectors.github.max_concurrency"),
        ("[connectors.github]\ntimeout_seconds = 'soon'", "connectors.github.timeout_seconds"),
    ],
)
def test_a_bad_value_in_the_file_is_a_config_error_naming_the_key(
    tmp_path: Path, toml: str, key: str
) -> None:
    path = write(tmp_path / "t.toml", toml + "\n")
    with pytest.raises(ConfigError, match=rf"bad configuration \(.*t\.toml.*\): {re.escape(key)}:"):
        load_settings(path)


def test_every_bad_key_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path / "t.toml", "fee_bps = -1\n[worker]\nthreads = 0\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "fee_bps:" in str(caught.value)
    assert "worker.threads:" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value", "key"),
    [
        ("TRICKLE_FEE_BPS", "a lot", "fee_bps"),
        ("TRICKLE_WORKER__THREADS", "-3", "worker.threads"),
        ("TRICKLE_CURRENCY", "euro", "currency"),
    ],
)
def test_a_bad_environment_value_is_a_config_error_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, key: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=rf"bad configuration \(environment\): {re.escape(key)}:"):
        load_settings()


def test_a_nested_table_given_as_unparsable_json_in_the_environment_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRICKLE_WORKER", "not json")
    with pytest.raises(ConfigError, match='"worker"'):
        load_settings()


def test_config_errors_do_not_echo_the_secret_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRICKLE_SECRET_KEY", "very-secret-key-value")
    path = write(tmp_path / "t.toml", "fee_bps = -1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "very-secret-key-value" not in str(caught.value)


# ---------------------------------------------------------------------------
# the example file


def _documented_keys(text: str, table: str | None) -> set[str]:
    """Keys set in ``table`` of the example, plus keys shown there commented out."""
    parsed = tomllib.loads(text)
    section: dict[str, object] = parsed
    if table is not None:
        for part in table.split("."):
            section = section.get(part, {})  # type: ignore[assignment]  # commented out: {}
    keys = {k for k, v in section.items() if not isinstance(v, dict)}
    current: str | None = None
    for line in text.splitlines():
        header = re.match(r"^(?:#\s*)?\[([\w.]+)\]\s*(?:#.*)?$", line)
        if header:
            current = header[1]
            continue
        commented = re.match(r"^#\s*(\w+)\s*=", line)
        if commented and current == table:
            keys.add(commented[1])
    return keys


def test_the_example_file_documents_each_built_in_connectors_own_keys() -> None:
    text = EXAMPLE.read_text()
    common = set(ConnectorSettings.model_fields)
    for name, target in _built_in_connectors().items():
        own = set(target.settings_model.model_fields) - common
        assert own <= _documented_keys(text, f"connectors.{name}"), name


def _built_in_connectors() -> dict[str, type[Any]]:
    from importlib.metadata import entry_points

    return {
        entry.name: entry.load()
        for entry in entry_points(group="trickle.connectors")
        if entry.value.startswith("trickle.")
    }


def test_the_example_file_loads() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.connectors["github"].max_concurrency == 8


def test_the_example_file_shows_the_defaults() -> None:
    example = load_settings(EXAMPLE)
    defaults = Settings()
    assert example.model_dump(exclude={"connectors"}) == defaults.model_dump(exclude={"connectors"})


def test_the_example_file_documents_every_setting() -> None:
    text = EXAMPLE.read_text()
    tables = {"worker", "linking", "web", "connectors"}
    assert _documented_keys(text, None) == set(Settings.model_fields) - tables
    assert _documented_keys(text, "worker") == set(WorkerSettings.model_fields)
    assert _documented_keys(text, "web") == set(WebSettings.model_fields)
    assert _documented_keys(text, "linking") == set(LinkingSettings.model_fields)
    assert _documented_keys(text, "connectors.github") == set(GitHubSettings.model_fields)
