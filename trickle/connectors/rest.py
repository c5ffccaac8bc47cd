"""The declarative REST connector: a platform is its paths, its paginator and two mappings.

A :class:`RestConnector` owns the poll loop every REST platform shares: the
first page requested conditionally and its 304, paging with the declared
paginator, stopping at known items (:func:`~trickle.connectors.base.collect_new`),
the new state and the request count. A connector declares

- ``likes_path`` (and ``likes_params``, ``page_size_param``, ``likes_headers``),
- ``paginator`` (:mod:`trickle.connectors.paginators`),
- ``page_model`` and ``identity_path``/``identity_model`` (pydantic models of the
  platform's JSON, so a malformed answer is a :class:`PlatformError` naming the field),
- ``auth``, ``error_policy``, ``capabilities`` (from :class:`~trickle.connectors.base.Connector`),

and implements two mappings: :meth:`like` (an item of a page to a
:class:`~trickle.core.events.LikeEvent`) and :meth:`identity` (the identity
payload to an :class:`~trickle.connectors.base.Identity`); :meth:`items` when
a page is not the list itself. Hooks cover the rest: :meth:`first_request`
for incremental parameters from the state's cursor, :meth:`new_cursor`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from pydantic import TypeAdapter

from trickle.connectors.base import (
    AccountRef,
    Connector,
    Identity,
    Page,
    PollResult,
    PollState,
    collect_new,
)
from trickle.connectors.errors import PlatformError
from trickle.connectors.paginators import PageRequest, Paginator
from trickle.connectors.payloads import parse_payload
from trickle.connectors.quality import Capability
from trickle.connectors.session import AccountSession
from trickle.core.clock import clock
from trickle.core.events import LikeEvent


class RestConnector(Connector):
    """A connector for a REST API that lists a user's likes page by page (see the module)."""

    likes_path: ClassVar[str]
    """Path of the likes list; ``{platform_user_id}`` and ``{handle}`` are the account's."""
    likes_params: ClassVar[Mapping[str, str | int]] = {}
    """Query parameters of the first page (sort order, fields, expansions)."""
    page_size_param: ClassVar[str | None] = None
    """The query parameter that sets the page size (None: the platform's own)."""
    likes_headers: ClassVar[Mapping[str, str]] = {}
    """Headers of every likes request (a media type, an API version)."""
    paginator: ClassVar[Paginator]
    page_model: ClassVar[TypeAdapter[Any]]
    """The model of one page of the likes list, as the platform sends it."""
    identity_path: ClassVar[str]
    """Path that tells who the credentials belong to (``/user``, ``/me``)."""
    identity_params: ClassVar[Mapping[str, str | int]] = {}
    identity_headers: ClassVar[Mapping[str, str]] = {}
    identity_model: ClassVar[TypeAdapter[Any]]

    # -- the declaration's mappings and hooks --------------------------------

    def items(self, page: Any) -> Sequence[Any]:
        """The liked items of a validated page, newest first (default: the page is the list)."""
        return list(page)

    @abc.abstractmethod
    def like(self, item: Any, observed_at: datetime) -> LikeEvent:
        """One validated item as a like seen at ``observed_at``."""

    @abc.abstractmethod
    def identity(self, payload: Any) -> Identity:
        """The validated identity payload as an :class:`Identity`."""

    def first_request(self, account: AccountRef, state: PollState) -> PageRequest:
        """The first page's request: ``likes_path`` with ``likes_params`` and the page size.
        Override to add incremental parameters from ``state.cursor``."""
        params: dict[str, str | int] = dict(self.likes_params)
        if self.page_size_param:
            params[self.page_size_param] = self.page_size
        path = self.likes_path.format(
            platform_user_id=account.platform_user_id, handle=account.handle
        )
        return PageRequest(account.session.url(path), params)

    def new_cursor(self, state: PollState, events: Sequence[LikeEvent]) -> Mapping[str, Any] | None:
        """The connector's cursor after a poll that found ``events`` (None: keep the old one)."""
        return None

    @property
    def conditional(self) -> bool:
        """True when the first page is requested with the stored ETag."""
        return Capability.CONDITIONAL_REQUESTS in self.capabilities

    # -- what the base class asks for -----------------------------------------

    def identify(self, session: AccountSession) -> Identity:
        """GET ``identity_path`` and map its payload."""
        where = f"GET {self.identity_path}"
        body = session.get_json(
            self.identity_path, params=self.identity_params, headers=self.identity_headers
        )
        payload = parse_payload(self.identity_model, body, where=where)
        try:
            return self.identity(payload)
        except ValueError as exc:  # an id trickle cannot store (see Identity)
            raise PlatformError(f"{where}: {exc}") from None

    def poll(self, account: AccountRef, state: PollState) -> PollResult:
        """New likes since ``state``: one request when nothing changed, a page more per page of
        new likes, never past the first page holding a known one."""
        session = account.session
        sent_before = session.requests
        first = self.first_request(account, state)
        outcome: dict[str, Any] = {"etag": state.etag, "not_modified": False}

        def pages() -> Iterator[Page]:
            request: PageRequest | None = first
            where = f"GET {self.likes_path}"
            while request is not None:
                is_first = request is first
                response = session.get(
                    request.url,
                    params=request.params,
                    headers=self.likes_headers,
                    etag=state.etag if is_first and self.conditional else None,
                )
                if is_first:
                    if response.status_code == 304:
                        outcome["not_modified"] = True
                        return
                    outcome["etag"] = response.headers.get("ETag") if self.conditional else None
                body = session.json(response)
                payload = parse_payload(self.page_model, body, where=where)
                observed = clock.now()  # after parsing: PlatformTime checked against the clock
                try:
                    events = [self.like(item, observed) for item in self.items(payload)]
                except ValueError as exc:  # an id trickle cannot store (see LikeEvent)
                    raise PlatformError(f"{where}: {exc}") from None
                request = self.paginator.next_request(request, response, body)
                yield Page(events, has_next=request is not None)

        events, _ = collect_new(pages(), state, self.settings.max_pages)
        if outcome["not_modified"]:
            return PollResult(
                events=[],
                state=state,
                requests=session.requests - sent_before,
                not_modified=True,
                rate_limit=session.rate_limit,
            )
        new_state = state.advanced(
            (e.item_id for e in events),
            etag=outcome["etag"],
            cursor=self.new_cursor(state, events),
        )
        return PollResult(
            events=events,
            state=new_state,
            requests=session.requests - sent_before,
            rate_limit=session.rate_limit,
        )
