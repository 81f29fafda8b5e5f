"""HTTP Basic as Nextcloud reads it: who a request names, and the token login with its brute-force strikes."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from aiohttp import web

from sync.nextcloud_simulator.accounts import SimulatedUser
from sync.nextcloud_simulator.keys import SIMULATOR


@dataclass(frozen=True)
class BasicCredentials:
    """The login name and password a request carries."""

    login_name: str
    password: str = field(repr=False)


def basic_credentials(request: web.Request) -> BasicCredentials | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    login_name, colon, password = decoded.partition(":")
    return BasicCredentials(login_name, password) if colon else None


def attributed_user(request: web.Request) -> tuple[SimulatedUser | None, BasicCredentials | None]:
    """Whom a request is about, for counters and holds: the token's owner, else the login name's user."""
    credentials = basic_credentials(request)
    if credentials is None:
        return None, None
    accounts = request.app[SIMULATOR].accounts
    user = accounts.owner_of(credentials.password) or accounts.by_login_name(credentials.login_name)
    return user, credentials


def login(request: web.Request) -> SimulatedUser | None:
    """The user a Basic token login lets in; a failure is a strike against the remote address."""
    credentials = basic_credentials(request)
    if credentials is None:
        # No login was attempted, so Nextcloud counts no strike.
        return None
    control = request.app[SIMULATOR]
    user = control.accounts.login(credentials.login_name, credentials.password)
    control.record_login(request.remote or "", credentials.login_name, succeeded=user is not None)
    return user
