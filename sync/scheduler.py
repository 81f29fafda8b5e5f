"""APScheduler 3 on the service's event loop: the sync tick, the housekeeping jobs and checkpoints.

The job bodies are plain async functions that take their dependencies (see sync.tick); this module
only decides when they run. `coalesce` and `max_instances=1` mean a slow tick is never overlapped
by the next one in the same process; across replicas, the leases of claim_due_users divide the work,
and the checkpoint job takes a transaction-scoped advisory lock so that one replica signs at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from events.checkpoint_store import ChainNotIntact, take_checkpoint
from events.checkpoints import CheckpointRefused, SigningKey
from projections.credential_store import shred_orphaned_keys
from sync.tick import run_tick
from sync.user_sync import SyncDependencies

log = structlog.get_logger(__name__)

# A claimed user is someone else's to take only after this long: longer than any one sync.
LEASE_SECONDS = 300.0
ORPHAN_SWEEP_SECONDS = 3600.0
CHECKPOINT_SECONDS = 3600.0
# The first checkpoint waits a little after start-up: not in the way of a rolling restart, but
# soon enough that a service restarted more often than hourly still signs its head.
CHECKPOINT_FIRST_DELAY_SECONDS = 60.0


def tick_seconds(interval_seconds: float) -> float:
    """How often to look for due users: a tenth of the sync interval, between 50 ms and 5 s."""
    return min(max(interval_seconds / 10, 0.05), 5.0)


class _JobScheduler:
    """An APScheduler on the running loop whose `stop` waits for a job that is running to finish."""

    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._running: set[asyncio.Task[object]] = set()

    async def stop(self) -> None:
        """No new runs; the one in progress (if any) completes, so its outcomes are recorded."""
        self._scheduler.shutdown(wait=False)
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def _tracked(self, job: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[object]]:
        async def run() -> object:
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                return await job()
            finally:
                self._running.discard(task)

        run.__name__ = getattr(job, "__name__", "job")
        return run


class SyncScheduler(_JobScheduler):
    """Starts the sync tick and the orphaned-key sweep on the running loop."""

    def __init__(self, deps: SyncDependencies, *, concurrency: int) -> None:
        super().__init__()
        self._deps = deps
        self._concurrency = concurrency

    def start(self) -> None:
        self._scheduler.add_job(
            self._tracked(self._tick),
            "interval",
            seconds=tick_seconds(self._deps.interval_seconds),
            next_run_time=datetime.now(UTC),
            coalesce=True,
            max_instances=1,
            id="sync-tick",
            name="sync tick",
        )
        self._scheduler.add_job(
            self._tracked(self._sweep_orphaned_keys),
            "interval",
            seconds=ORPHAN_SWEEP_SECONDS,
            coalesce=True,
            max_instances=1,
            id="orphaned-key-sweep",
            name="orphaned key sweep",
        )
        self._scheduler.start()

    async def _tick(self) -> None:
        try:
            report = await run_tick(self._deps, concurrency=self._concurrency, lease_seconds=LEASE_SECONDS)
        except Exception:
            log.exception("sync.tick_failed")
            return
        if report.claimed:
            log.info("sync.tick", claimed=report.claimed, **{str(k): v for k, v in report.outcomes.items()})

    async def _sweep_orphaned_keys(self) -> None:
        try:
            async with self._deps.pool.acquire() as conn:
                swept = await shred_orphaned_keys(conn)
        except Exception:
            log.exception("keys.sweep_failed")
            return
        if swept:
            log.info("keys.orphans_shredded", count=swept)


async def checkpoint_job(pool: asyncpg.Pool, key: SigningKey) -> None:
    """One scheduled checkpoint: sign the head if it moved; say so loudly if the log does not verify."""
    try:
        async with pool.acquire() as conn:
            outcome = await take_checkpoint(conn, key)
    except ChainNotIntact as error:
        log.error("checkpoint.chain_broken", bad_position=error.bad_position, reason=error.reason)
        return
    except CheckpointRefused as error:
        log.error("checkpoint.previous_not_genuine", reason=error.reason)
        return
    except Exception:
        log.exception("checkpoint.failed")
        return
    if outcome.status == "taken" and outcome.checkpoint is not None:
        log.info(
            "checkpoint.signed",
            log_size=outcome.checkpoint.log_size,
            head_hash=outcome.checkpoint.head_hash.hex(),
            key_id=outcome.checkpoint.key_id,
        )


class CheckpointScheduler(_JobScheduler):
    """Runs the checkpoint job hourly on every replica; the advisory lock lets one of them sign."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        key: SigningKey,
        *,
        interval_seconds: float = CHECKPOINT_SECONDS,
        first_delay_seconds: float = CHECKPOINT_FIRST_DELAY_SECONDS,
    ) -> None:
        super().__init__()
        self._pool = pool
        self._key = key
        self._interval_seconds = interval_seconds
        self._first_delay_seconds = first_delay_seconds

    def start(self) -> None:
        self._scheduler.add_job(
            self._tracked(self._checkpoint),
            "interval",
            seconds=self._interval_seconds,
            next_run_time=datetime.now(UTC) + timedelta(seconds=self._first_delay_seconds),
            coalesce=True,
            max_instances=1,
            id="checkpoint",
            name="signed checkpoint",
        )
        self._scheduler.start()

    async def _checkpoint(self) -> None:
        await checkpoint_job(self._pool, self._key)
