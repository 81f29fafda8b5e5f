"""The pause on every call to one Nextcloud instance after it answered 429.

Nextcloud's brute-force throttle is per remote address: once it answers 429 to one of our calls,
every call from this server is throttled, whichever user it is for. So one 429 pauses all of them
until Retry-After (or a growing backoff when none is given) has passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_PAUSE_SECONDS = 60.0
MAX_PAUSE_SECONDS = 3600.0


class InstanceThrottle:
    """Remembers until when calls to Nextcloud are paused; the clock is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._paused_until = 0.0
        self._consecutive = 0

    def pause(self, retry_after: float | None) -> float:
        """Pause for `retry_after` seconds, or a doubling backoff without one; returns the pause."""
        self._consecutive += 1
        if retry_after is None:
            retry_after = min(DEFAULT_PAUSE_SECONDS * 2 ** (self._consecutive - 1), MAX_PAUSE_SECONDS)
        seconds = min(max(retry_after, 1.0), MAX_PAUSE_SECONDS)
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        return seconds

    def remaining(self) -> float:
        """Seconds until calls may resume (0 when not paused)."""
        return max(0.0, self._paused_until - self._clock())

    def succeeded(self) -> None:
        """A call went through: the next 429 starts the backoff afresh."""
        self._consecutive = 0
