"""The log across OS processes: one gap-free chain under concurrency, and nothing lost to SIGKILL."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import asyncpg
import pytest

from events.reading import read_after
from events.verify import verify_chain
from tests.e2e.processes import start_append_worker

pytestmark = pytest.mark.slow


async def tail_until(pool: asyncpg.Pool, total: int, deadline: float) -> list[int]:
    """Follow the log by position, as a projector would, until `total` events were seen."""
    seen: list[int] = []
    async with pool.acquire() as conn:
        while len(seen) < total:
            assert time.monotonic() < deadline, f"tailer saw {len(seen)} of {total} events"
            page = await read_after(conn, seen[-1] if seen else 0, limit=500)
            seen.extend(e.position for e in page)
            if not page:
                await asyncio.sleep(0.01)  # polling interval of the tailer, not a synchronisation
    return seen


async def test_two_processes_share_one_gap_free_chain(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """2 processes x 8 tasks x 500 appends; a tailer sees each position once, in order."""
    outputs = [(tmp_path / f"p{i}.out").open("w+") for i in range(2)]
    workers = [
        start_append_worker(database_url, name=f"p{i}", tasks=8, count=500, stdout=outputs[i])
        for i in range(2)
    ]
    seen = await tail_until(pool, 8000, time.monotonic() + 120)
    acknowledged: list[str] = []
    for worker, output in zip(workers, outputs, strict=True):
        _, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        output.seek(0)
        acknowledged.extend(output.read().splitlines())
        output.close()

    assert seen == list(range(1, 8001))
    assert len(acknowledged) == 8000
    assert sorted(int(line.split()[1]) for line in acknowledged) == list(range(1, 8001))
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT stream, array_agg(stream_version ORDER BY position) AS v FROM events GROUP BY stream"
        )
        for row in rows:
            assert row["v"] == list(range(1, len(row["v"]) + 1)), row["stream"]
        report = await verify_chain(conn)
    assert report.intact
    assert report.checked == 8000


async def test_every_acknowledged_append_survives_sigkill(database_url: str, pool: asyncpg.Pool) -> None:
    """Kill a writer mid-load: all it acknowledged is stored at the position it was told; the chain holds."""
    worker = start_append_worker(database_url, name="doomed", tasks=8, count=100_000)
    assert worker.stdout is not None
    acknowledged: list[str] = []
    while len(acknowledged) < 1500:
        line = worker.stdout.readline()
        assert line, "the worker stopped before it was killed"
        acknowledged.append(line)
    worker.send_signal(signal.SIGKILL)
    rest, _ = worker.communicate(timeout=30)
    acknowledged.extend(rest.splitlines())

    told = dict(line.split() for line in acknowledged if line.strip())
    async with pool.acquire() as conn:
        stored = {
            r["event_id"]: str(r["position"])
            for r in await conn.fetch(
                "SELECT event_id, position FROM events WHERE event_id = ANY($1)", list(told)
            )
        }
        assert stored == told

        # A restarted writer carries on the same chain.
        restarted = start_append_worker(database_url, name="after", tasks=2, count=50)
        _, err = await asyncio.to_thread(restarted.communicate, timeout=60)
        assert restarted.returncode == 0, err
        report = await verify_chain(conn)
    assert report.intact
