"""Sync throughput against the simulator, and the cost of a tick that finds nobody due.

The simulator runs as a process of its own (python -m sync.nextcloud_simulator) with 10,000
users answering at once. Users synced per second is measured at concurrency 16 and 64, for a
first pass (root etag changed: PROPFIND, SEARCH, sink) and a second (unchanged: PROPFIND only),
beside the baseline of bare PROPFIND requests at the same concurrency (no database, no crypto).
Then the idle tick (nobody due) is timed at 10,000 and at 100,000 users.

    make bench-sync
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime

import aiohttp
import asyncpg

from bench import event_loop
from bench.database import fresh_database, server, server_version
from events.append import append_batch, prepare
from events.crypto import MasterKey, MasterKeyRing, generate_key
from events.database import connect_owner, create_pool
from events.event_types import CredentialProvisioned, SealedSecret, to_new_event
from events.writer import GroupCommitWriter
from projections.credential_store import project_credentials
from receiver.credentials import provision_credential
from sync.nextcloud_client import NextcloudClient, new_session
from sync.nextcloud_simulator.__main__ import derived_password
from sync.sink import DatabaseSink
from sync.throttle import InstanceThrottle
from sync.tick import run_tick
from sync.user_sync import SyncDependencies
from tests.e2e.processes import free_port

SEED = "credledger-bench"


async def start_simulator(users: int) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sync.nextcloud_simulator",
        "--port",
        str(port),
        "--users",
        str(users),
        "--seed",
        SEED,
    )
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            try:
                async with session.get(f"{url}/status.php"):
                    return process, url
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)  # waiting for the simulator process to listen
    raise RuntimeError("the simulator did not start")


async def provision_all(
    pool: asyncpg.Pool, writer: GroupCommitWriter, ring: MasterKeyRing, users: int
) -> None:
    slots = asyncio.Semaphore(64)

    async def one(n: int) -> None:
        async with slots:
            user = f"user{n}"
            await provision_credential(
                pool,
                writer,
                ring,
                user_id=user,
                login_name=user,
                scopes=[],
                app_password=derived_password(SEED, user),
                source="bench",
            )

    await asyncio.gather(*(one(n) for n in range(users)))


async def bare_propfinds(url: str, users: int, concurrency: int) -> float:
    """PROPFIND/s straight at the simulator: the ceiling the sync path is measured against."""
    client_session = new_session()
    async with client_session as session:
        client = NextcloudClient(session, url)
        slots = asyncio.Semaphore(concurrency)

        async def one(n: int) -> None:
            async with slots:
                user = f"user{n}"
                await client.root_etag(user, user, derived_password(SEED, user))

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(users)))
        return users / (time.perf_counter() - started)


async def sync_pass(deps: SyncDependencies, owner: asyncpg.Connection, users: int, concurrency: int) -> float:
    """Make everyone due, then tick until everyone has been synced once; users per second."""
    await owner.execute("UPDATE credential_state SET next_sync_at = now() - interval '1 second'")
    done = 0
    started = time.perf_counter()
    while done < users:
        report = await run_tick(deps, concurrency=concurrency, lease_seconds=300)
        done += sum(report.outcomes.values())
    return users / (time.perf_counter() - started)


async def idle_tick_ms(deps: SyncDependencies, owner: asyncpg.Connection) -> float:
    await owner.execute("UPDATE credential_state SET next_sync_at = now() + interval '1 hour'")
    await owner.execute("ANALYZE credential_state")
    timings = []
    for _ in range(30):
        started = time.perf_counter()
        report = await run_tick(deps, concurrency=64, lease_seconds=300)
        timings.append(time.perf_counter() - started)
        assert report.claimed == 0
    return statistics.median(timings) * 1000


async def add_idle_users(url: str, start: int, end: int) -> None:
    """More users, straight through the append path with the projection hook (no Nextcloud needed)."""
    conn = await connect_owner(url)
    try:
        for first in range(start, end, 5000):
            batch = [
                prepare(
                    to_new_event(
                        CredentialProvisioned(
                            f"user{n}",
                            (),
                            "hmac-sha256:k:00",
                            SealedSecret(f"dk_{uuid.uuid4().hex}", "bm9uY2U=", "Y3Q="),
                        ),
                        stream=f"user{n}",
                        source="bench",
                        occurred_at=datetime.now(UTC),
                    )
                )
                for n in range(first, min(first + 5000, end))
            ]
            await append_batch(conn, batch, [project_credentials])
    finally:
        await conn.close()


async def main(users: int, idle_users: int) -> None:
    simulator, nextcloud_url = await start_simulator(users)
    try:
        async with server() as url:
            print(
                f"PostgreSQL {await server_version(url)}; simulator with {users:,} users in its own process"
            )
            async with fresh_database(url) as db:
                await run(db, nextcloud_url, users, idle_users)
    finally:
        simulator.terminate()
        await simulator.wait()


async def run(db: str, nextcloud_url: str, users: int, idle_users: int) -> None:
    ring = MasterKeyRing((MasterKey("bench", generate_key()),))
    pool = await create_pool(db, min_size=4, max_size=90)
    writer = GroupCommitWriter(pool, hooks=[project_credentials])
    owner = await connect_owner(db)
    async with new_session() as session:
        await provision_all(pool, writer, ring, users)
        deps = SyncDependencies(
            pool=pool,
            writer=writer,
            master_keys=ring,
            client=NextcloudClient(session, nextcloud_url),
            sink=DatabaseSink(pool),
            interval_seconds=300,
            owner="bench",
            throttle=InstanceThrottle(),
        )
        for concurrency in (16, 64):
            baseline = await bare_propfinds(nextcloud_url, users, concurrency)
            await owner.execute("TRUNCATE sync_cursors, sync_items")
            changed = await sync_pass(deps, owner, users, concurrency)
            unchanged = await sync_pass(deps, owner, users, concurrency)
            print(
                f"concurrency {concurrency:3d}: bare PROPFIND {baseline:7,.0f}/s | synced users/s: "
                f"first pass (PROPFIND+SEARCH) {changed:6,.0f}, unchanged (PROPFIND) {unchanged:6,.0f} "
                f"= {unchanged / baseline:4.2f} of bare"
            )
        small = await idle_tick_ms(deps, owner)
        await add_idle_users(db, users, idle_users)
        large = await idle_tick_ms(deps, owner)
        count = await owner.fetchval("SELECT count(*) FROM credential_state")
        print(
            f"idle tick (nobody due): {small:5.2f} ms at {users:,} users, {large:5.2f} ms at {count:,} users"
        )
    await owner.close()
    await writer.close()
    await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--idle-users", type=int, default=100_000)
    args = parser.parse_args()
    event_loop.run(main(args.users, args.idle_users))
