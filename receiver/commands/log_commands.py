"""`migrate` and `verify` (also against a signed checkpoint): the log's own commands."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

from events.canonical import canonical_time
from events.checkpoint_proof import CheckpointProof, Walk, prove_checkpoint
from events.checkpoints import (
    Checkpoint,
    CheckpointRefused,
    InvalidCheckpoint,
    parse_public_key,
    parse_public_key_document,
    verify_checkpoint_signature,
)
from events.database import Connection, connect_owner
from events.errors import MigrationError
from events.parallel_verify import verify_in_parallel
from events.reading import head
from events.verify import ChainReport, verify_chain
from receiver.database import database_url, migrate_database
from receiver.logging import configure_logging
from receiver.progress import ProgressBar
from receiver.settings import Settings

EXIT_INTACT = 0
EXIT_TAMPERED = 1
EXIT_FAILED = 2


def add_verify_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify_parser = commands.add_parser(
        "verify",
        help="recompute the hash chain (and check it against a checkpoint); exit 0 intact, 1 tampered",
        description="Recompute every event's hash from position 1 and check positions, links "
        "and stream versions. Prints the head when intact (exit 0), or the first bad position "
        "and why (exit 1). With --checkpoint, also check the checkpoint's signature and prove "
        "that the log still holds its head hash at its position: a foreign or bad signature, "
        "a log truncated below the checkpoint, or history rewritten before it give exit 1 and "
        "the reason. Exit 2 when the check could not run.",
    )
    verify_parser.add_argument(
        "--checkpoint",
        metavar="FILE",
        type=Path,
        help="a checkpoint JSON document, as printed by `credledger checkpoint` or served by "
        "GET /api/v1/audit/checkpoint",
    )
    trusted = verify_parser.add_mutually_exclusive_group()
    trusted.add_argument(
        "--public-key",
        metavar="BASE64",
        help="the Ed25519 public key you trust (base64 of 32 bytes). An auditor should always pass "
        "the key they obtained and kept beforehand: without it, the key inside the checkpoint file "
        "is used, which proves only that the file agrees with itself, not who signed it",
    )
    trusted.add_argument(
        "--public-key-file",
        metavar="FILE",
        type=Path,
        help="the trusted public key from a file: its base64, or the JSON served by "
        "GET /api/v1/audit/public-key",
    )
    verify_parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes that recompute a large log in parallel, each for a range of positions, "
        "under one snapshot (default: one per core; 1 verifies in this process)",
    )
    verify_parser.set_defaults(run=verify)


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


def _trusted_key(args: argparse.Namespace) -> bytes | None:
    if args.public_key is not None:
        return parse_public_key(args.public_key)
    if args.public_key_file is not None:
        try:
            text = args.public_key_file.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidCheckpoint("the public key file is not UTF-8 text") from None
        return parse_public_key_document(text)
    return None


def _checked_checkpoint(args: argparse.Namespace) -> Checkpoint | int:
    """The checkpoint whose signature holds, or the exit code (after saying why on stdout or stderr)."""
    try:
        checkpoint = Checkpoint.from_json(args.checkpoint.read_bytes())
    except OSError as error:
        print(f"verify: cannot read the checkpoint {args.checkpoint}: {error.strerror}", file=sys.stderr)
        return EXIT_FAILED
    except InvalidCheckpoint as error:
        print(f"verify: {args.checkpoint} is not a checkpoint: {error}", file=sys.stderr)
        return EXIT_FAILED
    try:
        trusted = _trusted_key(args)
    except OSError as error:
        print(f"verify: cannot read the public key file: {error.strerror}", file=sys.stderr)
        return EXIT_FAILED
    except InvalidCheckpoint as error:
        print(f"verify: {error}", file=sys.stderr)
        return EXIT_FAILED
    if trusted is None:
        print(
            "verify: warning: no --public-key given: the checkpoint is checked against the key it "
            "carries, which proves only that the file agrees with itself, not who signed it",
            file=sys.stderr,
        )
    try:
        verify_checkpoint_signature(checkpoint, trusted)
    except CheckpointRefused as error:
        print(f"refused: {error.reason}")
        return EXIT_TAMPERED
    print(
        f"checkpoint: position {checkpoint.log_size}, hash {checkpoint.head_hash.hex()}, signed at "
        f"{canonical_time(checkpoint.signed_at)} by key {checkpoint.key_id}"
        + ("" if trusted is not None else " (its own key, not a trusted one)")
    )
    return checkpoint


async def _parallel_walk(
    conn: Connection, progress: Callable[[int], None] | None, *, url: str, workers: int
) -> ChainReport:
    return await verify_in_parallel(conn, url, workers, progress=progress)


def verify(args: argparse.Namespace, settings: Settings) -> int:
    """Recompute the chain; print the head or the first bad position, or the checkpoint's verdict."""
    configure_logging(settings.log_format)
    checkpoint: Checkpoint | None = None
    if args.checkpoint is not None:
        checked = _checked_checkpoint(args)
        if isinstance(checked, int):
            return checked
        checkpoint = checked
    elif args.public_key is not None or args.public_key_file is not None:
        print("verify: a public key is only used with --checkpoint", file=sys.stderr)
        return EXIT_FAILED
    if args.workers < 1:
        print("verify: --workers must be at least 1", file=sys.stderr)
        return EXIT_FAILED

    async def run() -> ChainReport | CheckpointProof:
        async with database_url(settings) as url:
            conn = await connect_owner(url)
            try:
                last = await head(conn)
                bar = ProgressBar(last[0] if last else 0, "verify")
                walk: Walk | None = None
                if args.workers > 1:
                    walk = partial(_parallel_walk, url=url, workers=args.workers)
                if checkpoint is not None:
                    outcome: ChainReport | CheckpointProof = await prove_checkpoint(
                        conn, checkpoint, progress=bar.update, walk=walk
                    )
                elif walk is not None:
                    outcome = await walk(conn, bar.update)
                else:
                    outcome = await verify_chain(conn, progress=bar.update)
                bar.close()
            finally:
                await conn.close()
        return outcome

    try:
        outcome = asyncio.run(run())
    except OSError as error:
        print(f"verify: cannot reach the database: {error}", file=sys.stderr)
        return EXIT_FAILED
    if isinstance(outcome, CheckpointProof):
        print(outcome.reason)
        return EXIT_INTACT if outcome.holds else EXIT_TAMPERED
    if outcome.intact:
        print(
            f"intact: {outcome.checked} events, head position {outcome.head_position}, "
            f"hash {outcome.head_hash.hex()}"
        )
        return EXIT_INTACT
    print(f"tampered: first bad position {outcome.bad_position}: {outcome.reason}")
    return EXIT_TAMPERED
