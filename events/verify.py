"""Recompute the hash chain from the first event and name the first position that does not hold.

The walk over the rows is `events.chain_walk`; `events.parallel_verify` splits it into position
ranges walked by several processes, and gives the same report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from events.canonical import GENESIS_HASH
from events.chain_walk import ChainWalk, walk_range
from events.database import Connection


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of a verification: the head that was proven, or where and why it failed."""

    intact: bool
    checked: int
    head_position: int
    head_hash: bytes
    bad_position: int | None = None
    reason: str | None = None


async def verify_chain(
    conn: Connection,
    *,
    after: int = 0,
    after_hash: bytes = GENESIS_HASH,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 10_000,
) -> ChainReport:
    """Walk the log in position order, checking positions, links, hashes and stream versions.

    `after` and `after_hash` start the walk from a trusted point (a checkpoint) instead of the
    genesis. The stream-version check can only be complete from the genesis, so it is made then.
    Runs in a read-only REPEATABLE READ transaction of its own, or in the caller's if one is open.
    """
    walk = ChainWalk(after, after_hash, versions={} if after == 0 else None)
    marks = _progress_marks(progress, progress_every)
    if conn.is_in_transaction():
        await walk_range(conn, walk, progress=marks)
    else:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await walk_range(conn, walk, progress=marks)
    if progress is not None and walk.bad_position is None:
        progress(walk.checked)
    return walk_report(walk)


def _progress_marks(progress: Callable[[int], None] | None, every: int) -> Callable[[int], None] | None:
    """Calls `progress` at each multiple of `every` passed, as a walk event by event would."""
    if progress is None:
        return None
    reached = 0

    def passed(checked: int) -> None:
        nonlocal reached
        for mark in range(reached + every, checked + 1, every):
            progress(mark)
        reached = checked - checked % every

    return passed


def walk_report(walk: ChainWalk) -> ChainReport:
    """The report of a walk that ended: its head, or where and why it stopped."""
    if walk.bad_position is None:
        return ChainReport(True, walk.checked, walk.expected - 1, walk.prev_hash)
    return ChainReport(False, walk.checked, walk.expected - 1, walk.prev_hash, walk.bad_position, walk.reason)
