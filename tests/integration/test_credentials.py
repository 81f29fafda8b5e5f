"""Invariants 6 to 8 on real PostgreSQL: sealed secrets, crypto-shredding, the inline projection."""

from __future__ import annotations

import json

import asyncpg
import pytest

from events.crypto import DecryptionFailed, MasterKeyRing, open_secret
from events.event_types import (
    CredentialInvalidated,
    CredentialProvisioned,
    UserDeleted,
    UserDisabled,
    UserEnabled,
    to_new_event,
)
from events.user_keys import load_data_key
from events.verify import verify_chain
from events.writer import GroupCommitWriter
from projections.queries import get_state
from receiver.credentials import provision_credential, revoke_credential
from sync.credentials import open_active_credential

PASSWORD = "Abcde-fghij-kmnop-qrstw-xyzAB"
OTHER_PASSWORD = "Zyxwv-tsrqp-nmkji-gfedc-ba987"


async def provision(
    pool: asyncpg.Pool,
    writer: GroupCommitWriter,
    keys: MasterKeyRing,
    user: str = "alice",
    password: str = PASSWORD,
) -> int:
    appended = await provision_credential(
        pool,
        writer,
        keys,
        user_id=user,
        login_name=f"{user}@ldap",
        scopes=["files"],
        app_password=password,
        source="test",
    )
    return appended.position


async def stored_secret(pool: asyncpg.Pool, position: int) -> CredentialProvisioned:
    async with pool.acquire() as conn:
        data = await conn.fetchval("SELECT data::text FROM events WHERE position = $1", position)
    return CredentialProvisioned.from_data(json.loads(data))


async def test_a_provisioned_credential_is_active_at_once(
    pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing
) -> None:
    """A read right after the append sees the projected state, due for sync."""
    position = await provision(pool, writer, master_keys)
    async with pool.acquire() as conn:
        record = await get_state(conn, "alice")
    assert record is not None
    assert (record.state.status, record.state.login_name, record.state.scopes) == (
        "active",
        "alice@ldap",
        ("files",),
    )
    assert record.state.credential_position == position
    assert record.sync.next_sync_at == record.state.provisioned_at


async def test_the_active_credential_opens_for_sync(
    pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing
) -> None:
    """Sync gets the login name and the plaintext, only at the moment of use."""
    await provision(pool, writer, master_keys)
    async with pool.acquire() as conn:
        credential = await open_active_credential(conn, master_keys, "alice")
    assert credential is not None
    assert (credential.login_name, credential.app_password) == ("alice@ldap", PASSWORD)
    assert PASSWORD not in repr(credential)


async def test_revocation_shreds_the_key_in_the_same_transaction(
    pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing, owner: asyncpg.Connection
) -> None:
    """After the revoke returns, the key is gone and the ciphertext opens by no path."""
    position = await provision(pool, writer, master_keys)
    sealed = (await stored_secret(pool, position)).secret
    await revoke_credential(writer, user_id="alice", reason="user_request", source="test")

    assert await owner.fetchval("SELECT count(*) FROM user_keys WHERE key_id = $1", sealed.key_id) == 0
    async with pool.acquire() as conn:
        assert await load_data_key(conn, master_keys, "alice", sealed.key_id) is None
        assert await open_active_credential(conn, master_keys, "alice") is None
        record = await get_state(conn, "alice")
    assert record is not None
    assert (record.state.status, record.state.reason, record.state.key_id) == (
        "revoked",
        "user_request",
        None,
    )
    assert await owner.fetchval("SELECT count(*) FROM events WHERE position = $1", position) == 1
    assert (await verify_chain(owner)).intact


async def test_reprovisioning_after_revocation_gets_a_fresh_key(
    pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing
) -> None:
    """A new provisioning works and uses a new data key, never the shredded one."""
    first = await provision(pool, writer, master_keys)
    await revoke_credential(writer, user_id="alice", reason="user_request", source="test")
    second = await provision(pool, writer, master_keys, password=OTHER_PASSWORD)
    old, new = await stored_secret(pool, first), await stored_secret(pool, second)
    assert old.secret.key_id != new.secret.key_id
    async with pool.acquire() as conn:
        credential = await open_active_credential(conn, master_keys, "alice")
    assert credential is not None
    assert credential.app_password == OTHER_PASSWORD


async def test_replacing_a_credential_shreds_the_old_key(
    pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing, owner: asyncpg.Connection
) -> None:
    """Re-provisioning without a revocation still destroys the replaced secret's key."""
    first = await provision(pool, writer, master_keys)
    await provision(pool, writer, master_keys, password=OTHER_PASSWORD)
    old_key = (await stored_secret(pool, first)).secret.key_id
    assert await owner.fetchval("SELECT count(*) FROM user_keys WHERE key_id = $1", old_key) == 0


async def test_a_ciphertext_copied_to_another_user_does_not_open(
    pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing
) -> None:
    """Alice's sealed password under bob's name fails, even with alice's data key."""
    position = await provision(pool, writer, master_keys)
    sealed = (await stored_secret(pool, position)).secret
    async with pool.acquire() as conn:
        data_key = await load_data_key(conn, master_keys, "alice", sealed.key_id)
    assert data_key is not None
    with pytest.raises(DecryptionFailed):
        open_secret(data_key.key, "bob", sealed)


async def test_user_deletion_revokes_and_shreds(
    pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing, owner: asyncpg.Connection
) -> None:
    """user.deleted ends the credential and destroys its key."""
    position = await provision(pool, writer, master_keys)
    key_id = (await stored_secret(pool, position)).secret.key_id
    await writer.append(to_new_event(UserDeleted(), stream="alice", source="test"))
    async with pool.acquire() as conn:
        record = await get_state(conn, "alice")
    assert record is not None
    assert (record.state.status, record.state.reason) == ("deleted", "user_deleted")
    assert await owner.fetchval("SELECT count(*) FROM user_keys WHERE key_id = $1", key_id) == 0


async def test_invalidation_names_the_credential_it_is_about(
    pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing
) -> None:
    """A 401 recorded for an old credential does not invalidate the newer one."""
    first = await provision(pool, writer, master_keys)
    await provision(pool, writer, master_keys, password=OTHER_PASSWORD)
    await writer.append(
        to_new_event(CredentialInvalidated(credential_position=first), stream="alice", source="sync")
    )
    async with pool.acquire() as conn:
        record = await get_state(conn, "alice")
    assert record is not None
    assert record.state.status == "active"


async def test_disabling_suspends_and_enabling_resumes(
    pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing
) -> None:
    """A disabled user's credential is kept but not synced; enabling makes it active again."""
    await provision(pool, writer, master_keys)
    await writer.append(to_new_event(UserDisabled(), stream="alice", source="test"))
    async with pool.acquire() as conn:
        suspended = await get_state(conn, "alice")
        assert await open_active_credential(conn, master_keys, "alice") is None
    await writer.append(to_new_event(UserEnabled(), stream="alice", source="test"))
    async with pool.acquire() as conn:
        resumed = await get_state(conn, "alice")
    assert suspended is not None
    assert resumed is not None
    assert (suspended.state.status, resumed.state.status) == ("suspended", "active")


async def test_events_about_a_user_without_credential_are_logged_not_projected(
    pool: asyncpg.Pool, writer: GroupCommitWriter
) -> None:
    """The log records what was said; the projection has no row to change."""
    appended = await writer.append(to_new_event(UserDisabled(), stream="nobody", source="test"))
    async with pool.acquire() as conn:
        assert await get_state(conn, "nobody") is None
        assert await conn.fetchval("SELECT position FROM projection_checkpoints") == appended.position


async def test_the_checkpoint_follows_every_batch(
    pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing
) -> None:
    """The projection's checkpoint holds the last position and hash, written with the events."""
    await provision(pool, writer, master_keys)
    last = await writer.append(to_new_event(UserDisabled(), stream="zed", source="test"))
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT position, hash FROM projection_checkpoints WHERE name = 'credential_state'"
        )
    assert row is not None
    assert (row["position"], bytes(row["hash"])) == (last.position, last.hash)
