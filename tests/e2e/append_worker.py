"""A separate OS process appending through the group-commit writer, for concurrency and crash tests.

Prints `event_id position` for each append as soon as it returns, i.e. only after its commit, so
the parent knows exactly which appends were acknowledged when it kills this process.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from datetime import UTC, datetime

from events.database import create_pool
from events.envelope import NewEvent
from events.writer import GroupCommitWriter


async def run(url: str, tasks: int, count: int, streams: int, name: str) -> None:
    pool = await create_pool(url, min_size=1, max_size=4)
    writer = GroupCommitWriter(pool)
    await writer.start()

    async def one_task(task: int) -> None:
        for n in range(count):
            event_id = f"{name}-{task}-{n}-{uuid.uuid4().hex[:6]}"
            appended = await writer.append(
                NewEvent(
                    event_id=event_id,
                    source="append-worker",
                    stream=f"user{(task * count + n) % streams}",
                    type="user.disabled",
                    data={"worker": name, "task": task, "n": n},
                    occurred_at=datetime.now(UTC),
                )
            )
            sys.stdout.write(f"{event_id} {appended.position}\n")
            sys.stdout.flush()

    await asyncio.gather(*(one_task(t) for t in range(tasks)))
    await writer.close()
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--name", default="w")
    args = parser.parse_args()
    asyncio.run(run(args.url, args.tasks, args.count, args.streams, args.name))


if __name__ == "__main__":
    main()
