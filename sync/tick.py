"""One scheduler tick: claim the users that are due, sync them concurrently, report what happened."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from projections.queries import CredentialRecord, claim_due_users
from sync import pause
from sync.user_sync import Outcome, SyncDependencies, sync_user


@dataclass(frozen=True)
class TickReport:
    """How many users a tick claimed, and how each sync ended."""

    claimed: int = 0
    paused_for: float = 0.0
    outcomes: Counter[Outcome] = field(default_factory=Counter)


async def run_tick(deps: SyncDependencies, *, concurrency: int, lease_seconds: float) -> TickReport:
    """Claim up to a few batches' worth of due users and sync them, `concurrency` at a time."""
    async with deps.pool.acquire() as conn:
        paused = await pause.paused_for(conn)
        if paused > 0:
            # Another replica (or this one) met a 429: every replica holds off until it ends.
            deps.throttle.pause(paused)
            return TickReport(paused_for=paused)
        claimed = await claim_due_users(
            conn, limit=concurrency * 4, lease_seconds=lease_seconds, owner=deps.owner
        )
    slots = asyncio.Semaphore(concurrency)
    outcomes: Counter[Outcome] = Counter()

    async def one(record: CredentialRecord) -> None:
        async with slots:
            outcomes[await sync_user(deps, record)] += 1

    await asyncio.gather(*(one(record) for record in claimed))
    return TickReport(claimed=len(claimed), outcomes=outcomes)
