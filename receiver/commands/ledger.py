"""What most commands need: the database (embedded or configured), migrated, a pool and a writer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from events.crypto import MasterKeyRing
from events.database import connect_owner, create_pool
from events.writer import GroupCommitWriter
from receiver.app import APPEND_HOOKS
from receiver.database import database_url, migrate_database
from receiver.key_material import load_master_keys
from receiver.settings import Settings


@dataclass(frozen=True, slots=True)
class Ledger:
    """Connections for a command: the owner's (admin work), the service pool, and the writer."""

    url: str
    owner: asyncpg.Connection
    pool: asyncpg.Pool
    writer: GroupCommitWriter
    master_keys: MasterKeyRing


@asynccontextmanager
async def open_ledger(settings: Settings) -> AsyncIterator[Ledger]:
    """Migrate, connect, start a writer with the service's hooks; undo it all on exit."""
    master_keys = load_master_keys(settings)
    async with database_url(settings) as url:
        await migrate_database(url)
        owner = await connect_owner(url)
        pool = await create_pool(url, min_size=1, max_size=4)
        writer = GroupCommitWriter(pool, hooks=APPEND_HOOKS)
        await writer.start()
        try:
            yield Ledger(url, owner, pool, writer, master_keys)
        finally:
            await writer.close()
            await pool.close()
            await owner.close()
