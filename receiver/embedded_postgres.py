"""A private PostgreSQL under the data directory, for when no CREDLEDGER_DATABASE_URL is given.

pgserver bundles the server binaries, so `make run` and `make test` work on a machine with no
PostgreSQL at all. It listens on a Unix socket only, and when run as root it runs the server as a
user of its own (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import structlog

DATABASE_NAME = "credledger"

log = structlog.get_logger(__name__)


def start_server(pgdata: Path, cleanup_mode: str = "stop") -> Any:
    """Start, or join, the pgserver whose data lives in `pgdata` (blocking; about a second)."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); pgserver copes.
        warnings.simplefilter("ignore")
        import pgserver

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        return pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)  # type: ignore[attr-defined]


def server_url(server: Any, database: str) -> str:
    """The URL of `database` on a started pgserver (a Unix-socket URL)."""
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql://postgres@/{database}?host={quote(str(socket_dir))}"


@asynccontextmanager
async def embedded_postgres(data_dir: Path, database: str = DATABASE_NAME) -> AsyncIterator[str]:
    """Start (or join) the embedded server under `data_dir`, yield a URL to `database`, stop on exit."""
    pgdata = (data_dir / "postgres").resolve()
    server = await asyncio.to_thread(start_server, pgdata)
    try:
        admin = await asyncpg.connect(server_url(server, "postgres"))
        try:
            exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
            if not exists:
                await admin.execute(f'CREATE DATABASE "{database}"')
        finally:
            await admin.close()
        log.info("embedded_postgres.started", pgdata=str(pgdata))
        yield server_url(server, database)
    finally:
        await asyncio.to_thread(server.cleanup)
        log.info("embedded_postgres.stopped", pgdata=str(pgdata))
