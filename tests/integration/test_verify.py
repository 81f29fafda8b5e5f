"""Invariant 3: recomputing the chain finds the first position that was tampered with."""

from __future__ import annotations

import asyncio
import dataclasses

import asyncpg
import pytest

from events.canonical import canonical_json, chain_hash
from events.reading import iter_events
from events.verify import verify_chain
from events.writer import GroupCommitWriter
from tests.factories import new_event


@pytest.fixture
async def ten_events(writer: GroupCommitWriter) -> None:
    await asyncio.gather(*(writer.append(new_event(stream=f"u{n % 3}")) for n in range(10)))


async def tamper(owner: asyncpg.Connection, *statements: str) -> None:
    """Rewrite history as a superuser would: with the append-only triggers bypassed."""
    async with owner.transaction():
        await owner.execute("SET LOCAL session_replication_role = replica")
        for statement in statements:
            await owner.execute(statement)


@pytest.mark.usefixtures("ten_events")
async def test_an_intact_log_verifies_to_its_head(owner: asyncpg.Connection) -> None:
    """All ten events check out; the report names the head."""
    report = await verify_chain(owner)
    assert report.intact
    assert (report.checked, report.head_position) == (10, 10)
    assert report.head_hash == await owner.fetchval("SELECT hash FROM events WHERE position = 10")


async def test_an_empty_log_is_intact(owner: asyncpg.Connection) -> None:
    """Nothing to check is not a failure."""
    report = await verify_chain(owner)
    assert report.intact
    assert report.checked == 0


@pytest.mark.usefixtures("ten_events")
async def test_changed_data_is_found_at_its_position(owner: asyncpg.Connection) -> None:
    """One row's data rewritten: the report names that position."""
    await tamper(owner, """UPDATE events SET data = '{"note": "forged"}' WHERE position = 6""")
    report = await verify_chain(owner)
    assert not report.intact
    assert report.bad_position == 6
    assert "does not match its hash" in (report.reason or "")


@pytest.mark.usefixtures("ten_events")
async def test_a_deleted_row_is_found_as_a_gap(owner: asyncpg.Connection) -> None:
    """A missing position is named."""
    await tamper(owner, "DELETE FROM events WHERE position = 4")
    report = await verify_chain(owner)
    assert (report.intact, report.bad_position) == (False, 4)
    assert "missing" in (report.reason or "")


@pytest.mark.usefixtures("ten_events")
async def test_swapped_rows_are_found_at_the_first(owner: asyncpg.Connection) -> None:
    """Two rows trading positions: the earlier of the two is named."""
    await tamper(
        owner,
        "UPDATE events SET position = 1000 WHERE position = 3",
        "UPDATE events SET position = 3 WHERE position = 7",
        "UPDATE events SET position = 7 WHERE position = 1000",
    )
    report = await verify_chain(owner)
    assert (report.intact, report.bad_position) == (False, 3)


@pytest.mark.usefixtures("ten_events")
async def test_a_rehashed_forgery_still_breaks_the_next_link(owner: asyncpg.Connection) -> None:
    """Forging a row and recomputing its own hash is not enough: the next row no longer links."""
    [row] = [e async for e in iter_events(owner, after=4) if e.position == 5]
    forged = {"note": "forged"}
    canonical = dataclasses.replace(row, data=forged).canonical_bytes()
    async with owner.transaction():
        await owner.execute("SET LOCAL session_replication_role = replica")
        await owner.execute(
            "UPDATE events SET data = $1::text::jsonb, hash = $2 WHERE position = 5",
            canonical_json(forged),
            chain_hash(row.prev_hash, canonical),
        )
    report = await verify_chain(owner)
    assert report.bad_position == 6
    assert "does not link" in (report.reason or "")
