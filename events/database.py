"""Connections to the log's database: the owner's for migrations, the service role's for work."""

from __future__ import annotations

from typing import TypeAlias
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# A connection of our own or one lent by a pool: everything that takes a connection takes either.
Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy

SERVICE_ROLE = "credledger_app"

# jsonb is left as asyncpg gives it, text both ways: the log writes its canonical JSON text as it
# is, and readers decode explicitly, so no connection's codec can change what is hashed.

# Acknowledged means durable: whatever the server's default, our commits wait for the WAL flush.
_DURABLE = {"synchronous_commit": "on", "application_name": "credledger"}


async def connect_owner(dsn: str) -> asyncpg.Connection:
    """A single connection as the configured (owning) user: for migrations and admin commands."""
    conn: asyncpg.Connection = await asyncpg.connect(dsn, server_settings=_DURABLE)
    return conn


async def create_pool(
    dsn: str, *, min_size: int = 2, max_size: int = 10, role: str | None = SERVICE_ROLE
) -> asyncpg.Pool:
    """A pool whose connections work as the service role, which may only read and append the log.

    The role is a startup parameter rather than a SET ROLE, so the pool's RESET ALL on release
    returns to it instead of to the owner.
    """
    settings = dict(_DURABLE)
    if role is not None:
        settings["role"] = role
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        server_settings=settings,
    )
    assert pool is not None
    return pool


def with_database(url: str, database: str) -> str:
    """`url` pointing at another database on the same server (TCP or Unix-socket URLs alike)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


# What "the database is not there right now" looks like: refused or dropped connections, a server
# shutting down or starting up, a full connection table. Answered with 503 and Retry-After.
# InternalClientError is what asyncpg raises when the server killed the connection in the middle
# of a multi-step operation (seen with pg_terminate_backend during a COPY): the protocol state is
# lost with the connection, which the pool then replaces.
DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InternalClientError,
)
