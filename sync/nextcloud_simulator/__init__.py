"""A faithful fake Nextcloud for tests: an aiohttp application plus a plain-Python control object.

It follows shared/reference/nextcloud.md and, where that page is silent or wrong, Nextcloud's own
sources. Choices made where a real server could answer either way:

- OCS without `OCS-APIRequest: true` (credentials valid): 401, `statuscode` 997, message
  "CSRF check failed". Bad credentials are checked first and answer "Current user is not logged in".
- OCS v1 answers HTTP 401 on 997, as Nextcloud's V1Response does, and HTTP 200 on every other
  failure (a throttled v1 call is 200 with `statuscode` 429): that is v1's trap.
- `enabled` is in `ocs.data` only for admin users, as AUserData::getUserData does; both
  `displayname` and the legacy `display-name` are there.
- The throttle answers before any credential check, with `Retry-After` in whole seconds (Nextcloud
  itself may send none); the doubling delay before Nextcloud's 429 is not simulated.
- A disabled user's tokens fail at once (Nextcloud takes up to about five minutes).
- WebDAV with valid credentials for someone else's uid: PROPFIND on their root answers 207 with the
  etag under 404 (Nextcloud's empty SimpleCollection), SEARCH on their scope answers 500; an unknown
  uid is 404. Bad credentials are 401 with Sabre's error body.
- SEARCH ignores `d:depth` (Nextcloud always searches the whole subtree), returns folders as well as
  files but never the scope itself, caps results at 100 without `d:nresults`, pages with SearchDAV's
  `firstresult`, and casts date literals as Nextcloud does: Unix seconds or ATOM, anything else 0.
- Every REPORT on files answers 415.
- A held request waits before its credentials are checked, so what a test changes while it is held
  decides its answer.
"""

from sync.nextcloud_simulator.accounts import SimulatedUser
from sync.nextcloud_simulator.app import create_app, request_kind, running_simulator
from sync.nextcloud_simulator.control import NextcloudSimulator
from sync.nextcloud_simulator.passwords import (
    LOGIN_FLOW_ALPHABET,
    SETTINGS_ALPHABET,
    login_flow_app_password,
    settings_app_password,
)
from sync.nextcloud_simulator.storage import SimulatedFile, SimulatedFolder

__all__ = [
    "LOGIN_FLOW_ALPHABET",
    "SETTINGS_ALPHABET",
    "NextcloudSimulator",
    "SimulatedFile",
    "SimulatedFolder",
    "SimulatedUser",
    "create_app",
    "login_flow_app_password",
    "request_kind",
    "running_simulator",
    "settings_app_password",
]
