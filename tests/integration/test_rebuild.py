"""`projections rebuild`: differences are found by user and column, and the swap repairs them."""

from __future__ import annotations

import asyncpg
import pytest

from events.crypto import MasterKeyRing
from events.event_types import UserDisabled, to_new_event
from events.writer import GroupCommitWriter
from projections.queries import get_state
from projections.rebuild import Difference, rebuild_credentials
from receiver.credentials import provision_credential


@pytest.fixture
async def two_users(pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing) -> None:
    for user in ("alice", "bob"):
        await provision_credential(
            pool,
            writer,
            master_keys,
            user_id=user,
            login_name=user,
            scopes=[],
            app_password="Abcde-fghij-kmnop-qrstw-xyzAB",
            source="test",
        )
    await writer.append(to_new_event(UserDisabled(), stream="bob", source="test"))


@pytest.mark.usefixtures("two_users")
async def test_a_faithful_projection_has_no_differences(owner: asyncpg.Connection) -> None:
    """Straight after appending, replaying the log agrees with every row."""
    report = await rebuild_credentials(owner, check_only=True)
    assert report.differences == []
    assert (report.users, report.events) == (2, 3)


@pytest.mark.usefixtures("two_users")
async def test_a_corrupted_column_is_named_and_left_alone_by_check(owner: asyncpg.Connection) -> None:
    """--check names the user and column, and changes nothing."""
    await owner.execute("UPDATE credential_state SET status = 'revoked' WHERE user_id = 'alice'")
    report = await rebuild_credentials(owner, check_only=True)
    assert report.differences == [Difference("alice", "status", "revoked", "active")]
    assert await owner.fetchval("SELECT status FROM credential_state WHERE user_id = 'alice'") == "revoked"


@pytest.mark.usefixtures("two_users")
async def test_the_swap_repairs_rows_and_keeps_sync_bookkeeping(
    owner: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    """A corrupted row is restored, a deleted one recreated, and sync columns survive."""
    await owner.execute(
        "UPDATE credential_state SET login_name = 'mallory', consecutive_failures = 4 WHERE user_id = 'alice'"
    )
    await owner.execute("DELETE FROM credential_state WHERE user_id = 'bob'")
    report = await rebuild_credentials(owner, check_only=False)
    assert report.swapped
    assert {(d.user_id, d.column) for d in report.differences} >= {("alice", "login_name"), ("bob", "status")}
    async with pool.acquire() as conn:
        alice, bob = await get_state(conn, "alice"), await get_state(conn, "bob")
    assert alice is not None
    assert bob is not None
    assert (alice.state.login_name, alice.sync.consecutive_failures) == ("alice", 4)
    assert bob.state.status == "suspended"
    assert (await rebuild_credentials(owner, check_only=True)).differences == []


async def test_an_empty_log_rebuilds_to_nothing(owner: asyncpg.Connection) -> None:
    """No events, no users, no differences."""
    report = await rebuild_credentials(owner, check_only=False)
    assert (report.events, report.users, report.differences) == (0, 0, [])


@pytest.mark.usefixtures("two_users")
async def test_a_parallel_replay_gives_the_same_rows(owner: asyncpg.Connection, database_url: str) -> None:
    """Two worker processes folding a share of the users each agree with the live table."""
    report = await rebuild_credentials(
        owner, check_only=True, url=database_url, workers=2, parallel_threshold=0
    )
    assert report.differences == []
    assert (report.users, report.events) == (2, 3)
