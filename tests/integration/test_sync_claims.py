"""claim_due_users: leases with SKIP LOCKED hand each due user to one claimer at a time."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from events.crypto import MasterKeyRing
from events.event_types import UserDisabled, to_new_event
from events.writer import GroupCommitWriter
from projections.queries import claim_due_users
from receiver.credentials import provision_credential


@pytest.fixture
async def ten_users(pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing) -> None:
    await asyncio.gather(
        *(
            provision_credential(
                pool,
                writer,
                master_keys,
                user_id=f"user{n}",
                login_name=f"user{n}",
                scopes=[],
                app_password="Abcde-fghij-kmnop-qrstw-xyzAB",
                source="test",
            )
            for n in range(10)
        )
    )


@pytest.mark.usefixtures("ten_users")
async def test_concurrent_claimers_never_share_a_user(pool: asyncpg.Pool) -> None:
    """Two replicas claiming at once split the due users between them."""

    async def claim(owner: str) -> set[str]:
        async with pool.acquire() as conn:
            return {
                r.state.user_id for r in await claim_due_users(conn, limit=7, lease_seconds=60, owner=owner)
            }

    first, second = await asyncio.gather(claim("a"), claim("b"))
    assert not first & second
    assert len(first | second) == 10


@pytest.mark.usefixtures("ten_users")
async def test_a_leased_user_is_not_claimed_again_until_the_lease_ends(pool: asyncpg.Pool) -> None:
    """After a claim commits, the lease keeps others away."""
    async with pool.acquire() as conn:
        taken = await claim_due_users(conn, limit=10, lease_seconds=60, owner="a")
        again = await claim_due_users(conn, limit=10, lease_seconds=60, owner="b")
    assert len(taken) == 10
    assert again == []


@pytest.mark.usefixtures("ten_users")
async def test_an_expired_lease_can_be_claimed(pool: asyncpg.Pool, owner: asyncpg.Connection) -> None:
    """A replica that died mid-sync does not strand its users."""
    async with pool.acquire() as conn:
        await claim_due_users(conn, limit=10, lease_seconds=60, owner="dead")
    await owner.execute("UPDATE credential_state SET lease_until = now() - interval '1 second'")
    async with pool.acquire() as conn:
        assert len(await claim_due_users(conn, limit=10, lease_seconds=60, owner="b")) == 10


@pytest.mark.usefixtures("ten_users")
async def test_only_active_and_due_users_are_claimed(
    pool: asyncpg.Pool, writer: GroupCommitWriter, owner: asyncpg.Connection
) -> None:
    """Suspended users and users not yet due stay put."""
    await writer.append(to_new_event(UserDisabled(), stream="user0", source="test"))
    await owner.execute(
        "UPDATE credential_state SET next_sync_at = now() + interval '1 hour' WHERE user_id = 'user1'"
    )
    async with pool.acquire() as conn:
        claimed = {
            r.state.user_id for r in await claim_due_users(conn, limit=100, lease_seconds=60, owner="a")
        }
    assert claimed == {f"user{n}" for n in range(2, 10)}
