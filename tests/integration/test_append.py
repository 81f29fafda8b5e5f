"""The one append path: positions, versions, the chain, idempotency and durability."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import asyncpg
import pytest

from events.append import append_batch, prepare
from events.canonical import GENESIS_HASH
from events.database import Connection
from events.envelope import RecordedEvent
from events.errors import IdempotencyConflict, InvalidEvent
from events.reading import read_after, read_stream
from events.writer import GroupCommitWriter
from tests.factories import new_event


async def test_positions_start_at_one_and_have_no_gaps(writer: GroupCommitWriter, pool: asyncpg.Pool) -> None:
    """Concurrent appends get positions 1..N, each once."""
    results = await asyncio.gather(*(writer.append(new_event()) for _ in range(50)))
    assert sorted(r.position for r in results) == list(range(1, 51))
    async with pool.acquire() as conn:
        stored = await read_after(conn, 0, limit=100)
    assert [e.position for e in stored] == list(range(1, 51))


async def test_stream_versions_count_per_stream(writer: GroupCommitWriter, pool: asyncpg.Pool) -> None:
    """Each stream's versions run 1..k independently of other streams."""
    for stream in ["alice", "bob", "alice", "alice", "bob"]:
        await writer.append(new_event(stream=stream))
    async with pool.acquire() as conn:
        alice = await read_stream(conn, "alice")
        bob = await read_stream(conn, "bob")
    assert [e.stream_version for e in alice] == [1, 2, 3]
    assert [e.stream_version for e in bob] == [1, 2]


async def test_each_event_links_to_the_previous_hash(writer: GroupCommitWriter, pool: asyncpg.Pool) -> None:
    """prev_hash of the first is the genesis; each later one is its predecessor's hash."""
    await asyncio.gather(*(writer.append(new_event()) for _ in range(20)))
    async with pool.acquire() as conn:
        stored = await read_after(conn, 0)
    assert stored[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(stored):
        assert after.prev_hash == before.hash


async def test_the_answer_carries_the_stored_hash(writer: GroupCommitWriter, pool: asyncpg.Pool) -> None:
    """What a caller is told is what the log holds."""
    appended = await writer.append(new_event())
    async with pool.acquire() as conn:
        [stored] = await read_after(conn, 0)
    assert (appended.position, appended.hash) == (stored.position, stored.hash)


async def test_a_redelivered_event_is_stored_once(writer: GroupCommitWriter, pool: asyncpg.Pool) -> None:
    """The same (source, event_id) and content answers with the original position."""
    event = new_event(event_id="delivery-1")
    first = await writer.append(event)
    await writer.append(new_event())
    again = await writer.append(event)
    assert again.position == first.position
    assert again.duplicate
    assert not first.duplicate
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events") == 2


async def test_metadata_may_differ_between_deliveries(writer: GroupCommitWriter) -> None:
    """A retry carries another request id; it is still the same event."""
    first = await writer.append(new_event(event_id="d", metadata={"request_id": "r1"}))
    again = await writer.append(new_event(event_id="d", metadata={"request_id": "r2"}))
    assert again.position == first.position


async def test_the_same_id_with_other_content_is_a_conflict(
    writer: GroupCommitWriter, pool: asyncpg.Pool
) -> None:
    """Reusing a delivery id for different content raises, naming the stored position."""
    first = await writer.append(new_event(event_id="delivery-1", data={"n": 1}))
    with pytest.raises(IdempotencyConflict) as raised:
        await writer.append(new_event(event_id="delivery-1", data={"n": 2}))
    assert raised.value.position == first.position
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events") == 1


async def test_the_same_id_from_another_source_is_another_event(writer: GroupCommitWriter) -> None:
    """The idempotency key is the pair (source, event_id)."""
    first = await writer.append(new_event(event_id="x", source="app-hooks"))
    second = await writer.append(new_event(event_id="x", source="astrolabe"))
    assert first.position != second.position


async def test_one_event_appended_from_ten_tasks_is_stored_once(
    writer: GroupCommitWriter, pool: asyncpg.Pool
) -> None:
    """Every concurrent caller gets the one position; the log holds one row."""
    event = new_event(event_id="same-everywhere")
    results = await asyncio.gather(*(writer.append(event) for _ in range(10)))
    assert {r.position for r in results} == {results[0].position}
    assert sum(not r.duplicate for r in results) == 1
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events") == 1


async def test_a_conflict_inside_a_batch_does_not_fail_its_neighbours(pool: asyncpg.Pool) -> None:
    """One batch holding an event and a conflicting reuse of its id: the first is stored."""
    batch = [
        prepare(new_event(event_id="k", data={"n": 1})),
        prepare(new_event(event_id="k", data={"n": 2})),
        prepare(new_event()),
    ]
    async with pool.acquire() as conn:
        outcomes = await append_batch(conn, batch)
        assert isinstance(outcomes[1], IdempotencyConflict)
        assert [getattr(o, "position", None) for o in (outcomes[0], outcomes[2])] == [1, 2]


async def test_an_unstorable_event_is_refused_before_it_is_queued(
    writer: GroupCommitWriter, pool: asyncpg.Pool
) -> None:
    """A float in the data raises InvalidEvent and nothing is appended."""
    with pytest.raises(InvalidEvent):
        await writer.append(new_event(data={"ratio": 0.5}))
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events") == 0


async def test_hooks_see_the_new_events_inside_the_transaction(pool: asyncpg.Pool) -> None:
    """An inline hook receives exactly the events just recorded, and can read them."""
    seen: list[int] = []

    async def hook(conn: Connection, events: Sequence[RecordedEvent]) -> None:
        seen.extend(e.position for e in events)
        assert await conn.fetchval("SELECT count(*) FROM events") == len(events)

    async with pool.acquire() as conn:
        await append_batch(conn, [prepare(new_event()), prepare(new_event())], [hook])
    assert seen == [1, 2]


async def test_a_failing_hook_rolls_the_batch_back(pool: asyncpg.Pool) -> None:
    """Hooks commit or fail together with the events: nothing is half-written."""

    async def hook(conn: Connection, events: Sequence[RecordedEvent]) -> None:
        raise RuntimeError("projection failed")

    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            await append_batch(conn, [prepare(new_event())], [hook])
        assert await conn.fetchval("SELECT count(*) FROM events") == 0


async def test_a_batch_that_cannot_commit_fails_every_caller(pool: asyncpg.Pool) -> None:
    """When the transaction fails, each waiting caller gets the error, none a position."""

    async def hook(conn: Connection, events: Sequence[RecordedEvent]) -> None:
        raise RuntimeError("boom")

    writer = GroupCommitWriter(pool, [hook])
    await writer.start()
    try:
        results = await asyncio.gather(
            *(writer.append(new_event()) for _ in range(5)), return_exceptions=True
        )
    finally:
        await writer.close()
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_commits_wait_for_the_wal_flush(pool: asyncpg.Pool) -> None:
    """Acknowledged means durable: the service's connections run with synchronous_commit on."""
    async with pool.acquire() as conn:
        assert await conn.fetchval("SHOW synchronous_commit") == "on"


async def test_the_service_works_as_its_restricted_role(pool: asyncpg.Pool) -> None:
    """Pool connections are credledger_app, even after the pool resets them."""
    for _ in range(3):
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT current_user") == "credledger_app"


async def test_close_commits_what_is_queued(pool: asyncpg.Pool) -> None:
    """Shutting the writer down lets every accepted append commit first."""
    writer = GroupCommitWriter(pool)
    await writer.start()
    pending = [asyncio.ensure_future(writer.append(new_event())) for _ in range(30)]
    await asyncio.sleep(0)  # let the appends enqueue, as in-flight requests would have
    await writer.close()
    results = await asyncio.gather(*pending)
    assert sorted(r.position for r in results) == list(range(1, 31))
