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
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from trickle.connectors.base import Identity
from trickle.connectors.github.payloads import STARS, USER, Star, User
from trickle.connectors.paginators import LinkHeader
from trickle.connectors.policy import DEFAULT_POLICY, Action, Answer
from trickle.connectors.quality import Capability, Tier
from trickle.connectors.rest import RestConnector
from trickle.core.events import LikeEvent

API_VERSION = "2022-11-28"
STAR_MEDIA_TYPE = "application/vnd.github.star+json"


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

    def identity(self, payload: Any) -> Identity:
        """The token's owner: numeric id and login."""
        user: User = payload
        return Identity(platform_user_id=str(user.id), handle=user.login)
