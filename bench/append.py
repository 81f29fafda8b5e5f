"""Appends/s through the group-commit writer, beside raw single-row INSERT transactions.

"writer" is the bare append path; "+hooks" adds the service's inline projections (credential
state and tokens), as every append in the running service has them. The baseline inserts into a
copy of the events table (same columns, constraints and indexes) with
no lock, no chain and one transaction per row, from 16 asyncpg connections: what a naive log would
do. The writer serialises every append under the advisory lock and hashes each event, and wins
back by committing many events per transaction.

    make bench-append            # embedded PostgreSQL
    CREDLEDGER_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres make bench-append
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from bench import event_loop
from bench.database import fresh_database, server, server_version
from events.append import AppendHook
from events.database import create_pool
from events.envelope import NewEvent
from events.writer import BatchStats, GroupCommitWriter
from receiver.app import APPEND_HOOKS

USERS = 10_000


def make_event(n: int) -> NewEvent:
    return NewEvent(
        event_id=uuid.uuid4().hex,
        source="bench",
        stream=f"user{random.randrange(USERS)}",
        type="user.disabled",
        data={"reason": "admin", "n": n},
        occurred_at=datetime.now(UTC),
        metadata={"request_id": uuid.uuid4().hex},
    )


async def run_writer(
    url: str, concurrency: int, seconds: float, hooks: Sequence[AppendHook] = ()
) -> tuple[float, float, float]:
    """(appends/s, p50 ms, mean batch size) for `concurrency` callers looping for `seconds`."""
    pool = await create_pool(url, min_size=2, max_size=4)
    batches: list[int] = []

    def on_batch(stats: BatchStats) -> None:
        batches.append(stats.size)

    writer = GroupCommitWriter(pool, hooks, on_batch=on_batch)
    await writer.start()
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def caller() -> int:
        done = 0
        while time.perf_counter() < stop:
            started = time.perf_counter()
            await writer.append(make_event(done))
            latencies.append(time.perf_counter() - started)
            done += 1
        return done

    started = time.perf_counter()
    total = sum(await asyncio.gather(*(caller() for _ in range(concurrency))))
    elapsed = time.perf_counter() - started
    await writer.close()
    await pool.close()
    return total / elapsed, statistics.median(latencies) * 1000, statistics.fmean(batches)


_BASELINE_TABLE = """
CREATE TABLE baseline_events (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
CREATE SEQUENCE baseline_position OWNED BY baseline_events.position;
ALTER TABLE baseline_events ALTER COLUMN position SET DEFAULT nextval('baseline_position');
"""

_BASELINE_INSERT = """
INSERT INTO baseline_events (event_id, source, stream, stream_version, type, schema_version,
                             data, metadata, occurred_at, recorded_at, prev_hash, hash)
VALUES ($1, $2, $3, nextval('baseline_position'), $4, 1, $5::text::jsonb, $6::text::jsonb, $7, now(), $8, $8)
"""


async def run_baseline(url: str, concurrency: int, seconds: float) -> float:
    """Single-row INSERT transactions/s from `concurrency` connections: the unserialised ceiling."""
    owner = await asyncpg.connect(url)
    await owner.execute(_BASELINE_TABLE)
    await owner.close()
    conns = [
        await asyncpg.connect(url, server_settings={"synchronous_commit": "on"}) for _ in range(concurrency)
    ]
    stop = time.perf_counter() + seconds
    zero = bytes(32)

    async def inserter(conn: asyncpg.Connection) -> int:
        done = 0
        while time.perf_counter() < stop:
            await conn.execute(
                _BASELINE_INSERT,
                uuid.uuid4().hex,
                "bench",
                f"user{random.randrange(USERS)}",
                "user.disabled",
                f'{{"reason":"admin","n":{done}}}',
                f'{{"request_id":"{uuid.uuid4().hex}"}}',
                datetime.now(UTC),
                zero,
            )
            done += 1
        return done

    started = time.perf_counter()
    total = sum(await asyncio.gather(*(inserter(c) for c in conns)))
    elapsed = time.perf_counter() - started
    for conn in conns:
        await conn.close()
    return total / elapsed


async def main(seconds: float) -> None:
    async with server() as url:
        print(f"PostgreSQL {await server_version(url)}, {os.cpu_count()} cores, {seconds:.0f} s per run")
        async with fresh_database(url) as db:
            baseline = await run_baseline(db, 16, seconds)
        print(f"baseline  single-row INSERT transactions, 16 connections: {baseline:10,.0f} rows/s")
        for label, hooks in (("writer", ()), ("+hooks", APPEND_HOOKS)):
            for concurrency in (1, 16, 64):
                async with fresh_database(url) as db:
                    rate, p50, batch = await run_writer(db, concurrency, seconds, hooks)
                print(
                    f"{label:9s} concurrency {concurrency:3d}: {rate:10,.0f} appends/s  "
                    f"p50 {p50:6.2f} ms  mean batch {batch:5.1f}  ratio {rate / baseline:5.2f}"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run")
    event_loop.run(main(parser.parse_args().seconds))
