"""`keys rotate` and `projections rebuild` as an operator runs them."""

from __future__ import annotations

import asyncio
import base64

import asyncpg

from events.crypto import MasterKey, MasterKeyRing, generate_key
from events.writer import GroupCommitWriter
from receiver.credentials import provision_credential
from sync.credentials import open_active_credential
from tests.e2e.processes import credledger

PASSWORD = "Abcde-fghij-kmnop-qrstw-xyzAB"


def setting(ring: MasterKeyRing) -> str:
    return ",".join(f"{k.key_id}:{base64.b64encode(k.key).decode()}" for k in ring.keys)


async def test_after_rotation_the_old_master_key_can_be_dropped(
    database_url: str, pool: asyncpg.Pool, writer: GroupCommitWriter, owner: asyncpg.Connection
) -> None:
    """Provision under k1, rotate to k2 with both configured, then k2 alone opens every secret."""
    old, new = MasterKey("k1", generate_key()), MasterKey("k2", generate_key())
    for n in range(3):
        await provision_credential(
            pool,
            writer,
            MasterKeyRing((old,)),
            user_id=f"user{n}",
            login_name=f"user{n}",
            scopes=[],
            app_password=PASSWORD,
            source="test",
        )
    done = await asyncio.to_thread(
        credledger,
        "keys",
        "rotate",
        database_url=database_url,
        master_keys=setting(MasterKeyRing((new, old))),
    )
    assert done.returncode == 0, done.stderr
    assert "rewrapped 3 data keys under master key 'k2'" in done.stdout

    only_new = MasterKeyRing((new,))
    async with pool.acquire() as conn:
        opened = [await open_active_credential(conn, only_new, f"user{n}") for n in range(3)]
    assert [c.app_password if c else None for c in opened] == [PASSWORD] * 3
    assert await owner.fetchval("SELECT count(*) FROM events WHERE type = 'keys.rotated'") == 1


async def test_rotation_without_the_old_key_fails_clearly(
    database_url: str, pool: asyncpg.Pool, writer: GroupCommitWriter
) -> None:
    """Dropping the old key too early is refused, naming the missing key."""
    old = MasterKey("k1", generate_key())
    await provision_credential(
        pool,
        writer,
        MasterKeyRing((old,)),
        user_id="alice",
        login_name="alice",
        scopes=[],
        app_password=PASSWORD,
        source="test",
    )
    done = await asyncio.to_thread(
        credledger,
        "keys",
        "rotate",
        database_url=database_url,
        master_keys=setting(MasterKeyRing((MasterKey("k2", generate_key()),))),
    )
    assert done.returncode == 1
    assert "'k1' is not configured" in done.stderr


async def test_rebuild_check_exits_1_on_a_difference_and_the_swap_repairs_it(
    database_url: str,
    pool: asyncpg.Pool,
    writer: GroupCommitWriter,
    owner: asyncpg.Connection,
    master_keys: MasterKeyRing,
) -> None:
    """--check reports and exits 1; a plain rebuild corrects; --check then exits 0."""
    await provision_credential(
        pool,
        writer,
        master_keys,
        user_id="alice",
        login_name="alice",
        scopes=[],
        app_password=PASSWORD,
        source="t",
    )
    await owner.execute("UPDATE credential_state SET scopes = '[\"forged\"]' WHERE user_id = 'alice'")
    keys = setting(master_keys)
    check = await asyncio.to_thread(
        credledger, "projections", "rebuild", "--check", database_url=database_url, master_keys=keys
    )
    assert check.returncode == 1
    assert "differs: user 'alice' scopes" in check.stdout
    swap = await asyncio.to_thread(
        credledger, "projections", "rebuild", database_url=database_url, master_keys=keys
    )
    assert swap.returncode == 0, swap.stderr
    again = await asyncio.to_thread(
        credledger, "projections", "rebuild", "--check", database_url=database_url, master_keys=keys
    )
    assert again.returncode == 0
    assert "0 differences" in again.stdout
