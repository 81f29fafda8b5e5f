"""Where sync hands the files it found changed: an interface a deployment can replace.

An indexer, a search engine or a backup job would implement `SyncSink`; the default one keeps the
latest metadata of each changed file in the `sync_items` table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import asyncpg

from sync.nextcloud_client import RemoteFile


class SyncSink(Protocol):
    """Receives, per user, the files changed since the last sync (idempotently: may repeat)."""

    async def accept(self, user_id: str, files: Sequence[RemoteFile]) -> None: ...


class DatabaseSink:
    """Upserts changed files into `sync_items`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def accept(self, user_id: str, files: Sequence[RemoteFile]) -> None:
        if not files:
            return
        async with self._pool.acquire() as conn:
            await conn.execute(
                """
                INSERT INTO sync_items (user_id, file_id, path, etag, size, last_modified, seen_at)
                SELECT $1, f.file_id, f.path, f.etag, f.size, f.last_modified, now()
                FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[])
                     AS f(file_id, path, etag, size, last_modified)
                ON CONFLICT (user_id, file_id) DO UPDATE
                SET path = EXCLUDED.path, etag = EXCLUDED.etag, size = EXCLUDED.size,
                    last_modified = EXCLUDED.last_modified, seen_at = now()
                """,
                user_id,
                [f.file_id for f in files],
                [f.path for f in files],
                [f.etag for f in files],
                [f.size for f in files],
                [f.last_modified for f in files],
            )
