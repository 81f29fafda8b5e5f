"""Real PostgreSQL for every test that stores: one migrated template per run, a fresh copy per test.

CREDLEDGER_TEST_DATABASE_URL names a server to use (any database on it; tests create their own).
Unset, the suite starts an embedded PostgreSQL of its own, so it runs where none is installed.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import structlog
from hypothesis import settings

from events.crypto import MasterKey, MasterKeyRing, generate_key
from events.database import connect_owner, create_pool, with_database
from events.migrations import migrate
from events.writer import GroupCommitWriter
from receiver.app import APPEND_HOOKS
from receiver.embedded_postgres import server_url, start_server
from tests.secret_watch import leaks

# CI runs the property tests on a fixed seed, so a red build is reproducible and a green one is not
# luck; developers' runs keep exploring new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def no_secret_in_logs() -> Iterator[None]:
    """Every test: no watched secret (app password, key, token) reaches a log event, even unredacted."""
    with structlog.testing.capture_logs() as logs:
        yield
    assert leaks(repr(logs)) == []


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A superuser URL to the server the suite uses."""
    configured = os.environ.get("CREDLEDGER_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    # Not under pytest's tmp_path: pytest keeps its base directory private (0700) to the user,
    # and the server runs as a user of its own that must be able to reach its data directory.
    with tempfile.TemporaryDirectory(prefix="credledger-test-pg-") as parent:
        server = start_server(Path(parent) / "pgdata", cleanup_mode="delete")
        try:
            yield server_url(server, "postgres")
        finally:
            server.cleanup()


async def _admin(postgres_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(with_database(postgres_url, "postgres"))


@pytest.fixture(scope="session")
async def template_database(postgres_url: str) -> AsyncIterator[str]:
    """A database migrated once per run; each test gets a copy."""
    name = f"credledger_tmpl_{uuid.uuid4().hex[:10]}"
    admin = await _admin(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await connect_owner(with_database(postgres_url, name))
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def database_url(postgres_url: str, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    name = f"credledger_test_{uuid.uuid4().hex[:12]}"
    admin = await _admin(postgres_url)
    try:
        # FILE_COPY copies the template's files instead of WAL-logging every page: 2-3x faster here.
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}" STRATEGY FILE_COPY')
        yield with_database(postgres_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def empty_database_url(postgres_url: str) -> AsyncIterator[str]:
    """A fresh database with no schema at all, for migration tests."""
    name = f"credledger_empty_{uuid.uuid4().hex[:12]}"
    admin = await _admin(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(postgres_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def owner(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the database's owner (a superuser in the test server)."""
    conn = await connect_owner(database_url)
    yield conn
    await conn.close()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The service's pool: connections working as credledger_app."""
    pool = await create_pool(database_url, min_size=1, max_size=8)
    yield pool
    await pool.close()


@pytest.fixture
def master_keys() -> MasterKeyRing:
    """A ring of two master keys, newest first."""
    return MasterKeyRing((MasterKey("k2", generate_key()), MasterKey("k1", generate_key())))


@pytest.fixture
async def writer(pool: asyncpg.Pool) -> AsyncIterator[GroupCommitWriter]:
    """A started group-commit writer with the service's inline hooks (the projection)."""
    writer = GroupCommitWriter(pool, hooks=APPEND_HOOKS)
    await writer.start()
    yield writer
    await writer.close()
