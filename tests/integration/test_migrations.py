"""Migrations against a real database: once each, under a lock, changed files refused."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from events.database import connect_owner
from events.errors import MigrationError
from events.migrations import SQL_DIRECTORY, load_migrations, migrate

SCHEMA_QUERY = """
SELECT table_name, column_name, data_type FROM information_schema.columns
WHERE table_schema = 'public' ORDER BY table_name, ordinal_position
"""


async def test_migrating_twice_changes_nothing(empty_database_url: str) -> None:
    """The second run applies nothing and leaves schema and bookkeeping as they were."""
    conn = await connect_owner(empty_database_url)
    try:
        first = await migrate(conn)
        schema = await conn.fetch(SCHEMA_QUERY)
        recorded = await conn.fetch("SELECT version, checksum, applied_at FROM schema_migrations")
        second = await migrate(conn)
        assert [m.version for m in first] == [m.version for m in load_migrations()]
        assert second == []
        assert await conn.fetch(SCHEMA_QUERY) == schema
        assert await conn.fetch("SELECT version, checksum, applied_at FROM schema_migrations") == recorded
    finally:
        await conn.close()


async def test_concurrent_migrations_take_turns(empty_database_url: str) -> None:
    """Replicas starting together: exactly one applies each file, none fails."""
    conns = [await connect_owner(empty_database_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        assert sorted(len(r) for r in results) == [0, 0, len(load_migrations())]
    finally:
        for conn in conns:
            await conn.close()


async def test_an_applied_file_that_changed_is_refused(empty_database_url: str, tmp_path: Path) -> None:
    """Editing a landed migration stops migrate with the file's name, and applies nothing more."""
    shutil.copytree(SQL_DIRECTORY, tmp_path / "sql")
    conn = await connect_owner(empty_database_url)
    try:
        await migrate(conn, load_migrations(tmp_path / "sql"))
        first = sorted((tmp_path / "sql").glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")
        (tmp_path / "sql" / "9999_later.sql").write_text("CREATE TABLE later (id int);")
        with pytest.raises(MigrationError, match=f"{first.name} has changed"):
            await migrate(conn, load_migrations(tmp_path / "sql"))
        assert await conn.fetchval("SELECT to_regclass('later')") is None
    finally:
        await conn.close()


async def test_a_failing_file_leaves_no_trace(empty_database_url: str, tmp_path: Path) -> None:
    """Each file is one transaction: a broken file is neither half-applied nor recorded."""
    (tmp_path / "0001_broken.sql").write_text("CREATE TABLE half (id int); SELECT * FROM missing;")
    conn = await connect_owner(empty_database_url)
    try:
        with pytest.raises(Exception, match="missing"):
            await migrate(conn, load_migrations(tmp_path))
        assert await conn.fetchval("SELECT to_regclass('half')") is None
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 0
    finally:
        await conn.close()
