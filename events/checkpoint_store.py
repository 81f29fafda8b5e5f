"""Taking and keeping checkpoints: sign the verified head, store it, read the latest back.

A checkpoint is signed only over a chain that verifies from the previous checkpoint of the same key
(from the genesis for the first), so the service never vouches for a log that was already tampered
with. The previous checkpoint itself is trusted only after its signature checks out against our own
key: a row forged into the table cannot move the starting point.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

from events.canonical import GENESIS_HASH
from events.checkpoints import Checkpoint, SigningKey, sign_checkpoint, verify_checkpoint_signature
from events.database import Connection
from events.errors import EventLogError
from events.verify import verify_chain

# pg_advisory_xact_lock key that lets one replica at a time take a checkpoint ("credlckp").
CHECKPOINT_LOCK_KEY = 0x637265646C636B70

_COLUMNS = "log_size, head_hash, signed_at, key_id, signature, public_key"


class ChainNotIntact(EventLogError):
    """The log does not verify from the last checkpoint: nothing is signed over it."""

    def __init__(self, reason: str, bad_position: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.bad_position = bad_position


@dataclass(frozen=True, slots=True)
class CheckpointOutcome:
    """What one attempt did: signed a new checkpoint, found the head already covered, or stood back."""

    status: Literal["taken", "unchanged", "busy"]
    checkpoint: Checkpoint | None = None


def _from_row(row: asyncpg.Record) -> Checkpoint:
    return Checkpoint(
        log_size=row["log_size"],
        head_hash=bytes(row["head_hash"]),
        signed_at=row["signed_at"],
        key_id=row["key_id"],
        signature=bytes(row["signature"]),
        public_key=bytes(row["public_key"]),
    )


async def latest_checkpoint(conn: Connection, *, key_id: str | None = None) -> Checkpoint | None:
    """The checkpoint over the longest log (of one key, if given), the newest among equals."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM checkpoints WHERE $1::text IS NULL OR key_id = $1 "
        "ORDER BY log_size DESC, signed_at DESC, id DESC LIMIT 1",
        key_id,
    )
    return None if row is None else _from_row(row)


async def store_checkpoint(conn: Connection, checkpoint: Checkpoint) -> bool:
    """Insert `checkpoint`; False when this key already signed a log of that size."""
    stored = await conn.fetchval(
        f"INSERT INTO checkpoints ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) "
        "ON CONFLICT (log_size, key_id) DO NOTHING RETURNING id",
        checkpoint.log_size,
        checkpoint.head_hash,
        checkpoint.signed_at,
        checkpoint.key_id,
        checkpoint.signature,
        checkpoint.public_key,
    )
    return stored is not None


async def _verified_start(conn: Connection, last: Checkpoint | None, key: SigningKey) -> tuple[int, bytes]:
    """Where verification may start: the last checkpoint, if it is genuine and the log still holds it."""
    if last is None:
        return 0, GENESIS_HASH
    verify_checkpoint_signature(last, key.public_key)
    if last.log_size == 0:
        return 0, GENESIS_HASH
    stored = await conn.fetchval("SELECT hash FROM events WHERE position = $1", last.log_size)
    if stored is None:
        raise ChainNotIntact(
            f"the log no longer holds position {last.log_size} of the last checkpoint: it was truncated",
            last.log_size,
        )
    if bytes(stored) != last.head_hash:
        raise ChainNotIntact(
            f"position {last.log_size} no longer holds the hash the last checkpoint signed: "
            "history before it was rewritten",
            last.log_size,
        )
    return last.log_size, last.head_hash


async def take_checkpoint(conn: Connection, key: SigningKey, *, wait: bool = False) -> CheckpointOutcome:
    """Verify the log since the last checkpoint, sign its head and store it, in one transaction.

    One replica at a time: with `wait` False (the scheduled job) a call that finds another in
    progress returns "busy" at once; with `wait` True (the command line) it waits its turn and
    then finds the head covered. Raises ChainNotIntact when the log does not verify, and
    CheckpointRefused when the stored last checkpoint is not genuine.
    """
    async with conn.transaction():
        if wait:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", CHECKPOINT_LOCK_KEY)
        elif not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", CHECKPOINT_LOCK_KEY):
            return CheckpointOutcome("busy")
        last = await latest_checkpoint(conn, key_id=key.key_id)
        after, after_hash = await _verified_start(conn, last, key)
        report = await verify_chain(conn, after=after, after_hash=after_hash)
        if not report.intact:
            raise ChainNotIntact(report.reason or "the chain is broken", report.bad_position)
        if last is not None and report.head_position == last.log_size:
            return CheckpointOutcome("unchanged", last)
        # The database's clock, like recorded_at: a checkpoint is never dated before its head.
        signed_at: datetime = await conn.fetchval("SELECT clock_timestamp()")
        checkpoint = sign_checkpoint(key, report.head_position, report.head_hash, signed_at)
        if not await store_checkpoint(conn, checkpoint):
            # Lost a race with a replica whose lock ended just before ours began: its row stands.
            return CheckpointOutcome("unchanged", await latest_checkpoint(conn, key_id=key.key_id))
        return CheckpointOutcome("taken", checkpoint)
