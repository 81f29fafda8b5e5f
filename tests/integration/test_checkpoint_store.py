"""Taking and storing checkpoints in a real database, as the service role: once per head, one at a time."""

from __future__ import annotations

import asyncio
import dataclasses

import asyncpg
import pytest

from events.checkpoint_store import (
    CHECKPOINT_LOCK_KEY,
    ChainNotIntact,
    latest_checkpoint,
    store_checkpoint,
    take_checkpoint,
)
from events.checkpoints import (
    Checkpoint,
    CheckpointRefused,
    SigningKey,
    sign_checkpoint,
    verify_checkpoint_signature,
)
from events.database import Connection
from events.reading import head
from events.writer import GroupCommitWriter
from sync.scheduler import CheckpointScheduler, checkpoint_job
from tests.factories import new_event
from tests.secret_watch import watch

WAITING_FOR_ADVISORY_LOCK = """
SELECT count(*) > 0 FROM pg_locks
WHERE locktype = 'advisory' AND NOT granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


@pytest.fixture
def key() -> SigningKey:
    key = SigningKey.generate()
    watch(key.private_base64())
    return key


async def append(writer: GroupCommitWriter, count: int) -> None:
    for _ in range(count):
        await writer.append(new_event())


async def stored_count(owner: asyncpg.Connection) -> int:
    count: int = await owner.fetchval("SELECT count(*) FROM checkpoints")
    return count


async def test_a_stored_checkpoint_is_the_latest(pool: asyncpg.Pool, key: SigningKey) -> None:
    """store then latest gives back the same checkpoint, still verifying."""
    async with pool.acquire() as conn:
        assert await latest_checkpoint(conn) is None
        first = await conn.fetchval("SELECT clock_timestamp()")
        older = sign_checkpoint(key, 3, bytes(range(32)), first)
        newer = sign_checkpoint(key, 5, bytes(32), first)
        assert await store_checkpoint(conn, older)
        assert await store_checkpoint(conn, newer)
        latest = await latest_checkpoint(conn)
    assert latest == newer
    verify_checkpoint_signature(latest, key.public_key)


async def test_the_same_size_and_key_is_stored_once(pool: asyncpg.Pool, key: SigningKey) -> None:
    """A second signature over the same log size by the same key stores nothing."""
    async with pool.acquire() as conn:
        now = await conn.fetchval("SELECT clock_timestamp()")
        assert await store_checkpoint(conn, sign_checkpoint(key, 3, bytes(32), now))
        assert not await store_checkpoint(conn, sign_checkpoint(key, 3, bytes(32), now))


async def test_taking_a_checkpoint_signs_the_verified_head(
    pool: asyncpg.Pool, writer: GroupCommitWriter, key: SigningKey
) -> None:
    """The checkpoint covers the head as it stands, and is stored."""
    await append(writer, 4)
    async with pool.acquire() as conn:
        outcome = await take_checkpoint(conn, key)
        assert await head(conn) == (4, outcome.checkpoint.head_hash if outcome.checkpoint else None)
        assert await latest_checkpoint(conn) == outcome.checkpoint
    assert outcome.status == "taken"


async def test_the_job_skips_when_the_head_has_not_moved(
    pool: asyncpg.Pool, writer: GroupCommitWriter, owner: asyncpg.Connection, key: SigningKey
) -> None:
    """Unchanged head: the last checkpoint is reported and nothing new is stored; a new event changes that."""
    await append(writer, 3)
    await checkpoint_job(pool, key)
    async with pool.acquire() as conn:
        first = await latest_checkpoint(conn)
        again = await take_checkpoint(conn, key)
    assert (again.status, again.checkpoint) == ("unchanged", first)
    await checkpoint_job(pool, key)
    assert await stored_count(owner) == 1
    await append(writer, 1)
    await checkpoint_job(pool, key)
    assert await stored_count(owner) == 2


async def test_a_replica_mid_checkpoint_makes_the_job_stand_back(
    pool: asyncpg.Pool, writer: GroupCommitWriter, owner: asyncpg.Connection, key: SigningKey
) -> None:
    """While another transaction holds the checkpoint lock, the job returns busy and stores nothing."""
    await append(writer, 2)
    async with owner.transaction():
        await owner.execute("SELECT pg_advisory_xact_lock($1)", CHECKPOINT_LOCK_KEY)
        async with pool.acquire() as conn:
            outcome = await take_checkpoint(conn, key)
    assert outcome.status == "busy"
    assert await stored_count(owner) == 0


async def test_two_concurrent_calls_sign_once(
    pool: asyncpg.Pool, writer: GroupCommitWriter, owner: asyncpg.Connection, key: SigningKey
) -> None:
    """Two replicas at once: one signs; the other stands back or finds the head covered."""
    await append(writer, 5)

    async def attempt() -> str:
        async with pool.acquire() as conn:
            return (await take_checkpoint(conn, key)).status

    statuses = sorted(await asyncio.gather(attempt(), attempt()))
    assert statuses in (["busy", "taken"], ["taken", "unchanged"])
    assert await stored_count(owner) == 1


async def test_a_waiting_call_reuses_the_checkpoint_signed_meanwhile(
    pool: asyncpg.Pool, writer: GroupCommitWriter, owner: asyncpg.Connection, key: SigningKey
) -> None:
    """The command line waits for the lock, then finds the head covered by what the holder stored."""
    await append(writer, 2)
    async with pool.acquire() as holder, pool.acquire() as waiter:
        async with holder.transaction():
            await holder.execute("SELECT pg_advisory_xact_lock($1)", CHECKPOINT_LOCK_KEY)
            waiting = asyncio.create_task(take_checkpoint(waiter, key, wait=True))
            # Go on only once PostgreSQL lists the waiter as parked on the lock: a condition polled,
            # not a guess at how long that takes (PostgreSQL offers no event for it).
            while not await owner.fetchval(WAITING_FOR_ADVISORY_LOCK):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            signed = await take_checkpoint_inside(holder, key)
        outcome = await waiting
    assert (outcome.status, outcome.checkpoint) == ("unchanged", signed)


async def take_checkpoint_inside(conn: Connection, key: SigningKey) -> Checkpoint:
    """What the lock holder signs: the head, stored inside its own (outer) transaction."""
    last = await head(conn)
    assert last is not None
    now = await conn.fetchval("SELECT clock_timestamp()")
    checkpoint = sign_checkpoint(key, last[0], last[1], now)
    assert await store_checkpoint(conn, checkpoint)
    return checkpoint


async def test_a_log_rewritten_since_the_last_checkpoint_is_not_signed(
    pool: asyncpg.Pool, writer: GroupCommitWriter, owner: asyncpg.Connection, key: SigningKey
) -> None:
    """A change after the last checkpoint stops the next one, naming the position."""
    await append(writer, 3)
    async with pool.acquire() as conn:
        await take_checkpoint(conn, key)
    await append(writer, 3)
    async with owner.transaction():
        await owner.execute("SET LOCAL session_replication_role = replica")
        await owner.execute("""UPDATE events SET data = '{"forged": true}' WHERE position = 5""")
    async with pool.acquire() as conn:
        with pytest.raises(ChainNotIntact) as refused:
            await take_checkpoint(conn, key)
    assert refused.value.bad_position == 5
    assert await stored_count(owner) == 1


async def test_a_log_truncated_below_the_last_checkpoint_is_not_signed(
    pool: asyncpg.Pool, writer: GroupCommitWriter, owner: asyncpg.Connection, key: SigningKey
) -> None:
    """Cutting the tail off below the last checkpoint is named as truncation."""
    await append(writer, 4)
    async with pool.acquire() as conn:
        await take_checkpoint(conn, key)
    async with owner.transaction():
        await owner.execute("SET LOCAL session_replication_role = replica")
        await owner.execute("DELETE FROM events WHERE position > 2")
    async with pool.acquire() as conn:
        with pytest.raises(ChainNotIntact, match="truncated"):
            await take_checkpoint(conn, key)


async def test_a_forged_checkpoint_row_is_not_trusted_as_a_starting_point(
    pool: asyncpg.Pool, writer: GroupCommitWriter, owner: asyncpg.Connection, key: SigningKey
) -> None:
    """A stored row whose signature does not hold stops the job instead of moving its starting point."""
    await append(writer, 3)
    async with pool.acquire() as conn:
        taken = await take_checkpoint(conn, key)
    assert taken.checkpoint is not None
    async with pool.acquire() as conn:
        await store_checkpoint(conn, dataclasses.replace(taken.checkpoint, log_size=9))
        with pytest.raises(CheckpointRefused, match="bad signature"):
            await take_checkpoint(conn, key)


async def test_the_scheduler_signs_the_head_once_started(
    pool: asyncpg.Pool, writer: GroupCommitWriter, owner: asyncpg.Connection, key: SigningKey
) -> None:
    """Started with no first delay, the scheduled job stores a checkpoint of the head; stop ends it."""
    await append(writer, 2)
    scheduler = CheckpointScheduler(pool, key, first_delay_seconds=0)
    scheduler.start()
    try:
        async with asyncio.timeout(30):
            # The job runs on the scheduler's own time: wait for its row to appear.
            while not await stored_count(owner):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    finally:
        await scheduler.stop()
    async with pool.acquire() as conn:
        latest = await latest_checkpoint(conn)
    assert latest is not None
    assert (latest.log_size, latest.head_hash) == await head(owner)
