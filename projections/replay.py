"""Replaying the log into credential states: in this process, or split by user across processes.

A user's state depends only on that user's events, so the log can be folded in partitions (by a
hash of the user id) in parallel. Every partition reads under the same exported snapshot
(`pg_export_snapshot`, the mechanism behind `pg_dump --jobs`), so together they see exactly the
log the caller's transaction sees, however much is appended meanwhile.
"""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing
import multiprocessing.sharedctypes
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import asyncpg

from events.database import Connection
from events.envelope import SYSTEM_STREAM
from projections.credential_state import CredentialState, apply

States = dict[str, CredentialState | None]

_CHUNK = 10_000

# PostgreSQL's jsonb text has no surrounding white space, so raw_decode can skip the checks
# json.loads makes for it (a quarter of the decoding time here).
_decode = json.JSONDecoder().raw_decode

_REPLAY = """
SELECT position, stream, type, schema_version, data::text, recorded_at
FROM events
WHERE position > $1 AND stream <> $2 AND (hashtext(stream) & 2147483647) % $3 = $4
ORDER BY position
"""


class ReplayedEvent:
    """The columns of an event that the projection reads, with `data` decoded only if asked for.

    Most events (user.disabled, sync.*) only move a user's last_position, so the replay skips
    the JSON decoding of their data, and the rest of the envelope is not even selected.
    """

    __slots__ = ("_data", "_data_text", "position", "recorded_at", "schema_version", "stream", "type")

    def __init__(self, row: asyncpg.Record) -> None:
        self.position: int = row[0]
        self.stream: str = row[1]
        self.type: str = row[2]
        self.schema_version: int = row[3]
        self._data_text: str = row[4]
        self.recorded_at: datetime = row[5]
        self._data: Mapping[str, Any] | None = None

    @property
    def data(self) -> Mapping[str, Any]:
        if self._data is None:
            self._data = _decode(self._data_text)[0]
        return self._data


async def replay_partition(
    conn: Connection,
    states: States,
    *,
    after: int = 0,
    partitions: int = 1,
    index: int = 0,
    progress: Callable[[int], None] | None = None,
    touched: set[str] | None = None,
) -> int:
    """Fold one partition's user events after `after` into `states`; returns how many.

    The users whose events were folded are added to `touched`, when given.

    Must run inside a transaction (the cursor lives in it). The next chunk is requested before
    the current one is folded, so the server reads while this process folds.
    """
    count = 0
    cursor = await conn.cursor(_REPLAY, after, SYSTEM_STREAM, partitions, index)
    pending = asyncio.ensure_future(cursor.fetch(_CHUNK))
    with _cyclic_gc_paused():
        while rows := await pending:
            pending = asyncio.ensure_future(cursor.fetch(_CHUNK))
            await asyncio.sleep(0)  # let the request for the next chunk go out before folding
            for row in rows:
                event = ReplayedEvent(row)
                states[event.stream] = apply(states.get(event.stream), event)
            if touched is not None:
                touched.update(row[1] for row in rows)
            count += len(rows)
            if progress is not None:
                progress(len(rows))
    return count


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """The fold makes millions of short-lived, acyclic objects while the states dict grows;
    the cyclic collector's repeated scans of that dict took a third of the replay's time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_counter: Any = None


def _init_worker(counter: Any) -> None:
    global _counter
    _counter = counter


def _count(done: int) -> None:
    with _counter.get_lock():
        _counter.value += done


def _replay_in_worker(url: str, snapshot: str, partitions: int, index: int) -> tuple[States, int]:
    async def run() -> tuple[States, int]:
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                await conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                states: States = {}
                count = await replay_partition(
                    conn, states, partitions=partitions, index=index, progress=_count
                )
                return states, count
        finally:
            await conn.close()

    return asyncio.run(run())


async def replay_in_parallel(
    conn: Connection,
    url: str,
    workers: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[States, int]:
    """Fold the whole log with `workers` processes, under `conn`'s transaction snapshot.

    `conn` must be inside a REPEATABLE READ transaction; it exports its snapshot to the workers.
    """
    snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 0)
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(counter,)
    ) as pool:
        futures = [
            loop.run_in_executor(pool, _replay_in_worker, url, snapshot, workers, index)
            for index in range(workers)
        ]
        while not all(f.done() for f in futures):
            await asyncio.wait(futures, timeout=0.2)
            if progress is not None:
                progress(counter.value)
        results = [f.result() for f in futures]
    states: States = {}
    for partial, _ in results:
        states.update(partial)
    return states, sum(count for _, count in results)
