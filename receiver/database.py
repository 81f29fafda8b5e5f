"""Where the database comes from: the configured URL, or the embedded server; migrated on the way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from events.database import connect_owner
from events.migrations import Migration, migrate
from receiver.embedded_postgres import embedded_postgres
from receiver.settings import Settings


@asynccontextmanager
async def database_url(settings: Settings) -> AsyncIterator[str]:
    """The configured URL, or an embedded PostgreSQL's for as long as the block runs."""
    if settings.database_url:
        yield settings.database_url
        return
    async with embedded_postgres(settings.data_dir) as url:
        yield url


async def migrate_database(url: str) -> list[Migration]:
    """Bring the schema up to date as the owning user; returns what was applied."""
    conn = await connect_owner(url)
    try:
        return await migrate(conn)
    finally:
        await conn.close()
