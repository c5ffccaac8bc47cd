"""The seam between ``trickle demo`` and a connector's fake platform.

The demo plays one month on every platform it is asked for. It knows
nothing of any platform: each connector ships a :class:`DemoPlatform` next
to its fake (``trickle/connectors/NAME/demo.py``) and registers it under the
``trickle.demo_platforms`` entry point group with the connector's name, so
a plugin's platform can join the demo the same way its connector joins
trickle. A demo platform starts its fakes on 127.0.0.1 (the platform's API
and its authorization server), makes the demo's people accounts there, lets
them publish things and like each other's, and links a person's account
through the platform's own flow, playing the person's part in it (the
consent page, the device code) against the fake.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import entry_points
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self

import requests

from trickle.connectors.settings import ConnectorSettings
from trickle.core.errors import TrickleError
from trickle.linking.accounts import LinkResult
from trickle.linking.service import Authorization, Linker

ENTRY_POINT_GROUP = "trickle.demo_platforms"


class DemoPlatformError(TrickleError):
    """A demo platform asked for is not installed, or does not load."""


@dataclass(frozen=True)
class DemoLink:
    """An account the demo linked, and how, in a few words for the transcript
    (``"device code WDJB-MJHT entered"``, ``"approved in the browser (PKCE)"``)."""

    result: LinkResult
    how: str


class Server(Protocol):
    """A fake a demo platform runs: :class:`~trickle.testing.fakeplatform.FakePlatform` is one."""

    @property
    def base_url(self) -> str:
        """Where it answers."""
        ...

    def start(self) -> object:
        """Start serving on 127.0.0.1."""
        ...

    def stop(self) -> None:
        """Stop serving."""
        ...


def approve_in_browser(authorization: Authorization) -> str:
    """Play the person's browser at the platform's consent page (the person signed in at
    the fake beforehand): open the authorization address and return the address the
    platform sends the browser back to, for :meth:`Linker.complete`."""
    answer = requests.get(authorization.url, allow_redirects=False, timeout=10)
    back = answer.headers.get("Location")
    if not answer.is_redirect or not back:
        raise DemoPlatformError(
            f"the fake's consent page answered {answer.status_code} without sending the "
            "browser back"
        )
    return back


class DemoPlatform(ABC):
    """A fake platform the demo can play a month on.

    Used as a context manager: entering starts the fake servers, leaving
    stops them. People are named by the demo (``alice``, ``dave``, an
    organisation that never joins trickle); a person's account on the
    platform carries that name as its handle wherever the platform has
    handles, and the trickle user who links it has the same name.
    """

    name: ClassVar[str]
    """The connector's name (``github``): the demo links and polls through it."""
    likes_are: ClassVar[str] = "likes"
    """What the platform calls a like, plural, for the transcript (``stars``)."""

    @abstractmethod
    def servers(self) -> Sequence[Server]:
        """The fakes this platform runs on 127.0.0.1 (its API, its authorization server),
        started in this order by ``with`` and stopped in the reverse."""

    def ready(self) -> None:
        """Called once every server runs: register the demo's app there (default: nothing)."""
        return

    def __enter__(self) -> Self:
        """Start the servers and get them ready; a server that fails to start stops those
        started before it."""
        started: list[Server] = []
        try:
            for server in self.servers():
                server.start()
                started.append(server)
            self.ready()
        except BaseException:
            for server in reversed(started):
                server.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop every server :meth:`__enter__` started."""
        for server in reversed(self.servers()):
            server.stop()

    @property
    def base_url(self) -> str:
        """Where the fake API answers, for the demo's transcript (default: every server's
        address)."""
        return " and ".join(server.base_url for server in self.servers())

    @abstractmethod
    def settings(self, **common: Any) -> ConnectorSettings:
        """The connector's settings pointed at the fakes, with the demo's app credentials;
        ``common`` holds keys every connector has (``min_interval_seconds``, ...)."""

    @abstractmethod
    def add_person(self, name: str) -> None:
        """Give ``name`` an account on the platform (called once per person, before the rest)."""

    @abstractmethod
    def publish(self, creator: str, count: int) -> list[Hashable]:
        """``count`` things ``creator`` made that others can like; what :meth:`like` takes."""

    @abstractmethod
    def like(self, person: str, item: Hashable, at: datetime) -> None:
        """``person`` likes ``item`` at ``at`` (the demo's clock; earlier for the baseline)."""

    @abstractmethod
    def link(self, linker: Linker, person: str) -> DemoLink:
        """Link ``person``'s account to the trickle user of the same name through the
        platform's preferred flow, doing at the fake what the person would do."""

    # -- for ``trickle demo --web``: a person at a real browser ----------------------

    def allow_redirect(self, redirect_uri: str) -> None:
        """Let trickle's app at the fake also send browsers back to ``redirect_uri`` (the web
        side's ``/link/NAME/callback``). A fake that checks redirect URIs registers it;
        the default does nothing."""
        return

    def sign_in_browser(self, person: str) -> bool:
        """Sign whoever opens the fake's authorization pages in a browser in as ``person``,
        so that "Sign in with ..." on the web side approves as them; False (the default)
        when the fake cannot, and the web side's sign-in through it is not offered in the
        demo."""
        return False


def available_demo_platforms() -> list[str]:
    """The names of every installed demo platform, sorted (none of them is loaded)."""
    return sorted({entry.name for entry in entry_points(group=ENTRY_POINT_GROUP)})


def load_demo_platform(name: str) -> type[DemoPlatform]:
    """The demo platform registered as ``name``; a clear error when there is none or it
    does not load, so one broken plugin costs only its own platform."""
    matches = [entry for entry in entry_points(group=ENTRY_POINT_GROUP) if entry.name == name]
    if not matches:
        known = ", ".join(available_demo_platforms()) or "none"
        raise DemoPlatformError(f"no demo platform {name!r} (installed: {known})")
    try:
        loaded = matches[0].load()
    except Exception as exc:
        raise DemoPlatformError(
            f"demo platform {name!r} does not load: {type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, DemoPlatform)):
        raise DemoPlatformError(f"demo platform {name!r} is not a DemoPlatform")
    return loaded
