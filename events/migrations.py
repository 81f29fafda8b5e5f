"""Numbered SQL migrations from `sql/`: applied in order, once each, and never silently changed.

Each file runs in its own transaction and is recorded with its SHA-256 in `schema_migrations`.
A session-level advisory lock makes concurrent `migrate` calls (several replicas starting at once)
take turns; the second finds nothing left to do. A file that changed after it was applied is refused:
the database would no longer match what the code believes it has.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from events.database import Connection
from events.errors import MigrationError

MIGRATION_LOCK_KEY = 0x637265646C6D6967  # "credlmig"

# sql/ ships beside this package, in a checkout and in an installed wheel alike.
SQL_DIRECTORY = Path(__file__).resolve().parent.parent / "sql"

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered file of `sql/`."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"


def load_migrations(directory: Path = SQL_DIRECTORY) -> list[Migration]:
    """The migrations in `directory`, in order; refuses stray names and duplicate numbers."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_description.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path.name}: version {version} is used twice")
        found[version] = Migration(version, match.group(2), path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def applied_checksums(conn: Connection) -> dict[int, str]:
    """Version -> checksum of every migration recorded, or {} before the first migrate."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    return {row["version"]: row["checksum"] for row in rows}


def check_applied(migrations: list[Migration], applied: dict[int, str]) -> list[Migration]:
    """The migrations still to apply; raises if an applied one changed or is unknown here."""
    known = {m.version: m for m in migrations}
    for version, checksum in sorted(applied.items()):
        migration = known.get(version)
        if migration is None:
            raise MigrationError(
                f"the database has migration {version:04d}, which this version of credledger "
                "does not know: it was migrated by a newer release"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"{migration.filename} has changed since it was applied "
                f"(checksum {checksum[:12]}… in the database, {migration.checksum[:12]}… on disk); "
                "applied migrations are never edited: add a new numbered file instead"
            )
    return [m for m in migrations if m.version not in applied]


async def migrate(conn: Connection, migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply every pending migration; returns those applied (empty when already current)."""
    migrations = load_migrations() if migrations is None else migrations
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        # Only when missing: CREATE … IF NOT EXISTS still needs CREATE on the schema, which a
        # service that does not own its schema lacks even when the table is there.
        if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
            await conn.execute(_BOOKKEEPING)
        pending = check_applied(migrations, await applied_checksums(conn))
        for migration in pending:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
        return pending
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def pending_migrations(conn: Connection) -> list[Migration]:
    """What `migrate` would apply now; raises MigrationError when it would refuse."""
    return check_applied(load_migrations(), await applied_checksums(conn))
