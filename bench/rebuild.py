"""Rebuild rate: replaying 1,000,000 events into the credential projection, in events/s.

Generation is not timed: events are appended through the real append path (chain and all) in
large batches without the inline hooks, so the live projection starts empty and the rebuild
has everything to do. Then `rebuild_credentials` runs as `credledger projections rebuild` does.

    make bench-rebuild                     # embedded PostgreSQL
    python -m bench.rebuild --events 200000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import uuid
from datetime import UTC, datetime

from bench.database import fresh_database, server, server_version
from events.append import append_batch, prepare
from events.database import connect_owner
from events.envelope import NewEvent
from events.event_types import (
    CredentialProvisioned,
    CredentialRevoked,
    DomainEvent,
    SealedSecret,
    UserDisabled,
    UserEnabled,
    to_new_event,
)
from projections.rebuild import rebuild_credentials
from receiver.progress import ProgressBar


def random_event(users: int, rng: random.Random) -> NewEvent:
    user = f"user{rng.randrange(users)}"
    roll = rng.random()
    event: DomainEvent
    if roll < 0.4:
        event = CredentialProvisioned(
            user,
            ("files",),
            "hmac-sha256:k1:" + "0" * 32,
            SealedSecret(f"dk_{uuid.uuid4().hex}", "bm9uY2U=", "Y2lwaGVydGV4dA=="),
        )
    elif roll < 0.6:
        event = CredentialRevoked(rng.choice(["user_request", "admin", "token_invalidated"]))
    elif roll < 0.8:
        event = UserDisabled()
    else:
        event = UserEnabled()
    return to_new_event(event, stream=user, source="bench", occurred_at=datetime.now(UTC))


async def generate(url: str, total: int, users: int) -> float:
    rng = random.Random(1)
    bar = ProgressBar(total, "generate")
    conn = await connect_owner(url)
    started = time.perf_counter()
    try:
        for done in range(0, total, 5000):
            batch = [prepare(random_event(users, rng)) for _ in range(min(5000, total - done))]
            await append_batch(conn, batch)
            bar.update(done + len(batch))
    finally:
        await conn.close()
        bar.close()
    return time.perf_counter() - started


async def main(total: int, users: int, workers: int) -> None:
    async with server() as url:
        print(f"PostgreSQL {await server_version(url)}: {total:,} events over {users:,} users")
        async with fresh_database(url) as db:
            took = await generate(db, total, users)
            print(f"generated in {took:.1f} s (not part of the figure)")
            conn = await connect_owner(db)
            try:
                runs = [("rebuild from an empty projection", False, workers)]
                runs += [
                    (f"rebuild --check, {n} worker{'s' if n > 1 else ''}", True, n)
                    for n in sorted({1, workers})
                ]
                runs += [(f"rebuild (swap), {workers} workers", False, workers)]
                for label, check, count in runs:
                    started = time.perf_counter()
                    report = await rebuild_credentials(conn, check_only=check, url=db, workers=count)
                    elapsed = time.perf_counter() - started
                    print(
                        f"{label:38s} {report.events:,} events, {report.users:,} users, "
                        f"{len(report.differences):,} differences in {elapsed:5.1f} s "
                        f"= {report.events / elapsed:9,.0f} events/s"
                    )
            finally:
                await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.users, args.workers))
