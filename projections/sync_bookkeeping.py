"""Sync bookkeeping: the sync columns of credential_state and each user's sync cursor (not in the log).

Routine successes change only this bookkeeping; transitions (first failure, recovery, a 401) are
also appended as events by sync itself. Every write is conditional on the lease the writer holds,
so a replica whose lease expired cannot overwrite the work of the one that took over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from events.database import Connection


@dataclass(frozen=True, slots=True)
class SyncCursor:
    """Where a user's sync stands: the root etag last seen and the newest mtime fetched."""

    root_etag: str | None = None
    watermark: datetime | None = None


@dataclass(frozen=True, slots=True)
class SyncSuccess:
    """One user's successful sync, waiting to be recorded: when next, and the cursor reached."""

    user_id: str
    next_sync_at: datetime
    cursor: SyncCursor


async def record_successes(conn: Connection, owner: str, successes: Sequence[SyncSuccess]) -> dict[str, int]:
    """Save the cursors, mark the syncs done and release the leases, in one statement.

    Returns, per user whose lease `owner` still held, the consecutive failures the success ended
    (0 if none). A sync worker records its users together: one round trip instead of one each.
    """
    if not successes:
        return {}
    rows = await conn.fetch(
        """
        WITH done AS (
            SELECT * FROM unnest($2::text[], $3::timestamptz[], $4::text[], $5::timestamptz[])
                AS d(user_id, next_sync_at, root_etag, watermark)
        ), held AS (
            SELECT s.user_id, s.consecutive_failures FROM credential_state s JOIN done USING (user_id)
            WHERE s.lease_owner = $1 FOR UPDATE OF s
        ), saved AS (
            INSERT INTO sync_cursors (user_id, root_etag, watermark, updated_at)
            SELECT done.user_id, done.root_etag, done.watermark, now() FROM done JOIN held USING (user_id)
            ON CONFLICT (user_id) DO UPDATE
            SET root_etag = EXCLUDED.root_etag, watermark = EXCLUDED.watermark, updated_at = now()
        )
        UPDATE credential_state s
        SET last_sync_at = now(), last_sync_status = 'ok', consecutive_failures = 0,
            next_sync_at = done.next_sync_at, lease_owner = NULL, lease_until = NULL
        FROM done JOIN held USING (user_id)
        WHERE s.user_id = done.user_id
        RETURNING s.user_id, held.consecutive_failures
        """,
        owner,
        [s.user_id for s in successes],
        [s.next_sync_at for s in successes],
        [s.cursor.root_etag for s in successes],
        [s.cursor.watermark for s in successes],
    )
    return {row["user_id"]: row["consecutive_failures"] for row in rows}


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
