"""Limits on failed authentication, per user and per remote address, shared by all replicas.

Each failed attempt (a wrong app password, a Nextcloud id that does not match) counts against
both the user id and the caller's address within a fixed window. Past the limit the caller gets
429 with Retry-After until the window ends, and credledger stops asking Nextcloud on its behalf:
every failed Basic login we forward is a brute-force strike against *our* address at Nextcloud.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from events.database import Connection


@dataclass(frozen=True, slots=True)
class Limits:
    """How many failures each scope may have per window."""

    per_user: int = 10
    per_address: int = 30
    window_seconds: int = 900


@dataclass(frozen=True, slots=True)
class Blocked:
    """Which scope is over its limit and for how long still."""

    scope: str
    retry_after: float


async def check(conn: Connection, limits: Limits, *, user_id: str, address: str) -> Blocked | None:
    """The first scope whose failures reached its limit in the current window, if any."""
    rows = await conn.fetch(
        """
        SELECT scope, failures, window_start, now() AS now FROM auth_failures
        WHERE (scope = 'user' AND key = $1) OR (scope = 'address' AND key = $2)
        """,
        user_id,
        address,
    )
    for row in rows:
        limit = limits.per_user if row["scope"] == "user" else limits.per_address
        started: datetime = row["window_start"]
        remaining = limits.window_seconds - (row["now"] - started).total_seconds()
        if remaining > 0 and row["failures"] >= limit:
            return Blocked(row["scope"], remaining)
    return None


async def record_failure(conn: Connection, limits: Limits, *, user_id: str, address: str) -> None:
    """Count one failure against the user and the address; an expired window starts afresh."""
    await conn.execute(
        """
        INSERT INTO auth_failures AS f (scope, key, window_start, failures)
        VALUES ('user', $1, now(), 1), ('address', $2, now(), 1)
        ON CONFLICT (scope, key) DO UPDATE SET
            failures = CASE WHEN f.window_start < now() - make_interval(secs => $3) THEN 1
                            ELSE f.failures + 1 END,
            window_start = CASE WHEN f.window_start < now() - make_interval(secs => $3) THEN now()
                                ELSE f.window_start END
        """,
        user_id,
        address,
        float(limits.window_seconds),
    )


async def clear_user(conn: Connection, user_id: str) -> None:
    """A successful login ends the user's count (the address keeps its own)."""
    await conn.execute("DELETE FROM auth_failures WHERE scope = 'user' AND key = $1", user_id)
