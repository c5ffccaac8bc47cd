"""``trickle link`` at a keyboard: each kind of flow run with what a person in a terminal needs.

- The device flow shows the code and the page to enter it at (and opens the
  page when there is a browser), then waits with a countdown.
- A redirect flow follows RFC 8252: a listener on ``127.0.0.1`` (the port of
  ``[linking] loopback_port``, else any free one), the authorization URL
  printed and opened in the browser, a countdown until
  ``[linking] timeout_seconds``. Without a browser (``--no-browser``, a
  headless machine) the user opens the URL anywhere and pastes back the
  address the platform sent their browser to, which need not load.
- The platform's own login (:class:`SessionLogin`) shows the flow's warning,
  asks for the username, then the password hidden (never echoed, never
  kept), and the second-factor code when the platform wants one.

What the terminal shows and reads is passed in (:class:`Terminal`), so the
command line prints through :mod:`trickle.output` and tests play the user.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from trickle.config import LinkingSettings
from trickle.connectors.flows import (
    AppPassword,
    DeviceAuthorization,
    LinkFlow,
    SecondFactor,
    SessionLogin,
)
from trickle.linking.accounts import LinkError, LinkResult
from trickle.linking.loopback import CALLBACK_PATH, LoopbackRedirect
from trickle.linking.service import Linker

STABLE_PORT = 8765
"""The loopback port of flows whose redirect URI should not change between links (an app
registered on each server per redirect URI), when ``[linking] loopback_port`` is 0."""

Countdown = Callable[[str], AbstractContextManager[Callable[[int], None]]]
"""``with countdown("waiting for ...") as tick:`` shows a wait; ``tick(seconds_left)``."""


@dataclass(frozen=True)
class Terminal:
    """How a flow talks to the person at the terminal."""

    show: Callable[[str], None]
    """Print one line (literally: it may hold a platform's URL)."""
    ask: Callable[[str], str]
    """Ask for one line of input, shown as it is typed."""
    countdown: Countdown
    open_browser: Callable[[str], bool] | None
    """Open a URL in the browser, True if one opened; None: never try (``--no-browser``)."""
    sleep: Callable[[float], None] = time.sleep
    """How to wait between two polls of the device flow."""
    ask_secret: Callable[[str], str] | None = None
    """Ask for a secret without showing it as it is typed (a password); None: this terminal
    cannot, and a flow that needs one refuses to run."""


def run_flow(
    linker: Linker,
    flow: LinkFlow,
    platform: str,
    user: str,
    *,
    terminal: Terminal,
    settings: LinkingSettings,
    host: str | None = None,
) -> LinkResult:
    """Link ``user``'s ``platform`` account with ``flow`` (not a token import: the command
    line asks for the token itself), talking to the user through ``terminal``."""
    if isinstance(flow, DeviceAuthorization):
        return _device(linker, platform, user, terminal)
    if isinstance(flow, AppPassword):
        return _app_password(linker, flow, platform, user, terminal)
    if isinstance(flow, SessionLogin):
        return _login(linker, flow, platform, user, terminal)
    if not flow.redirects:
        raise LinkError(f"{platform}'s {flow.kind} flow cannot run in a terminal")
    if terminal.open_browser is None:
        return _pasted(linker, flow, platform, user, terminal, settings, host)
    return _listened(linker, flow, platform, user, terminal, terminal.open_browser, settings, host)


def _device(linker: Linker, platform: str, user: str, terminal: Terminal) -> LinkResult:
    device = linker.start_device(platform, user)
    terminal.show(f"Open {device.verification_uri} and enter the code {device.user_code}")
    if terminal.open_browser is not None:
        terminal.open_browser(device.verification_uri)
    waiting = terminal.countdown(f"waiting for the code {device.user_code}")
    with _cancelled_on_interrupt(linker, device.state), waiting as tick:
        return linker.wait_device(device, sleep=terminal.sleep, waiting=tick)


def _app_password(
    linker: Linker, flow: AppPassword, platform: str, user: str, terminal: Terminal
) -> LinkResult:
    if terminal.ask_secret is None:
        raise LinkError(f"{platform}'s app password cannot be asked for without hiding it here")
    example = f" (like {flow.example})" if flow.example else ""
    identifier = terminal.ask(f"your {flow.identifier}{example}: ")
    if flow.app_page:
        terminal.show(
            f"Make an app password for trickle at {flow.app_page} (trickle uses it once to "
            "check the account is yours, and does not keep it)"
        )
    password = terminal.ask_secret("app password: ")
    return linker.sign_in(platform, user, identifier, password)


def _login(
    linker: Linker, flow: SessionLogin, platform: str, user: str, terminal: Terminal
) -> LinkResult:
    if terminal.ask_secret is None:
        raise LinkError(
            "this terminal cannot read a password without showing it: nothing was linked"
        )
    if flow.warning:
        terminal.show(flow.warning)
    username = terminal.ask(f"{platform} username: ")
    password = terminal.ask_secret(f"{platform} password for {username.strip()}: ")
    outcome = linker.log_in(platform, user, username, password)
    del password  # used once: not kept a moment longer than the login
    if not isinstance(outcome, SecondFactor):
        return outcome
    code = terminal.ask(outcome.prompt)
    return linker.confirm_login(platform, user, outcome, code)


def _listened(
    linker: Linker,
    flow: LinkFlow,
    platform: str,
    user: str,
    terminal: Terminal,
    open_browser: Callable[[str], bool],
    settings: LinkingSettings,
    host: str | None,
) -> LinkResult:
    with LoopbackRedirect(_port(flow, settings)) as listener:
        authorization = linker.authorize(
            platform, user, redirect_uri=listener.redirect_uri, host=host, kind=flow.kind
        )
        with _cancelled_on_interrupt(linker, authorization.state):
            terminal.show("Approve trickle's access in your browser; if it does not open, visit:")
            terminal.show(authorization.url)
            if not open_browser(authorization.url):
                terminal.show(
                    "(no browser could be opened here: open the address on this machine, or "
                    "run the link again with --no-browser to paste the answer from another)"
                )
            with terminal.countdown("waiting for the browser") as tick:
                redirected = listener.wait(settings.timeout_seconds, tick)
    return linker.complete(redirected)


def _pasted(
    linker: Linker,
    flow: LinkFlow,
    platform: str,
    user: str,
    terminal: Terminal,
    settings: LinkingSettings,
    host: str | None,
) -> LinkResult:
    port = _port(flow, settings) or _free_port()
    redirect_uri = f"http://127.0.0.1:{port}{CALLBACK_PATH}"
    authorization = linker.authorize(
        platform, user, redirect_uri=redirect_uri, host=host, kind=flow.kind
    )
    with _cancelled_on_interrupt(linker, authorization.state):
        terminal.show(
            "Open this address in a browser, on any machine, and approve trickle's access:"
        )
        terminal.show(authorization.url)
        terminal.show(
            f"The browser is then sent to an address starting with {redirect_uri}; it may not "
            "load. Copy that whole address from the address bar and paste it here."
        )
        pasted = terminal.ask("address: ")
    if not pasted.strip():
        linker.cancel(authorization.state)
        raise LinkError("nothing was pasted: nothing was linked")
    return linker.complete(pasted)


@contextmanager
def _cancelled_on_interrupt(linker: Linker, state: str) -> Iterator[None]:
    """Forget the attempt ``state`` when the block ends in anything but its answer: the user
    gave up (Ctrl-C), their input ended, the wait timed out."""
    try:
        yield
    except BaseException:
        linker.cancel(state)
        raise


def _port(flow: LinkFlow, settings: LinkingSettings) -> int:
    """The loopback port to use: the operator's, else a fixed one for a flow that needs its
    redirect URI stable, else 0 (any free port)."""
    if settings.loopback_port:
        return settings.loopback_port
    return STABLE_PORT if flow.stable_redirect else 0


def _free_port() -> int:
    """A port free on 127.0.0.1 now, for a redirect URI nothing will listen on (the address
    is pasted back instead): any port will do for platforms that follow RFC 8252."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
