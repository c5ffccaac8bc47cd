"""GitHub: a star is a like, the repository's owner is the creator.

Uses GitHub's REST API directly through trickle's HTTP layer rather than
PyGithub, because PyGithub's ``get_starred()`` neither asks for the
``application/vnd.github.star+json`` media type (so ``starred_at``, the like
time, is lost) nor sends conditional requests for list pages.

- ``GET /user`` tells who a token belongs to (linking).
- ``GET /user/starred`` with ``Accept: application/vnd.github.star+json``,
  ``sort=created``, ``direction=desc``, ``per_page=100`` lists stars newest
  first as ``{"starred_at", "repo"}``; pages follow the ``Link`` header.
- The first page is requested with ``If-None-Match``: a 304 means nothing
  new and does not count against the rate limit.
- The creator is ``repo.owner`` keyed by its numeric ``id`` (``login`` can
  be renamed); users and organisations alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

import requests
from pydantic import (
    BaseModel,
    ConfigDict,
    StrictInt,
    StringConstraints,
    TypeAdapter,
)

from trickle.connectors.base import (
    AccountRef,
    AuthExpired,
    Connector,
    Identity,
    Page,
    PlatformError,
    PollResult,
    PollState,
    Tier,
    collect_new,
)
from trickle.connectors.http import Forbidden, json_body
from trickle.connectors.payloads import PlatformTime, parse_payload
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.events import LikeEvent
from trickle.core.text import printable

API_VERSION = "2022-11-28"
STAR_MEDIA_TYPE = "application/vnd.github.star+json"

NonEmpty = Annotated[str, StringConstraints(min_length=1)]
Id = StrictInt  # lax int would take ``true`` as 1 and pay the wrong creator


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=False)


class _Owner(_Payload):
    id: Id
    login: NonEmpty


class _Repo(_Payload):
    id: Id
    full_name: NonEmpty
    html_url: NonEmpty
    owner: _Owner


class _Star(_Payload):
    starred_at: PlatformTime
    repo: _Repo


class _User(_Payload):
    id: Id
    login: NonEmpty


_STARS = TypeAdapter(list[_Star])
_USER = TypeAdapter(_User)


def _token(credentials: Credentials) -> str:
    token = credentials.get("token")
    if not token:
        raise AuthExpired("no GitHub token is stored for this account: link it again")
    return token


class GitHubConnector(Connector):
    """Stars of the token owner on GitHub, with the time of each star."""

    name = "github"
    display_name = "GitHub"
    default_base_url = "https://api.github.com"
    default_page_size = 100
    tier = Tier.GOLD
    quality_rules = (
        "links-with-token",
        "identifies-account",
        "polls-incrementally",
        "conditional-requests",
        "honours-rate-limits",
        "typed-errors",
        "like-time",
        "contract-suite",
        "fixtures-from-reference",
        "fake-platform",
        "secrets-redacted",
    )

    def _headers(self, credentials: Credentials, accept: str) -> dict[str, str]:
        return {
            "Accept": accept,
            "Authorization": f"Bearer {_token(credentials)}",
            "X-GitHub-Api-Version": API_VERSION,
        }

    def _get(self, url: str, credentials: Credentials, **kwargs: Any) -> Any:
        try:
            return self.http.get(
                url,
                secrets=credentials.secret_values(),
                rate_limit_scope=self.rate_limit_scope,
                **kwargs,
            )
        except Forbidden as exc:
            # "Resource not accessible by personal access token": the token works but
            # may not read stars. Only the user can fix that, by linking a better token.
            raise AuthExpired(f"{exc}: the token lacks permission to read stars") from None

    def _next_link(self, response: requests.Response) -> str | None:
        """The ``rel="next"`` URL, only if it stays on the API host (the token goes with it)."""
        url = response.links.get("next", {}).get("url")
        if url is None:
            return None
        try:
            parts = urlsplit(url)
        except ValueError:  # "http://[::1": the header is the platform's text
            raise PlatformError("GET /user/starred: the next page link is not a URL") from None
        if parts[:2] != urlsplit(self.base_url)[:2]:
            host = printable(parts.hostname or "no host", 100)  # never the userinfo part
            raise PlatformError(
                f"GET /user/starred: the next page link points to another host "
                f"({host}); not following it with the account's token"
            )
        return str(url)

    def identify(self, credentials: Credentials) -> Identity:
        """``GET /user``: the numeric id and login of the token's owner."""
        response = self._get(
            f"{self.base_url}/user",
            credentials,
            headers=self._headers(credentials, "application/vnd.github+json"),
        )
        user = parse_payload(_USER, json_body(response), where="GET /user")
        return Identity(platform_user_id=str(user.id), handle=user.login)

    def poll(self, account: AccountRef, state: PollState) -> PollResult:
        """New stars since ``state``: one request when nothing changed, a page more per 100 new."""
        requests_made = 0
        first_etag: str | None = state.etag
        not_modified = False

        def pages() -> Iterator[Page]:
            nonlocal requests_made, first_etag, not_modified
            url: str | None = f"{self.base_url}/user/starred"
            params: dict[str, Any] | None = {
                "per_page": self.page_size,
                "sort": "created",
                "direction": "desc",
            }
            first = True
            while url:
                response = self._get(
                    url,
                    account.credentials,
                    params=params,
                    headers=self._headers(account.credentials, STAR_MEDIA_TYPE),
                    etag=state.etag if first else None,
                )
                requests_made += 1
                if first:
                    if response.status_code == 304:
                        not_modified = True
                        return
                    first_etag = response.headers.get("ETag")
                    first = False
                stars = parse_payload(_STARS, json_body(response), where="GET /user/starred")
                # After parsing: PlatformTime held each starred_at to the clock then, so the
                # LikeEvent's own check against a later observed_at cannot refuse it.
                observed = clock.now()
                url = self._next_link(response)
                params = None  # the next link carries them
                yield Page([self._event(star, observed) for star in stars], has_next=bool(url))

        events, _ = collect_new(pages(), state, self.settings.max_pages)
        if not_modified:
            return PollResult(events=[], state=state, requests=requests_made, not_modified=True)
        new_state = state.advanced((e.item_id for e in events), etag=first_etag)
        return PollResult(events=events, state=new_state, requests=requests_made)

    def _event(self, star: _Star, observed_at: datetime) -> LikeEvent:
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
