"""Verify rate: recomputing the hash chain of 1,000,000 events, in events/s, against 200,000/s.

Generation is not timed: bench.rebuild's generator appends through the real append path (chain
and all), then VACUUM ANALYZE leaves the table as a long-lived log is (hint bits set, statistics
known). Then, in the same run: the walk verify made before it read raw columns (every row a
RecordedEvent, re-serialised field by field) as the baseline, `verify_chain` in this process
(`--workers 1`), and `verify_in_parallel` with each other worker count, as `credledger verify
--workers N` runs them. Each is timed `--runs` times; the machine is noisy, so all are printed.

    make bench-verify                      # embedded PostgreSQL
    python -m bench.verify --events 200000 --workers 1 2 4
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial

import asyncpg

from bench.database import fresh_database, server, server_version
from bench.rebuild import generate
from events.canonical import GENESIS_HASH, chain_hash
from events.database import connect_owner
from events.parallel_verify import verify_in_parallel
from events.reading import iter_events
from events.verify import ChainReport, verify_chain

TARGET = 200_000


async def old_walk(conn: asyncpg.Connection) -> ChainReport:
    """The walk verify_chain made before raw columns: the baseline (intact logs only)."""
    expected, prev_hash, versions = 1, GENESIS_HASH, dict[str, int]()
    async for event in iter_events(conn):
        canonical = event.canonical_bytes()
        want = versions.get(event.stream, 0) + 1
        if (
            event.position != expected
            or event.prev_hash != prev_hash
            or chain_hash(prev_hash, canonical) != event.hash
            or event.stream_version != want
        ):
            return ChainReport(False, expected - 1, expected - 1, prev_hash, event.position, "broken")
        versions[event.stream] = want
        prev_hash, expected = event.hash, expected + 1
    return ChainReport(True, expected - 1, expected - 1, prev_hash)


async def timed(label: str, runs: int, verify: Callable[[], Awaitable[ChainReport]]) -> None:
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        report = await verify()
        elapsed = time.perf_counter() - started
        assert report.intact, report
        rates.append(report.checked / elapsed)
    listed = ", ".join(f"{rate:,.0f}" for rate in rates)
    best, median = max(rates), statistics.median(rates)
    print(
        f"{label:38s} {median:9,.0f} events/s median ({listed}); best {best:,.0f} "
        f"= {best / TARGET:.2f}x the {TARGET:,}/s target"
    )


async def main(total: int, users: int, workers: list[int], runs: int, baseline: bool) -> None:
    async with server() as url:
        print(f"PostgreSQL {await server_version(url)}: {total:,} events over {users:,} users")
        async with fresh_database(url) as db:
            took = await generate(db, total, users)
            conn = await connect_owner(db)
            try:
                await conn.execute("VACUUM ANALYZE events")
                print(f"generated in {took:.1f} s (not part of the figure)")
                if baseline:
                    await timed("old walk (RecordedEvent), 1 process", 1, partial(old_walk, conn))
                for count in workers:
                    if count == 1:
                        await timed("verify --workers 1 (in this process)", runs, partial(verify_chain, conn))
                    else:
                        await timed(
                            f"verify --workers {count}", runs, partial(verify_in_parallel, conn, db, count)
                        )
            finally:
                await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-baseline", dest="baseline", action="store_false")
    args = parser.parse_args()
    asyncio.run(main(args.events, args.users, args.workers, args.runs, args.baseline))
