"""The control object: what a test sets up, switches and reads on the simulated Nextcloud, without HTTP."""

from __future__ import annotations

import hashlib
import itertools
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from sync.nextcloud_simulator.accounts import Accounts, PasswordStyle, SimulatedUser
from sync.nextcloud_simulator.holds import Holds
from sync.nextcloud_simulator.storage import SimulatedFile, UserStorage


def _whole_seconds(moment: datetime | None) -> datetime:
    # Nextcloud keeps mtimes as integer Unix seconds.
    if moment is None:
        moment = datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("simulated times must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=0)


def _credential_key(app_password: str) -> str:
    # Counters are keyed by a digest so that no password sits in a readable key.
    return hashlib.sha256(app_password.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Arrival:
    """One request as it reached the simulator (before holds, faults or authentication)."""

    at: float
    kind: str
    user_id: str | None


class NextcloudSimulator:
    """Accounts, files, fault modes, holds and counters of one simulated Nextcloud."""

    def __init__(
        self, *, auto_throttle_after: int | None = None, auto_throttle_retry_after: float = 30.0
    ) -> None:
        self.accounts = Accounts()
        self.holds = Holds()
        self.auto_throttle_after = auto_throttle_after
        self.auto_throttle_retry_after = auto_throttle_retry_after
        self.throttle_retry_after: float | None = None
        self.forced_status: int | None = None
        self.html_instead = False
        self.delay_seconds = 0.0
        self.requests_by_kind: Counter[str] = Counter()
        # Per (user id, kind), and every arrival with its time: for "which calls, when" questions.
        self.requests_by_user: Counter[tuple[str | None, str]] = Counter()
        self.arrivals: list[Arrival] = []
        self._storage: dict[str, UserStorage] = {}
        self._file_ids = itertools.count(100)
        self._by_credential: Counter[tuple[str | None, str]] = Counter()
        self._failed_logins: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._concurrent: Counter[str] = Counter()
        self._max_concurrent: Counter[str] = Counter()

    # Users and app passwords.

    def add_user(
        self,
        user_id: str,
        *,
        login_name: str | None = None,
        display_name: str | None = None,
        email: str | None = None,
        enabled: bool = True,
        is_admin: bool = False,
    ) -> SimulatedUser:
        """A new account; the login name defaults to the user id, as for local users."""
        user = SimulatedUser(
            user_id, login_name or user_id, display_name or user_id, email, enabled, is_admin
        )
        self.accounts.add_user(user)
        self._storage[user_id] = UserStorage(lambda: next(self._file_ids), _whole_seconds(None))
        return user

    def user(self, user_id: str) -> SimulatedUser:
        return self.accounts.user(user_id)

    def create_app_password(self, user_id: str, *, style: PasswordStyle = "settings") -> str:
        """A new app password in one of Nextcloud's two formats, bound to the user's login name."""
        return self.accounts.create_token(user_id, style)

    def add_app_password(self, user_id: str, app_password: str) -> None:
        """An app password of the test's choosing (Nextcloud accepts 22 to 256 characters)."""
        self.accounts.add_token(user_id, app_password)

    def revoke_app_password(self, app_password: str) -> None:
        self.accounts.revoke_token(app_password)

    def wipe_app_password(self, app_password: str) -> None:
        self.accounts.wipe_token(app_password)

    def disable_user(self, user_id: str) -> None:
        self.user(user_id).enabled = False

    def enable_user(self, user_id: str) -> None:
        self.user(user_id).enabled = True

    def delete_user(self, user_id: str) -> None:
        self.accounts.delete_user(user_id)
        del self._storage[user_id]

    # Files.

    def storage(self, user_id: str) -> UserStorage:
        self.user(user_id)
        return self._storage[user_id]

    def put_file(
        self, user_id: str, path: str, *, size: int = 0, modified: datetime | None = None
    ) -> SimulatedFile:
        """Add or change a file: new etag and mtime for it and every folder above it."""
        return self.storage(user_id).put(path, size, _whole_seconds(modified))

    def delete_file(self, user_id: str, path: str, *, modified: datetime | None = None) -> None:
        self.storage(user_id).delete(path, _whole_seconds(modified))

    def root_etag(self, user_id: str) -> str:
        """The root folder's etag as stored, without the quotes WebDAV adds."""
        return self.storage(user_id).root.etag

    # Fault modes.

    def throttle(self, retry_after: float = 30.0) -> None:
        """Every request answers 429 with this Retry-After until `stop_throttling`."""
        self.throttle_retry_after = retry_after

    def stop_throttling(self) -> None:
        self.throttle_retry_after = None
        self._failed_logins.clear()

    def fail_with(self, status: int = 503) -> None:
        self.forced_status = status

    def answer_html(self) -> None:
        """Every request answers 200 with an HTML page, as a login page or a proxy would."""
        self.html_instead = True

    def slow(self, seconds: float) -> None:
        self.delay_seconds = seconds

    def healthy(self) -> None:
        """Turn every fault mode off (holds stay as they are)."""
        self.forced_status = None
        self.html_instead = False
        self.delay_seconds = 0.0
        self.stop_throttling()

    # Holds.

    def hold(self, user_id: str) -> None:
        """Requests for this user wait, before their credentials are checked, until `release`."""
        self.holds.hold(user_id)

    def release(self, user_id: str) -> None:
        self.holds.release(user_id)

    async def wait_until_held(self, user_id: str, count: int = 1) -> None:
        await self.holds.wait_until_held(user_id, count)

    def held(self, user_id: str) -> int:
        return self.holds.waiting(user_id)

    # Counters.

    def request_count(self, user_id: str | None, app_password: str) -> int:
        """Requests that carried this app password and were attributed to this user."""
        return self._by_credential[(user_id, _credential_key(app_password))]

    def failed_logins(self, remote: str) -> int:
        """Brute-force strikes standing against a remote address."""
        return sum(self._failed_logins[remote].values())

    def concurrent_requests(self, user_id: str) -> int:
        return self._concurrent[user_id]

    def max_concurrent_requests(self, user_id: str) -> int:
        return self._max_concurrent[user_id]

    # Used by the application while it answers.

    def record_request(self, kind: str, user_id: str | None, app_password: str | None) -> None:
        self.requests_by_kind[kind] += 1
        self.requests_by_user[(user_id, kind)] += 1
        self.arrivals.append(Arrival(time.monotonic(), kind, user_id))
        if app_password is not None:
            self._by_credential[(user_id, _credential_key(app_password))] += 1

    def record_login(self, remote: str, login_name: str, succeeded: bool) -> None:
        # Nextcloud's resetDelay forgets only the strikes of the login name that just succeeded.
        if succeeded:
            self._failed_logins[remote].pop(login_name.lower(), None)
        else:
            self._failed_logins[remote][login_name.lower()] += 1

    def retry_after_for(self, remote: str) -> float | None:
        if self.throttle_retry_after is not None:
            return self.throttle_retry_after
        limit = self.auto_throttle_after
        if limit is not None and self.failed_logins(remote) >= limit:
            return self.auto_throttle_retry_after
        return None

    def enter(self, user_id: str) -> None:
        self._concurrent[user_id] += 1
        self._max_concurrent[user_id] = max(self._max_concurrent[user_id], self._concurrent[user_id])

    def leave(self, user_id: str) -> None:
        self._concurrent[user_id] -= 1
