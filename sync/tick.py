"""One scheduler tick: claim the users that are due, sync them concurrently, report what happened."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from projections.queries import claim_due_users
from sync import pause
from sync.user_sync import Outcome, Successes, SyncDependencies, sync_user


@dataclass(frozen=True)
class TickReport:
    """How many users a tick claimed, and how each sync ended."""

    claimed: int = 0
    paused_for: float = 0.0
    outcomes: Counter[Outcome] = field(default_factory=Counter)


async def run_tick(deps: SyncDependencies, *, concurrency: int, lease_seconds: float) -> TickReport:
    """Claim up to eight rounds' worth of due users and sync them, `concurrency` at a time.

    Each of the `concurrency` workers keeps one connection for the whole tick and takes the next
    user when it is done with one: no connection is handed back (and reset) between users, and its
    successes are recorded together. Leases are held until then, so nobody else takes those users.
    """
    async with deps.pool.acquire() as conn:
        paused = await pause.paused_for(conn)
        if paused > 0:
            # Another replica (or this one) met a 429: every replica holds off until it ends.
            deps.throttle.pause(paused)
            return TickReport(paused_for=paused)
        claimed = await claim_due_users(
            conn, limit=concurrency * 8, lease_seconds=lease_seconds, owner=deps.owner
        )
    waiting = list(reversed(claimed))
    outcomes: Counter[Outcome] = Counter()

    async def worker() -> None:
        async with deps.pool.acquire() as conn:
            successes = Successes(deps, conn)
            try:
                while waiting:
                    outcomes[await sync_user(deps, waiting.pop(), conn, successes)] += 1
            finally:
                await successes.flush()

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(claimed)))))
    return TickReport(claimed=len(claimed), outcomes=outcomes)
