"""The instance-wide pause after Nextcloud answers 429, shared by every replica through PostgreSQL."""

from __future__ import annotations

from events.database import Connection

INSTANCE = "nextcloud"


async def paused_for(conn: Connection) -> float:
    """Seconds until calls to Nextcloud may resume (0 when not paused)."""
    remaining = await conn.fetchval(
        "SELECT extract(epoch FROM paused_until - now()) FROM nextcloud_pause"
        " WHERE instance = $1 AND paused_until > now()",
        INSTANCE,
    )
    return max(0.0, float(remaining)) if remaining is not None else 0.0


async def pause(conn: Connection, seconds: float, reason: str) -> bool:
    """Pause every replica's calls for `seconds`; True when this starts a pause (none was running).

    The caller records the pause in the log only when this returns True, so a burst of 429s from
    many concurrent syncs is one event, not hundreds.
    """
    # Locking the row first makes concurrent pauses take turns, each seeing the one before it.
    async with conn.transaction():
        previous = await conn.fetchval(
            "SELECT paused_until <= now() FROM nextcloud_pause WHERE instance = $1 FOR UPDATE", INSTANCE
        )
        await conn.execute(
            """
            UPDATE nextcloud_pause
            SET paused_until = greatest(paused_until, now() + make_interval(secs => $2)), reason = $3
            WHERE instance = $1
            """,
            INSTANCE,
            float(seconds),
            reason,
        )
    started = previous is not False
    return bool(started)
