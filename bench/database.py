"""A database for a benchmark: CREDLEDGER_BENCH_DATABASE_URL's server, or an embedded one."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from events.database import connect_owner, with_database
from events.migrations import migrate
from receiver.embedded_postgres import server_url, start_server


@asynccontextmanager
async def server() -> AsyncIterator[str]:
    """A superuser URL: the configured server, or a throwaway embedded PostgreSQL."""
    configured = os.environ.get("CREDLEDGER_BENCH_DATABASE_URL")
    if configured:
        yield configured
        return
    with tempfile.TemporaryDirectory(prefix="credledger-bench-") as tmp:
        embedded = start_server(Path(tmp) / "pgdata", cleanup_mode="delete")
        try:
            yield server_url(embedded, "postgres")
        finally:
            embedded.cleanup()


@asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    """A new, migrated database, dropped afterwards."""
    name = f"credledger_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = with_database(server_url, name)
        conn = await connect_owner(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def server_version(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
