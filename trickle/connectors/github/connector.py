"""GitHub: a star is a like, the repository's owner is the creator.

GitHub's REST API directly, rather than PyGithub: ``get_starred()`` neither
asks for the ``application/vnd.github.star+json`` media type (so
``starred_at``, the like time, is lost) nor sends conditional requests for
list pages.

- ``GET /user`` tells who a token belongs to (linking).
- ``GET /user/starred?sort=created&direction=desc&per_page=100`` with the star
  media type lists stars newest first; pages follow the ``Link`` header.
- The first page is requested with ``If-None-Match``: a 304 means nothing new
  and does not count against the rate limit.
- The creator is ``repo.owner``, keyed by its numeric ``id`` (``login`` can be
  renamed); users and organisations alike.
- A 403 is a rate limit when the headers say the budget is spent (or name a
  ``retry-after``, or the message says so: GitHub's secondary limits), and
  otherwise a token that may not read stars: relink.

Linking: with the operator's OAuth app (``client_id``; "Enable Device Flow"
ticked) the device flow is the default, since it needs neither a redirect
nor the client secret; the web flow (authorization code with PKCE) needs the
secret too. Without an app, a personal access token. Stars are public, so
no scope is asked for. Unlinking revokes a token trickle's app obtained with
``DELETE /applications/{client_id}/token`` (basic auth with the app's
credentials), GitHub's own form of revocation.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import SecretStr
from requests.auth import HTTPBasicAuth

from trickle.connectors.base import Identity
from trickle.connectors.flows import AuthorizationCode, DeviceAuthorization, TokenImport
from trickle.connectors.github.payloads import STARS, USER, Star, User
from trickle.connectors.paginators import LinkHeader
from trickle.connectors.policy import DEFAULT_POLICY, Action, Answer
from trickle.connectors.quality import Capability, Tier
from trickle.connectors.rest import RestConnector
from trickle.connectors.settings import ConnectorSettings
from trickle.core.credentials import Credentials
from trickle.core.events import LikeEvent

API_VERSION = "2022-11-28"
STAR_MEDIA_TYPE = "application/vnd.github.star+json"
APP_PAGE = "https://github.com/settings/applications/new"
TOKEN_PAGE = "https://github.com/settings/tokens"  # noqa: S105 - a URL
OAUTH_TOKEN_URL = "https://github.com/login/oauth/access_token"  # noqa: S105 - a URL


class GitHubSettings(ConnectorSettings):
    """``[connectors.github]``: the common keys, and trickle's OAuth app, if registered."""

    client_id: str | None = None
    client_secret: SecretStr | None = None


def _forbidden(answer: Answer) -> Action:
    """GitHub's 403: a rate limit (primary: no requests left; secondary: ``retry-after`` or
    the message), else a token without the permission to read stars."""
    limits = answer.rate_limit
    if limits.exhausted or limits.retry_after or "rate limit" in answer.detail.lower():
        return Action.RATE_LIMIT
    return Action.REAUTH


class GitHubConnector(RestConnector):
    """Stars of the token owner on GitHub, with the time of each star."""

    name = "github"
    display_name = "GitHub"
    default_base_url = "https://api.github.com"
    default_page_size = 100
    page_size_range = (1, 100)  # GitHub's per_page is at most 100
    tier = Tier.GOLD
    capabilities = frozenset(
        {Capability.LIKE_TIME, Capability.CONDITIONAL_REQUESTS, Capability.RATE_LIMIT_HEADERS}
    )
    quality_rules = (
        "links-with-token",
        "identifies-account",
        "polls-incrementally",
        "typed-errors",
        "secrets-redacted",
        "contract-suite",
        "honours-rate-limits",
        "reads-rate-limits",
        "like-time",
        "fixtures-from-reference",
        "conditional-requests",
        "fake-platform",
    )
    error_policy = DEFAULT_POLICY.with_statuses({403: _forbidden})
    settings_model = GitHubSettings
    link_flows = (
        DeviceAuthorization(
            device_url="https://github.com/login/device/code",
            token_url=OAUTH_TOKEN_URL,
            app_page=APP_PAGE,
        ),
        AuthorizationCode(
            authorize_url="https://github.com/login/oauth/authorize",
            token_url=OAUTH_TOKEN_URL,
            app_page=APP_PAGE,
        ),
        TokenImport(
            how=(
                f"make a personal access token at {TOKEN_PAGE}: a classic one needs no scope "
                "for public stars, a fine-grained one read access to 'Starring'"
            )
        ),
    )

    likes_path = "/user/starred"
    likes_params = {"sort": "created", "direction": "desc"}
    page_size_param = "per_page"
    likes_headers = {"Accept": STAR_MEDIA_TYPE, "X-GitHub-Api-Version": API_VERSION}
    paginator = LinkHeader()
    page_model = STARS
    identity_path = "/user"
    identity_headers = {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
    }
    identity_model = USER

    def like(self, item: Any, observed_at: datetime) -> LikeEvent:
        """A star as a like of the repository, made by its owner."""
        star: Star = item
        repo = star.repo
        return LikeEvent(
            platform=self.name,
            item_id=str(repo.id),
            item_url=repo.html_url,
            creator_id=str(repo.owner.id),
            creator_handle=repo.owner.login,
            liked_at=star.starred_at,
            observed_at=observed_at,
        )

    def revoke(self, credentials: Credentials) -> bool | None:
        """Revoke a token of trickle's app with GitHub's ``DELETE
        /applications/{client_id}/token``; a personal token is the user's to revoke."""
        settings = self.settings
        assert isinstance(settings, GitHubSettings)
        if credentials.issued_by in (None, "token") or not credentials.access_token:
            return False
        client_id = settings.secret("client_id", platform=self.name)
        secret = settings.secret("client_secret", platform=self.name)
        response = self.http.request(
            "DELETE",
            f"{self.base_url}/applications/{client_id}/token",
            data=json.dumps({"access_token": credentials.access_token}),
            headers={
                "Accept": "application/vnd.github+json",
                "Content-Type": "application/json",
                "X-GitHub-Api-Version": API_VERSION,
            },
            auth=HTTPBasicAuth(client_id, secret),
            secrets=[credentials.access_token, secret],
            policy=DEFAULT_POLICY.with_statuses({401: Action.FAIL, 404: Action.OK}),
        )
        # 404: GitHub knows no such token of the app's: the user revoked it already. (Its 422,
        # "validation failed, or the endpoint has been spammed", is a failure to report.)
        return response.status_code in (204, 404)

    def identity(self, payload: Any) -> Identity:
        """The token's owner: numeric id and login."""
        user: User = payload
        return Identity(platform_user_id=str(user.id), handle=user.login)
