"""`migrate` and `verify`: the log's own commands."""

from __future__ import annotations

import argparse
import asyncio
import sys

from events.database import connect_owner
from events.errors import MigrationError
from events.reading import head
from events.verify import verify_chain
from receiver.database import database_url, migrate_database
from receiver.logging import configure_logging
from receiver.progress import ProgressBar
from receiver.settings import Settings

EXIT_INTACT = 0
EXIT_TAMPERED = 1
EXIT_FAILED = 2


def migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Apply pending migrations and say which."""
    configure_logging(settings.log_format)

    async def run() -> int:
        async with database_url(settings) as url:
            try:
                applied = await migrate_database(url)
            except MigrationError as error:
                print(f"migrate: {error}", file=sys.stderr)
                return EXIT_FAILED
        if applied:
            for migration in applied:
                print(f"applied {migration.filename}")
        else:
            print("schema is current: nothing to apply")
        return 0

    return asyncio.run(run())


def verify(args: argparse.Namespace, settings: Settings) -> int:
    """Recompute the chain; print the head or the first bad position."""
    configure_logging(settings.log_format)

    async def run() -> int:
        async with database_url(settings) as url:
            conn = await connect_owner(url)
            try:
                last = await head(conn)
                bar = ProgressBar(last[0] if last else 0, "verify")
                report = await verify_chain(conn, progress=bar.update)
                bar.close()
            finally:
                await conn.close()
        if report.intact:
            print(
                f"intact: {report.checked} events, head position {report.head_position}, "
                f"hash {report.head_hash.hex()}"
            )
            return EXIT_INTACT
        print(f"tampered: first bad position {report.bad_position}: {report.reason}")
        return EXIT_TAMPERED

    try:
        return asyncio.run(run())
    except OSError as error:
        print(f"verify: cannot reach the database: {error}", file=sys.stderr)
        return EXIT_FAILED
