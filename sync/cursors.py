"""Per-user sync cursors: the root etag last seen and the watermark of the newest file fetched."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from events.database import Connection


@dataclass(frozen=True, slots=True)
class SyncCursor:
    """Where a user's sync stands; both None before the first sync."""

    root_etag: str | None = None
    watermark: datetime | None = None


async def load_cursor(conn: Connection, user_id: str) -> SyncCursor:
    row = await conn.fetchrow("SELECT root_etag, watermark FROM sync_cursors WHERE user_id = $1", user_id)
    return SyncCursor() if row is None else SyncCursor(row["root_etag"], row["watermark"])


async def save_cursor(conn: Connection, user_id: str, cursor: SyncCursor) -> None:
    await conn.execute(
        """
        INSERT INTO sync_cursors (user_id, root_etag, watermark, updated_at) VALUES ($1, $2, $3, now())
        ON CONFLICT (user_id) DO UPDATE
        SET root_etag = EXCLUDED.root_etag, watermark = EXCLUDED.watermark, updated_at = now()
        """,
        user_id,
        cursor.root_etag,
        cursor.watermark,
    )
