"""Invariant 2: the events table rejects UPDATE, DELETE and TRUNCATE, for the service and the owner."""

from __future__ import annotations

import asyncpg
import pytest

from events.writer import GroupCommitWriter
from tests.factories import new_event

CHANGES = [
    "UPDATE events SET type = 'forged' WHERE position = 1",
    "DELETE FROM events WHERE position = 1",
    "TRUNCATE events",
]


@pytest.fixture(autouse=True)
async def one_event(writer: GroupCommitWriter) -> None:
    await writer.append(new_event())


@pytest.mark.parametrize("statement", CHANGES)
async def test_the_service_role_cannot_change_the_log(pool: asyncpg.Pool, statement: str) -> None:
    """credledger_app holds only INSERT and SELECT."""
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM events") == 1


@pytest.mark.parametrize("statement", CHANGES)
async def test_the_owner_cannot_change_the_log(owner: asyncpg.Connection, statement: str) -> None:
    """The triggers stop the owner (even a superuser) while they are enabled."""
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await owner.execute(statement)
    assert await owner.fetchval("SELECT count(*) FROM events") == 1


async def test_the_service_role_holds_only_insert_and_select(owner: asyncpg.Connection) -> None:
    """The grants on events are exactly INSERT and SELECT."""
    rows = await owner.fetch(
        "SELECT privilege_type FROM information_schema.role_table_grants "
        "WHERE table_name = 'events' AND grantee = 'credledger_app'"
    )
    assert sorted(r["privilege_type"] for r in rows) == ["INSERT", "SELECT"]
