"""Linking accounts: the flows that prove whose an account is, and storing it once they have.

One service for the command line and the web pages alike. A connector declares
its flows (:mod:`trickle.connectors.flows`); :mod:`trickle.linking.service`
runs them (authorization URLs with ``state`` and PKCE, the callback checked
and exchanged, the device flow's polling, OAuth 1.0a's legs, per-server app
registrations); :mod:`trickle.linking.accounts` stores the result: the
identity asked of the platform, the credentials sealed, the creator identity
claimed. :mod:`trickle.linking.loopback` is the terminal's side of a redirect
(RFC 8252).
"""

from trickle.linking.accounts import LinkError, LinkResult, check_credentials, link_account

__all__ = ["LinkError", "LinkResult", "check_credentials", "link_account"]
