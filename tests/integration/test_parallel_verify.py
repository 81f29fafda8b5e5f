"""The parallel verify names the same first bad position, for the same reason, as the single walk."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import asyncpg
import pytest

from events.canonical import canonical_json, chain_hash
from events.checkpoint_proof import CheckpointProof, prove_checkpoint
from events.checkpoints import Checkpoint
from events.parallel_verify import verify_in_parallel
from events.reading import iter_events
from events.verify import ChainReport, verify_chain
from events.writer import GroupCommitWriter
from tests.factories import new_event

pytestmark = pytest.mark.slow  # every verify here starts worker processes

# 30 events in three ranges of ten: (0, 10], (10, 20], (20, 30]; 10, 11, 20 and 21 are boundaries.
WORKERS = 3


@pytest.fixture
async def thirty_events(writer: GroupCommitWriter) -> None:
    for n in range(30):  # one by one: positions follow n, so streams sit where the tests expect
        await writer.append(new_event(stream=f"u{n % 4}"))


async def tamper(owner: asyncpg.Connection, *statements: str) -> None:
    """Rewrite history as a superuser would: with the append-only triggers bypassed."""
    async with owner.transaction():
        await owner.execute("SET LOCAL session_replication_role = replica")
        for statement in statements:
            await owner.execute(statement)


async def rechain_from(owner: asyncpg.Connection, position: int) -> None:
    """Recompute every hash from `position` on, as a forger who rewrote history would."""
    rows = [e async for e in iter_events(owner, after=position - 1)]
    prev = bytes(await owner.fetchval("SELECT prev_hash FROM events WHERE position = $1", position))
    async with owner.transaction():
        await owner.execute("SET LOCAL session_replication_role = replica")
        for event in rows:
            canonical = event.canonical_bytes()
            digest = chain_hash(prev, canonical)
            await owner.execute(
                "UPDATE events SET prev_hash = $1, hash = $2 WHERE position = $3",
                prev,
                digest,
                event.position,
            )
            prev = digest


async def both(owner: asyncpg.Connection, url: str) -> tuple[ChainReport, ChainReport]:
    single = await verify_chain(owner)
    parallel = await verify_in_parallel(owner, url, WORKERS, min_range=1)
    return single, parallel


@pytest.mark.usefixtures("thirty_events")
async def test_an_intact_log_gives_the_same_head(owner: asyncpg.Connection, database_url: str) -> None:
    """Both walks prove the same head, having checked every event."""
    single, parallel = await both(owner, database_url)
    assert parallel == single
    assert (single.intact, single.head_position) == (True, 30)


@pytest.mark.usefixtures("thirty_events")
@pytest.mark.parametrize("position", [6, 10, 11, 20, 21, 30])
async def test_changed_data_is_named_alike(
    owner: asyncpg.Connection, database_url: str, position: int
) -> None:
    """A rewritten payload, inside a range or at either side of a boundary."""
    await tamper(owner, f"""UPDATE events SET data = '{{"note": "forged"}}' WHERE position = {position}""")
    single, parallel = await both(owner, database_url)
    assert parallel == single
    assert single.bad_position == position


@pytest.mark.usefixtures("thirty_events")
@pytest.mark.parametrize("position", [4, 10, 11, 20])
async def test_a_deleted_row_is_named_alike(
    owner: asyncpg.Connection, database_url: str, position: int
) -> None:
    """A gap, including the last position of a range (whose next stored row lies in the next one)."""
    await tamper(owner, f"DELETE FROM events WHERE position = {position}")
    single, parallel = await both(owner, database_url)
    assert parallel == single
    assert (single.bad_position, "missing" in (single.reason or "")) == (position, True)


@pytest.mark.usefixtures("thirty_events")
@pytest.mark.parametrize(("first", "second"), [(3, 7), (9, 12), (10, 11), (20, 25)])
async def test_swapped_rows_are_named_alike(
    owner: asyncpg.Connection, database_url: str, first: int, second: int
) -> None:
    """Two rows trading positions, within a range or across a boundary."""
    await tamper(
        owner,
        f"UPDATE events SET position = 1000 WHERE position = {first}",
        f"UPDATE events SET position = {first} WHERE position = {second}",
        f"UPDATE events SET position = {second} WHERE position = 1000",
    )
    single, parallel = await both(owner, database_url)
    assert parallel == single
    assert single.bad_position == first


async def forge_and_rehash(owner: asyncpg.Connection, position: int) -> None:
    """Rewrite one row's data and recompute its own hash (but not the rows after it)."""
    [row] = [e async for e in iter_events(owner, after=position - 1) if e.position == position]
    forged = {"note": "forged"}
    canonical = dataclasses.replace(row, data=forged).canonical_bytes()
    async with owner.transaction():
        await owner.execute("SET LOCAL session_replication_role = replica")
        await owner.execute(
            "UPDATE events SET data = $1::text::jsonb, hash = $2 WHERE position = $3",
            canonical_json(forged),
            chain_hash(row.prev_hash, canonical),
            position,
        )


@pytest.mark.usefixtures("thirty_events")
@pytest.mark.parametrize("position", [5, 10, 20])
async def test_a_rehashed_forgery_is_named_alike(
    owner: asyncpg.Connection, database_url: str, position: int
) -> None:
    """A forged row with its own hash recomputed: the next row no longer links, even in the next range."""
    await forge_and_rehash(owner, position)
    single, parallel = await both(owner, database_url)
    assert parallel == single
    assert (single.bad_position, "does not link" in (single.reason or "")) == (position + 1, True)


# Position p holds stream u{(p - 1) % 4}: in the range (10, 20], 11 to 14 are the first events of
# their streams (checked against the range before by the merge), 15 to 20 are not.
@pytest.mark.usefixtures("thirty_events")
@pytest.mark.parametrize("position", [3, 12, 14, 15, 21])
async def test_a_rewritten_and_rechained_stream_version_is_named_alike(
    owner: asyncpg.Connection, database_url: str, position: int
) -> None:
    """A version rewritten with every hash after it recomputed: only the version check sees it."""
    await tamper(owner, f"UPDATE events SET stream_version = stream_version + 10 WHERE position = {position}")
    await rechain_from(owner, position)
    single, parallel = await both(owner, database_url)
    assert parallel == single
    assert (single.bad_position, "has version" in (single.reason or "")) == (position, True)


@pytest.mark.usefixtures("thirty_events")
async def test_a_version_break_before_a_hash_break_in_the_same_range_wins(
    owner: asyncpg.Connection, database_url: str
) -> None:
    """The merge's version failure at 12 comes before the range's own hash failure at 17."""
    await tamper(owner, "UPDATE events SET stream_version = stream_version + 10 WHERE position = 12")
    await rechain_from(owner, 12)
    await tamper(owner, """UPDATE events SET data = '{"note": "forged"}' WHERE position = 17""")
    single, parallel = await both(owner, database_url)
    assert parallel == single
    assert single.bad_position == 12


@pytest.mark.usefixtures("thirty_events")
@pytest.mark.parametrize("tampered", [None, 15, 25])
async def test_a_walk_from_a_checkpoint_is_named_alike(
    owner: asyncpg.Connection, database_url: str, tampered: int | None
) -> None:
    """Starting after a trusted position and hash, as a checkpoint does."""
    if tampered is not None:
        await tamper(
            owner, f"""UPDATE events SET data = '{{"note": "forged"}}' WHERE position = {tampered}"""
        )
    start = bytes(await owner.fetchval("SELECT hash FROM events WHERE position = 12"))
    single = await verify_chain(owner, after=12, after_hash=start)
    parallel = await verify_in_parallel(owner, database_url, WORKERS, after=12, after_hash=start, min_range=1)
    assert parallel == single
    assert single.bad_position == tampered


async def test_unusual_values_verify_intact_in_both_walks(
    writer: GroupCommitWriter, owner: asyncpg.Connection, database_url: str
) -> None:
    """Escapes, non-ASCII text, nesting, large integers and times far from 1970 rebuild the same bytes."""
    data = {
        "é": 'quote " back \\ slash',
        "z": [None, True, -(2**70), {"b": 1, "a": "\u2028\t\x01"}],
        "A": "日本",
    }
    times = [datetime(1, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]
    times += [datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)]
    for n, moment in enumerate(times * 2):
        await writer.append(
            new_event(stream=f'user "{n % 3}" ü', data=data, occurred_at=moment, metadata={"n": n, "ü": "\n"})
        )
    single, parallel = await both(owner, database_url)
    assert parallel == single
    assert (single.intact, single.checked) == (True, 8)


@pytest.mark.usefixtures("thirty_events")
async def test_progress_is_reported_at_each_mark_and_at_the_end(owner: asyncpg.Connection) -> None:
    """verify_chain calls back at every multiple of progress_every, then with the total."""
    seen: list[int] = []
    await verify_chain(owner, progress=seen.append, progress_every=7)
    assert seen == [7, 14, 21, 28, 30]


@pytest.mark.usefixtures("thirty_events")
async def test_parallel_progress_ends_at_the_total(owner: asyncpg.Connection, database_url: str) -> None:
    """The counts the workers report add up to every event checked."""
    seen: list[int] = []
    await verify_in_parallel(owner, database_url, WORKERS, progress=seen.append, min_range=1)
    assert seen[-1] == 30
    assert seen == sorted(seen)


async def _proofs(
    owner: asyncpg.Connection, url: str, log_size: int
) -> tuple[CheckpointProof, CheckpointProof]:
    stored = await owner.fetchval("SELECT hash FROM events WHERE position = $1", log_size)
    checkpoint = Checkpoint(
        log_size=log_size,
        head_hash=bytes(stored),
        signed_at=datetime(2026, 12, 4, tzinfo=UTC),
        key_id="k",
        signature=bytes(64),
        public_key=bytes(32),
    )
    single = await prove_checkpoint(owner, checkpoint)
    parallel = await prove_checkpoint(
        owner, checkpoint, walk=lambda conn, progress: verify_in_parallel(conn, url, WORKERS, min_range=1)
    )
    return single, parallel


@pytest.mark.usefixtures("thirty_events")
async def test_a_checkpoint_is_proven_alike_by_the_parallel_walk(
    owner: asyncpg.Connection, database_url: str
) -> None:
    """`verify --checkpoint --workers N`: an intact log holds the checkpoint, as with one walk."""
    single, parallel = await _proofs(owner, database_url, 20)
    assert parallel == single
    assert single.holds


@pytest.mark.usefixtures("thirty_events")
async def test_tampering_before_a_checkpoint_is_judged_alike_by_the_parallel_walk(
    owner: asyncpg.Connection, database_url: str
) -> None:
    """A row changed below the checkpoint: both walks give the same verdict and position."""
    await tamper(owner, """UPDATE events SET data = '{"changed": true}' WHERE position = 11""")
    single, parallel = await _proofs(owner, database_url, 20)
    assert parallel == single
    assert not single.holds
