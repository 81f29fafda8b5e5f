"""The sync columns of credential_state: what sync writes after each attempt (not part of the log).

Routine successes change only these columns; transitions (first failure, recovery, a 401) are
also appended as events by sync itself. Every write is conditional on the lease the writer holds,
so a replica whose lease expired cannot overwrite the work of the one that took over.
"""

from __future__ import annotations

from datetime import datetime

from events.database import Connection


async def record_success(conn: Connection, user_id: str, owner: str, next_sync_at: datetime) -> int | None:
    """Mark a successful sync and release the lease; returns the failures it ended (None: lease lost)."""
    ended: int | None = await conn.fetchval(
        """
        UPDATE credential_state s
        SET last_sync_at = now(), last_sync_status = 'ok', consecutive_failures = 0,
            next_sync_at = $3, lease_owner = NULL, lease_until = NULL
        FROM (SELECT user_id, consecutive_failures FROM credential_state WHERE user_id = $1 FOR UPDATE) before
        WHERE s.user_id = before.user_id AND s.lease_owner = $2
        RETURNING before.consecutive_failures
        """,
        user_id,
        owner,
        next_sync_at,
    )
    return ended


async def record_failure(
    conn: Connection, user_id: str, owner: str, backoff_seconds: list[float]
) -> int | None:
    """Count a failed sync and schedule the retry; returns the failure count (None: lease lost).

    `backoff_seconds[n - 1]` is the wait after the n-th consecutive failure (the last entry repeats).
    """
    failures: int | None = await conn.fetchval(
        """
        UPDATE credential_state
        SET last_sync_at = now(), last_sync_status = 'failed',
            consecutive_failures = consecutive_failures + 1,
            next_sync_at = now() + make_interval(
                secs => ($3::float8[])[least(consecutive_failures + 1, array_length($3::float8[], 1))]),
            lease_owner = NULL, lease_until = NULL
        WHERE user_id = $1 AND lease_owner = $2
        RETURNING consecutive_failures
        """,
        user_id,
        owner,
        backoff_seconds,
    )
    return failures


async def release_lease(conn: Connection, user_id: str, owner: str) -> None:
    """Give the user back untouched (the credential went away, or every call is paused)."""
    await conn.execute(
        "UPDATE credential_state SET lease_owner = NULL, lease_until = NULL"
        " WHERE user_id = $1 AND lease_owner = $2",
        user_id,
        owner,
    )
