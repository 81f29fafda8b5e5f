"""Verifying the chain split into position ranges, walked at once by this process and workers.

Every range reads under the snapshot the caller's transaction exports (`pg_export_snapshot`), so
together they check exactly the log a single walk would. A range starts from the stored hash of
the position before it: if that row is wrong, the range before fails at or before it, and that
earlier failure is the one reported. Stream versions cross ranges, so a range records each
stream's first version in it, and the merge checks those, in position order, against the last
versions the ranges before reached. Every check is thus made once, on the same rows, and the first
failure in position order is the one the single walk names, with the same reason.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from events.canonical import GENESIS_HASH
from events.chain_walk import ROWS_QUERY, ChainWalk, version_reason, walk_range
from events.database import Connection, connect_owner
from events.verify import ChainReport

# Below this many events per range, starting a process costs more than it saves.
MIN_RANGE = 100_000


@dataclass(frozen=True, slots=True)
class RangeOutcome:
    """A range's walk: how far it got, where it failed, and the stream versions it saw."""

    end: int
    head_hash: bytes
    bad_position: int | None
    reason: str | None
    versions: dict[str, int] | None
    firsts: dict[str, tuple[int, int, bytes]] | None

    @classmethod
    def of(cls, walk: ChainWalk) -> RangeOutcome:
        return cls(
            walk.expected - 1, walk.prev_hash, walk.bad_position, walk.reason, walk.versions, walk.firsts
        )


async def walk_one_range(
    conn: Connection,
    after: int,
    upto: int,
    start_hash: bytes | None,
    *,
    check_versions: bool,
    progress: Callable[[int], None] | None = None,
) -> RangeOutcome:
    """Walk positions after `after` up to `upto`; `start_hash` None reads the stored one."""
    if start_hash is None:
        stored = await conn.fetchval("SELECT hash FROM events WHERE position = $1", after)
        if stored is None:  # never merged: the range before fails first, here at the latest
            return RangeOutcome(after - 1, GENESIS_HASH, after, f"position {after} is missing", None, None)
        start_hash = bytes(stored)
    # From the genesis every stream must start at version 1; later, at whatever the ranges before reached.
    firsts: dict[str, tuple[int, int, bytes]] | None = {} if check_versions and after > 0 else None
    walk = ChainWalk(after, start_hash, versions={} if check_versions else None, firsts=firsts)
    await walk_range(conn, walk, upto, progress=progress)
    if walk.bad_position is None and walk.expected <= upto:
        # The range's last rows are missing: the next stored row (in a later range) names the gap.
        await walk_range(conn, walk, query=ROWS_QUERY + " LIMIT 1")
    return RangeOutcome.of(walk)


def merge(outcomes: Sequence[RangeOutcome], after: int, after_hash: bytes) -> ChainReport:
    """The report of the whole walk from the ranges' outcomes, in position order."""
    reached: dict[str, int] = {}
    head, head_hash = after, after_hash
    for outcome in outcomes:
        bad: tuple[int, str, bytes] | None = None
        if outcome.bad_position is not None:
            bad = (outcome.bad_position, outcome.reason or "", outcome.head_hash)
        # firsts is in position order, so the first stream that does not continue is the earliest.
        for stream, (version, position, link) in (outcome.firsts or {}).items():
            want = reached.get(stream, 0) + 1
            if version != want:
                if bad is None or position < bad[0]:
                    bad = (position, version_reason(position, version, stream, want), link)
                break
        if bad is not None:
            position, reason, link = bad
            return ChainReport(False, position - after - 1, position - 1, link, position, reason)
        reached.update(outcome.versions or {})
        head, head_hash = outcome.end, outcome.head_hash
    return ChainReport(True, head - after, head, head_hash)


_counter: Any = None


def _init_worker(counter: Any) -> None:
    global _counter
    _counter = counter


def _walk_in_worker(url: str, snapshot: str, after: int, upto: int, check_versions: bool) -> RangeOutcome:
    done = 0

    def count(checked: int) -> None:
        nonlocal done
        with _counter.get_lock():
            _counter.value += checked - done
        done = checked

    async def run() -> RangeOutcome:
        conn = await connect_owner(url)
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                await conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                return await walk_one_range(
                    conn, after, upto, None, check_versions=check_versions, progress=count
                )
        finally:
            await conn.close()

    return asyncio.run(run())


async def verify_in_parallel(
    conn: Connection,
    url: str,
    workers: int,
    *,
    after: int = 0,
    after_hash: bytes = GENESIS_HASH,
    progress: Callable[[int], None] | None = None,
    min_range: int = MIN_RANGE,
) -> ChainReport:
    """verify_chain's report, from `workers` ranges: the first here, the others in processes.

    `conn` must not be in a transaction, or be in a REPEATABLE READ one: its snapshot is the one
    verified. `url` is how the workers connect to the same database.
    """
    if not conn.is_in_transaction():
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await verify_in_parallel(
                conn, url, workers, after=after, after_hash=after_hash, progress=progress, min_range=min_range
            )
    snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
    last = await conn.fetchval("SELECT max(position) FROM events")
    total = max(0, (last or 0) - after)
    count = max(1, min(workers, total // max(1, min_range)))
    bounds = [after + total * index // count for index in range(count + 1)]
    check_versions = after == 0
    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 0)
    own = 0

    def report_own(checked: int) -> None:
        nonlocal own
        own = checked
        if progress is not None:
            progress(own + counter.value)

    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(
        max(1, count - 1), mp_context=context, initializer=_init_worker, initargs=(counter,)
    ) as pool:
        futures = [
            loop.run_in_executor(pool, _walk_in_worker, url, snapshot, lo, hi, check_versions)
            for lo, hi in itertools.pairwise(bounds[1:])
        ]
        first = await walk_one_range(
            conn, bounds[0], bounds[1], after_hash, check_versions=check_versions, progress=report_own
        )
        while not all(future.done() for future in futures):
            await asyncio.wait(futures, timeout=0.2)
            report_own(own)
        outcomes = [first, *(future.result() for future in futures)]
    report = merge(outcomes, after, after_hash)
    if progress is not None and report.intact:
        progress(report.checked)
    return report
