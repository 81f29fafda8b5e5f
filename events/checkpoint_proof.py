"""Proving the log against a checkpoint: it still holds the signed head at its position, and is intact.

The whole chain is recomputed from the genesis in one snapshot; the checkpoint then pins the hash
at its position. Recomputing alone cannot see a superuser who rewrote history and rehashed every
row after it consistently; the signed head hash can, and so can it see a tail cut off below it.
The signature is checked separately (events.checkpoints), before any of this is worth doing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from events.canonical import GENESIS_HASH
from events.checkpoints import Checkpoint
from events.database import Connection
from events.verify import ChainReport, verify_chain

# How the chain is recomputed: verify_chain by default, or a parallel walk over the same snapshot.
Walk = Callable[[Connection, Callable[[int], None] | None], Awaitable[ChainReport]]

ProofStatus = Literal["intact", "tampered_before", "truncated", "head_differs", "tampered_after"]


@dataclass(frozen=True, slots=True)
class CheckpointProof:
    """The verdict, a sentence saying why, and the chain report it rests on."""

    status: ProofStatus
    reason: str
    chain: ChainReport

    @property
    def holds(self) -> bool:
        return self.status == "intact"


async def prove_checkpoint(
    conn: Connection,
    checkpoint: Checkpoint,
    *,
    progress: Callable[[int], None] | None = None,
    walk: Walk | None = None,
) -> CheckpointProof:
    """Verify the chain from the genesis and judge it against `checkpoint` (signature not checked).

    `walk` runs inside this function's REPEATABLE READ transaction, so a parallel walk exports
    and shares the very snapshot the head lookup below reads.
    """
    size = checkpoint.log_size
    # One snapshot for the walk and the lookup: an append in between cannot confuse the verdict.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        report = await (walk(conn, progress) if walk else verify_chain(conn, progress=progress))
        stored = await conn.fetchval("SELECT hash FROM events WHERE position = $1", size)
    at_size = GENESIS_HASH if size == 0 else (None if stored is None else bytes(stored))
    return judge(checkpoint, report, at_size)


def judge(checkpoint: Checkpoint, report: ChainReport, hash_at_size: bytes | None) -> CheckpointProof:
    """The verdict from a chain report and the stored hash at the checkpoint's position (None: absent)."""
    size = checkpoint.log_size
    if not report.intact and report.bad_position is not None and report.bad_position <= size:
        return CheckpointProof(
            "tampered_before",
            f"tampered before the checkpoint's position {size}: first bad position "
            f"{report.bad_position}: {report.reason}",
            report,
        )
    if report.head_position < size:
        return CheckpointProof(
            "truncated",
            f"truncated: the log ends at position {report.head_position}, below the checkpoint's "
            f"position {size}",
            report,
        )
    if hash_at_size != checkpoint.head_hash:
        held = "nothing" if hash_at_size is None else hash_at_size.hex()
        return CheckpointProof(
            "head_differs",
            f"head hash differs at the checkpoint's position {size}: the log holds {held}, the "
            f"checkpoint signed {checkpoint.head_hash.hex()}: history up to it was rewritten and rehashed",
            report,
        )
    if not report.intact:
        return CheckpointProof(
            "tampered_after",
            f"tampered after the checkpoint's position {size}: first bad position "
            f"{report.bad_position}: {report.reason}",
            report,
        )
    return CheckpointProof(
        "intact",
        f"intact: the log holds the checkpoint's head at position {size} and is intact from the "
        f"genesis to head position {report.head_position}, hash {report.head_hash.hex()}",
        report,
    )
