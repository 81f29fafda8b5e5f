"""Reading the log: one stream, a page after a position, or a filtered range streamed in constant memory."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from events.database import Connection
from events.envelope import RecordedEvent

# data and metadata come back as text and are decoded here, so reading does not depend on the
# connection's codecs, and what verify re-hashes is exactly what PostgreSQL holds.
_COLUMNS = """position, event_id, source, stream, stream_version, type, schema_version,
              data::text AS data, metadata::text AS metadata, occurred_at, recorded_at,
              prev_hash, hash"""


def to_event(row: asyncpg.Record) -> RecordedEvent:
    """A row selected with the log's columns, as a RecordedEvent."""
    return RecordedEvent(
        position=row["position"],
        event_id=row["event_id"],
        source=row["source"],
        stream=row["stream"],
        stream_version=row["stream_version"],
        type=row["type"],
        schema_version=row["schema_version"],
        data=json.loads(row["data"]),
        metadata=json.loads(row["metadata"]),
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        prev_hash=bytes(row["prev_hash"]),
        hash=bytes(row["hash"]),
    )


async def read_stream(conn: Connection, stream: str) -> list[RecordedEvent]:
    """Every event of one stream, oldest first."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM events WHERE stream = $1 ORDER BY stream_version", stream
    )
    return [to_event(row) for row in rows]


async def read_after(conn: Connection, after: int, limit: int = 1000) -> list[RecordedEvent]:
    """Up to `limit` events after position `after`: how a reader tails the log.

    Positions are committed in order, so a tailer that remembers the last position it saw never
    skips an event that commits later.
    """
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2",
        after,
        limit,
    )
    return [to_event(row) for row in rows]


def _filters(
    *,
    after: int,
    stream: str | None,
    types: Sequence[str] | None,
    since: datetime | None,
    until: datetime | None,
) -> tuple[str, list[Any]]:
    clauses = ["position > $1"]
    args: list[Any] = [after]
    if stream is not None:
        args.append(stream)
        clauses.append(f"stream = ${len(args)}")
    if types:
        args.append(list(types))
        clauses.append(f"type = ANY(${len(args)}::text[])")
    if since is not None:
        args.append(since)
        clauses.append(f"recorded_at >= ${len(args)}")
    if until is not None:
        args.append(until)
        clauses.append(f"recorded_at < ${len(args)}")
    return " AND ".join(clauses), args


async def read_page(
    conn: Connection,
    *,
    after: int = 0,
    limit: int = 1000,
    stream: str | None = None,
    types: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[RecordedEvent]:
    """One page of a filtered range, by position; the last event's position is the next cursor."""
    where, args = _filters(after=after, stream=stream, types=types, since=since, until=until)
    args.append(limit)
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM events WHERE {where} ORDER BY position LIMIT ${len(args)}", *args
    )
    return [to_event(row) for row in rows]


async def iter_events(
    conn: Connection,
    *,
    after: int = 0,
    stream: str | None = None,
    types: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    prefetch: int = 2000,
) -> AsyncIterator[RecordedEvent]:
    """Every matching event in position order, through a server-side cursor.

    Runs in a read-only REPEATABLE READ transaction of its own (or in the caller's, if one is
    open): one consistent snapshot, and only `prefetch` rows in memory however long the log is.
    """
    where, args = _filters(after=after, stream=stream, types=types, since=since, until=until)
    query = f"SELECT {_COLUMNS} FROM events WHERE {where} ORDER BY position"
    if conn.is_in_transaction():
        async for row in conn.cursor(query, *args, prefetch=prefetch):
            yield to_event(row)
        return
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for row in conn.cursor(query, *args, prefetch=prefetch):
            yield to_event(row)


async def head(conn: Connection) -> tuple[int, bytes] | None:
    """The last position and its hash, or None for an empty log."""
    row = await conn.fetchrow("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
    return None if row is None else (row["position"], bytes(row["hash"]))
