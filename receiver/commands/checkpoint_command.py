"""`checkpoint`: verify the log since the last checkpoint, sign its head, store it and print it as JSON."""

from __future__ import annotations

import argparse
import asyncio
import sys

from events.checkpoint_store import ChainNotIntact, CheckpointOutcome, take_checkpoint
from events.checkpoints import CheckpointRefused, InvalidSigningKey
from events.database import DATABASE_UNAVAILABLE, connect_owner
from events.errors import MigrationError
from receiver.database import database_url, migrate_database
from receiver.key_material import load_signing_key
from receiver.logging import configure_logging
from receiver.settings import Settings

EXIT_SIGNED = 0
EXIT_REFUSED = 1
EXIT_FAILED = 2


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    checkpoint = commands.add_parser(
        "checkpoint",
        help="sign the log's current head and print the checkpoint as JSON",
        description="Verify the chain since the last checkpoint (from position 1 for the first), "
        "sign {log size, head hash, time} with the Ed25519 key of CREDLEDGER_SIGNING_KEY, store it, "
        "and print it on stdout as the JSON document an auditor keeps. When the head has not moved "
        "since the last checkpoint, that one is printed again. Keep the output somewhere the "
        "service cannot write, and check it later with `credledger verify --checkpoint FILE "
        "--public-key KEY`. Exit 0 signed, 1 when the log does not verify (nothing is signed), "
        "2 when the command could not run.",
    )
    checkpoint.set_defaults(run=checkpoint_command)


def checkpoint_command(args: argparse.Namespace, settings: Settings) -> int:
    """Take (or find) the checkpoint of the current head and print it."""
    configure_logging(settings.log_format)
    try:
        key = load_signing_key(settings)
    except InvalidSigningKey as error:
        print(f"checkpoint: CREDLEDGER_SIGNING_KEY: {error}", file=sys.stderr)
        return EXIT_FAILED

    async def run() -> CheckpointOutcome:
        async with database_url(settings) as url:
            await migrate_database(url)
            conn = await connect_owner(url)
            try:
                # Waits for a replica's scheduled checkpoint in progress, then reuses what it signed.
                return await take_checkpoint(conn, key, wait=True)
            finally:
                await conn.close()

    try:
        outcome = asyncio.run(run())
    except ChainNotIntact as error:
        print(f"checkpoint: refused, the log does not verify: {error.reason}", file=sys.stderr)
        return EXIT_REFUSED
    except CheckpointRefused as error:
        print(f"checkpoint: refused, the last stored checkpoint is not genuine: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except MigrationError as error:
        print(f"checkpoint: {error}", file=sys.stderr)
        return EXIT_FAILED
    except DATABASE_UNAVAILABLE as error:
        print(f"checkpoint: cannot reach the database: {error}", file=sys.stderr)
        return EXIT_FAILED
    checkpoint = outcome.checkpoint
    assert checkpoint is not None
    if outcome.status == "taken":
        print(f"signed and stored a checkpoint at position {checkpoint.log_size}", file=sys.stderr)
    else:
        print(
            f"the head has not moved since the checkpoint at position {checkpoint.log_size}: it follows",
            file=sys.stderr,
        )
    print(checkpoint.to_json())
    return EXIT_SIGNED
