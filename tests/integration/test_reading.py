"""Reading the log: by stream, by position, by type and time, streamed through a cursor."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from events.reading import head, iter_events, read_page, read_stream
from events.writer import GroupCommitWriter
from tests.factories import new_event


async def test_head_of_an_empty_log_is_none(pool: asyncpg.Pool) -> None:
    """No events, no head."""
    async with pool.acquire() as conn:
        assert await head(conn) is None


async def test_a_stream_reads_back_in_version_order(writer: GroupCommitWriter, pool: asyncpg.Pool) -> None:
    """read_stream returns one user's events, oldest first, with their data."""
    for n in range(3):
        await writer.append(new_event(stream="alice", data={"n": n}))
        await writer.append(new_event(stream="bob"))
    async with pool.acquire() as conn:
        alice = await read_stream(conn, "alice")
    assert [e.data for e in alice] == [{"n": 0}, {"n": 1}, {"n": 2}]


async def test_pages_filter_by_type_and_follow_the_cursor(
    writer: GroupCommitWriter, pool: asyncpg.Pool
) -> None:
    """A page holds only the asked-for types; its last position is the next cursor."""
    for n in range(10):
        await writer.append(new_event(type="user.disabled" if n % 2 else "user.enabled"))
    async with pool.acquire() as conn:
        first = await read_page(conn, types=["user.disabled"], limit=3)
        second = await read_page(conn, types=["user.disabled"], limit=3, after=first[-1].position)
    assert [e.position for e in first] == [2, 4, 6]
    assert [e.position for e in second] == [8, 10]


async def test_time_filters_use_the_recorded_time(writer: GroupCommitWriter, pool: asyncpg.Pool) -> None:
    """`since` is inclusive and `until` exclusive, on recorded_at."""
    await writer.append(new_event())
    async with pool.acquire() as conn:
        [event] = await read_page(conn)
        assert await read_page(conn, since=event.recorded_at) == [event]
        assert await read_page(conn, until=event.recorded_at) == []
        assert await read_page(conn, until=event.recorded_at + timedelta(microseconds=1)) == [event]


async def test_the_cursor_streams_more_events_than_it_holds(
    writer: GroupCommitWriter, pool: asyncpg.Pool
) -> None:
    """iter_events walks 1,200 events 100 at a time, in position order, each once."""
    await asyncio.gather(*(writer.append(new_event(stream=f"u{n % 7}")) for n in range(1200)))
    async with pool.acquire() as conn:
        positions = [e.position async for e in iter_events(conn, prefetch=100)]
    assert positions == list(range(1, 1201))


async def test_events_round_trip_unchanged(writer: GroupCommitWriter, pool: asyncpg.Pool) -> None:
    """What is appended is what is read: data, metadata and the sender's time."""
    occurred = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    event = new_event(data={"ü": ["x", 1, None, True]}, metadata={"request_id": "r"}, occurred_at=occurred)
    await writer.append(event)
    async with pool.acquire() as conn:
        [stored] = await read_page(conn)
    assert (stored.data, stored.metadata, stored.occurred_at) == (event.data, event.metadata, occurred)
