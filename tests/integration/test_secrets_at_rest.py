"""Invariant 6: after provisioning, use and revocation, the plaintext is nowhere in the database."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import asyncpg
import pytest
import structlog

from events.crypto import MasterKeyRing
from events.writer import GroupCommitWriter
from receiver.credentials import provision_credential, revoke_credential
from sync.credentials import open_active_credential

PASSWORD = "Secre-tPass-word2-3456-789ab"


def pg_dump() -> str:
    # pgserver ships PostgreSQL 16's client tools, which dump both 15 and 16 servers.
    import pgserver._commands

    return str(Path(pgserver._commands.POSTGRES_BIN_PATH) / "pg_dump")


async def test_no_plaintext_in_a_dump_of_the_whole_database(
    database_url: str, pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing
) -> None:
    """Provision two credentials, open one, revoke one: pg_dump holds neither password."""
    other = "Other-Passw-ord23-4567-89abc"
    with structlog.testing.capture_logs() as logs:
        await provision_credential(
            pool,
            writer,
            master_keys,
            user_id="alice",
            login_name="alice",
            scopes=["files"],
            app_password=PASSWORD,
            source="test",
        )
        await provision_credential(
            pool,
            writer,
            master_keys,
            user_id="bob",
            login_name="bob",
            scopes=[],
            app_password=other,
            source="test",
        )
        async with pool.acquire() as conn:
            opened = await open_active_credential(conn, master_keys, "alice")
        assert opened is not None
        await revoke_credential(writer, user_id="alice", reason="user_request", source="test")

    dump = await asyncio.to_thread(
        subprocess.run, [pg_dump(), "--dbname", database_url], capture_output=True, text=True, check=True
    )
    assert "credential.provisioned" in dump.stdout  # the dump does hold the log
    for secret in (PASSWORD, other):
        assert secret not in dump.stdout
        assert secret not in repr(logs)


@pytest.mark.parametrize("field", ["data", "metadata"])
async def test_no_event_column_holds_the_plaintext(
    pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing, field: str
) -> None:
    """The provisioned event's JSON carries ciphertext and a fingerprint, never the password."""
    await provision_credential(
        pool,
        writer,
        master_keys,
        user_id="alice",
        login_name="alice",
        scopes=[],
        app_password=PASSWORD,
        source="test",
    )
    async with pool.acquire() as conn:
        texts = await conn.fetch(f"SELECT {field}::text AS t FROM events")
    assert all(PASSWORD not in row["t"] for row in texts)
