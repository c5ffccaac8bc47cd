"""The App wires settings to the database, the connectors and the key, once per process."""

from __future__ import annotations

from pathlib import Path

import pytest

from trickle.app import App
from trickle.config import Settings
from trickle.connectors.github import GitHubConnector
from trickle.connectors.http import Limits
from trickle.connectors.registry import Registry, UnknownPlatform
from trickle.core.credentials import Credentials, SecretKeyError, create_key_file


def test_connectors_are_built_once_with_their_settings(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'x.db'}",
        connectors={"github": {"base_url": "http://127.0.0.1:9", "page_size": 10}},
    )
    app = App(settings, registry=Registry.of([GitHubConnector]))
    connector = app.connector("github")
    assert connector is app.connector("github")
    assert connector.base_url == "http://127.0.0.1:9"
    assert connector.page_size == 10
    with pytest.raises(UnknownPlatform):
        app.connector("myspace")


class OtherGitHub(GitHubConnector):
    name = "other"


def test_each_connector_gets_its_own_limits_on_the_shared_sessions(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'x.db'}",
        connectors={
            "github": {"timeout_seconds": 5, "deadline_seconds": 30, "max_response_bytes": 1024},
        },
    )
    app = App(settings, registry=Registry.of([GitHubConnector, OtherGitHub]))
    github, other = app.connector("github"), app.connector("other")
    assert github.http.limits == Limits(timeout=5, deadline=30, max_bytes=1024)
    assert other.http.limits == Limits()  # no [connectors.other]: the defaults
    assert github.http.session is app.http.session is other.http.session


def test_settle_options_follow_the_settings(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'x.db'}",
        fee_bps=250,
        escrow_days=30,
        unclaimed="skip",
        settle_grace_hours=6,
    )
    options = App(settings).settle_options
    assert (options.fee_bps, options.escrow_days, options.unclaimed, options.grace_hours) == (
        250,
        30,
        "skip",
        6,
    )


def test_the_key_comes_from_the_key_file_when_no_key_is_set(tmp_path: Path) -> None:
    key_file = tmp_path / "trickle.key"
    create_key_file(key_file)
    app = App(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", secret_key_file=key_file))
    sealed = app.box.seal(Credentials(access_token="t"))
    assert App(
        Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", secret_key_file=key_file)
    ).box.open(sealed) == Credentials(access_token="t")


def test_without_any_key_the_error_says_how_to_get_one(tmp_path: Path) -> None:
    app = App(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'x.db'}", secret_key_file=tmp_path / "missing.key"
        )
    )
    with pytest.raises(SecretKeyError, match="trickle init"):
        _ = app.box


def test_the_settlement_posts_in_batches_of_the_configured_size(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", settle_batch_users=25)
    settlement = App(settings).settlement()
    assert settlement.batch_users == 25
    assert settlement.options == App(settings).settle_options
