"""What connector authors and trickle's own tests import.

- :mod:`trickle.testing.fakeplatform`: serve a made-up or imitated platform
  API on 127.0.0.1, with latency injection and a log that catches two
  requests for one account overlapping.
- :mod:`trickle.connectors.github.fake`: GitHub's starring API, as the demo,
  the end-to-end tests and the benchmarks use it.
- :mod:`trickle.testing.wire`: the contract suite's HTTP client, which records every
  request a connector sends and can rewrite the answers (an HTML page, truncated JSON,
  a 503, a spent rate limit).
- :mod:`trickle.testing.fake_oauth` and :mod:`trickle.testing.oauth_connector`:
  a made-up OAuth 2 platform (token endpoint, public and confidential
  clients, one-hour tokens, single-use refresh tokens, RFC 7009 revocation,
  the likes API of :mod:`~trickle.testing.fake_likes`) and its connectors,
  a confidential and a public client, for everything that renews
  credentials (registered with ``Registry.of``, never an entry point).
- Authorization servers to link accounts through for real, strict to their
  RFCs: :mod:`~trickle.testing.fake_authorize` (the authorization endpoint
  and code grant with PKCE, loopback redirect URIs on any port),
  :mod:`~trickle.testing.fake_device` (RFC 8628's device flow),
  :mod:`~trickle.testing.fake_mastodon` with
  :mod:`~trickle.testing.mastodon_connector` (apps registered per server,
  ``client_credentials``, Mastodon's API), :mod:`~trickle.testing.fake_oauth1`
  with :mod:`~trickle.testing.oauth1_connector` (OAuth 1.0a, signatures
  checked by :mod:`~trickle.testing.rfc5849`), and
  :mod:`~trickle.testing.fake_pages` (the person at the browser: who is
  signed in, what they answer, escaped pages and redirects).
- :mod:`trickle.testing.worker`: ``trickle run`` processes on a test's
  simulated clock (:class:`~trickle.testing.worker.SharedClock`), with
  test-only connectors.
- :mod:`trickle.testing.contract`: the contract suite every connector must
  pass (needs pytest, so it is imported only when one of its names is first
  used: ``from trickle.testing import ConnectorContract``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from trickle.testing.fakeplatform import Answer, FakePlatform, FakeResponse, RawAnswer, Request

if TYPE_CHECKING:
    from trickle.testing.contract import (
        Call,
        ConnectorContract,
        ContractAccount,
        ContractPlatform,
        CredentialStore,
        Malformed,
        Unreadable,
    )

_CONTRACT_NAMES = frozenset(
    {
        "Call",
        "ConnectorContract",
        "ContractAccount",
        "ContractPlatform",
        "CredentialStore",
        "Malformed",
        "Unreadable",
    }
)

__all__ = [
    "Answer",
    "Call",
    "ConnectorContract",
    "ContractAccount",
    "ContractPlatform",
    "CredentialStore",
    "FakePlatform",
    "FakeResponse",
    "Malformed",
    "RawAnswer",
    "Request",
    "Unreadable",
]


def __getattr__(name: str) -> Any:
    """Import the contract suite (and pytest) only when one of its names is asked for."""
    if name in _CONTRACT_NAMES:
        return getattr(importlib.import_module("trickle.testing.contract"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
