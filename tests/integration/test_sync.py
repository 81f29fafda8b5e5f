"""Syncing users against the simulator: only what changed, one 401, one pause, recovery recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from events.crypto import MasterKeyRing
from events.writer import GroupCommitWriter
from projections.queries import CredentialRecord, get_state
from receiver.credentials import provision_credential
from sync.nextcloud_client import NextcloudClient, new_session
from sync.nextcloud_simulator import NextcloudSimulator, running_simulator
from sync.sink import DatabaseSink
from sync.throttle import InstanceThrottle
from sync.tick import run_tick
from sync.user_sync import Outcome, SyncDependencies, sync_user
from tests.secret_watch import watch


class FakeClock:
    """Time for the in-process throttle, moved by the test instead of waited for."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    deps: SyncDependencies
    nextcloud: NextcloudSimulator
    clock: FakeClock
    passwords: dict[str, str]


@pytest.fixture
async def world(
    pool: asyncpg.Pool, writer: GroupCommitWriter, master_keys: MasterKeyRing
) -> AsyncIterator[World]:
    """Two provisioned users (alice, bob) with a file each, and sync's dependencies."""
    clock = FakeClock()
    async with running_simulator() as (url, simulator), new_session() as session:
        passwords = {}
        for user in ("alice", "bob"):
            simulator.add_user(user)
            passwords[user] = watch(simulator.create_app_password(user))
            simulator.put_file(user, "/notes.md", size=10)
            await provision_credential(
                pool,
                writer,
                master_keys,
                user_id=user,
                login_name=user,
                scopes=[],
                app_password=passwords[user],
                source="test",
            )
        deps = SyncDependencies(
            pool=pool,
            writer=writer,
            master_keys=master_keys,
            client=NextcloudClient(session, url),
            sink=DatabaseSink(pool),
            interval_seconds=60,
            owner="test-replica",
            throttle=InstanceThrottle(clock),
        )
        yield World(deps, simulator, clock, passwords)


async def claim(world: World, user: str) -> CredentialRecord:
    """Lease one user as a tick would, whether or not it is due."""
    async with world.deps.pool.acquire() as conn:
        await conn.execute(
            "UPDATE credential_state SET lease_owner = $2, lease_until = now() + interval '1 minute'"
            " WHERE user_id = $1",
            user,
            world.deps.owner,
        )
        record = await get_state(conn, user)
    assert record is not None
    return record


async def events_of(pool: asyncpg.Pool, type: str) -> list[str]:
    async with pool.acquire() as conn:
        return [
            r["stream"]
            for r in await conn.fetch("SELECT stream FROM events WHERE type = $1 ORDER BY position", type)
        ]


async def test_a_first_sync_fetches_the_files_into_the_sink(world: World, pool: asyncpg.Pool) -> None:
    """Changed root etag: PROPFIND then SEARCH, and the file lands in sync_items."""
    assert await sync_user(world.deps, await claim(world, "alice")) == Outcome.CHANGED
    async with pool.acquire() as conn:
        items = await conn.fetch("SELECT path, size FROM sync_items WHERE user_id = 'alice'")
    assert [(r["path"], r["size"]) for r in items] == [("notes.md", 10)]


async def test_an_unchanged_root_etag_costs_one_propfind_and_no_search(world: World) -> None:
    """The second sync with nothing changed asks only for the root etag."""
    await sync_user(world.deps, await claim(world, "alice"))
    searches = world.nextcloud.requests_by_user[("alice", "search")]
    propfinds = world.nextcloud.requests_by_user[("alice", "propfind")]
    assert await sync_user(world.deps, await claim(world, "alice")) == Outcome.UNCHANGED
    assert world.nextcloud.requests_by_user[("alice", "propfind")] == propfinds + 1
    assert world.nextcloud.requests_by_user[("alice", "search")] == searches


async def test_only_files_changed_since_the_watermark_are_fetched(world: World, pool: asyncpg.Pool) -> None:
    """After a change, the sink receives the changed file only."""
    await sync_user(world.deps, await claim(world, "alice"))
    world.nextcloud.put_file("alice", "/later.md", size=3, modified=datetime.now(UTC) + timedelta(seconds=5))
    received: list[str] = []

    class RecordingSink:
        async def accept(self, user_id: str, files: object) -> None:
            received.extend(f.path for f in files)  # type: ignore[attr-defined]

    deps = replace(world.deps, sink=RecordingSink())
    assert await sync_user(deps, await claim(world, "alice")) == Outcome.CHANGED
    assert received == ["later.md"]


async def test_a_success_moves_the_next_sync_one_interval_ahead(world: World, pool: asyncpg.Pool) -> None:
    """next_sync_at is now + interval, give or take 10%; the lease is released."""
    before = datetime.now(UTC)
    await sync_user(world.deps, await claim(world, "alice"))
    async with pool.acquire() as conn:
        record = await get_state(conn, "alice")
    assert record is not None
    assert record.sync.next_sync_at is not None
    delay = (record.sync.next_sync_at - before).total_seconds()
    assert 54 <= delay <= 67
    assert (record.sync.last_sync_status, record.sync.lease_owner) == ("ok", None)


async def test_a_rejected_password_is_used_once_and_never_again(world: World, pool: asyncpg.Pool) -> None:
    """One 401: credential.invalidated, key shredded, and no further request with that password."""
    world.nextcloud.revoke_app_password(world.passwords["alice"])
    assert await sync_user(world.deps, await claim(world, "alice")) == Outcome.INVALIDATED
    assert world.nextcloud.request_count("alice", world.passwords["alice"]) == 1
    assert await events_of(pool, "credential.invalidated") == ["alice"]
    async with pool.acquire() as conn:
        await conn.execute("UPDATE credential_state SET next_sync_at = now() - interval '1 hour'")
    for _ in range(3):
        await run_tick(world.deps, concurrency=4, lease_seconds=60)
    assert world.nextcloud.request_count("alice", world.passwords["alice"]) == 1
    async with pool.acquire() as conn:
        record = await get_state(conn, "alice")
        assert await conn.fetchval("SELECT count(*) FROM user_keys WHERE user_id = 'alice'") == 0
    assert record is not None
    assert record.state.status == "invalid"


async def test_transient_failures_back_off_and_recovery_is_recorded_once(
    world: World, pool: asyncpg.Pool
) -> None:
    """503 twice: one sync.failed, growing backoff; then success: one sync.recovered."""
    world.nextcloud.fail_with(503)
    waits = []
    for _ in range(2):
        started = datetime.now(UTC)
        assert await sync_user(world.deps, await claim(world, "alice")) == Outcome.FAILED
        async with pool.acquire() as conn:
            record = await get_state(conn, "alice")
        assert record is not None
        assert record.sync.next_sync_at is not None
        waits.append((record.sync.next_sync_at - started).total_seconds())
    assert waits[1] > waits[0] > 0
    assert record is not None
    assert record.sync.consecutive_failures == 2
    world.nextcloud.healthy()
    assert await sync_user(world.deps, await claim(world, "alice")) == Outcome.CHANGED
    assert await events_of(pool, "sync.failed") == ["alice"]
    assert await events_of(pool, "sync.recovered") == ["alice"]


async def test_a_429_pauses_every_user_once_and_sync_resumes_afterwards(
    world: World, pool: asyncpg.Pool
) -> None:
    """One 429: one sync.failed in the system stream, no user blamed, no calls until Retry-After."""
    world.nextcloud.throttle(retry_after=30)
    assert await sync_user(world.deps, await claim(world, "alice")) == Outcome.THROTTLED
    world.nextcloud.stop_throttling()
    calls = sum(world.nextcloud.requests_by_kind.values())
    report = await run_tick(world.deps, concurrency=4, lease_seconds=60)
    assert report.claimed == 0
    assert report.paused_for > 0
    assert sum(world.nextcloud.requests_by_kind.values()) == calls
    assert await events_of(pool, "sync.failed") == ["system"]
    async with pool.acquire() as conn:
        record = await get_state(conn, "alice")
        assert record is not None
        assert record.sync.consecutive_failures == 0
        # Thirty seconds pass: for the shared pause in PostgreSQL and for this replica's clock.
        await conn.execute("UPDATE nextcloud_pause SET paused_until = now() - interval '1 second'")
    world.clock.now += 31
    report = await run_tick(world.deps, concurrency=4, lease_seconds=60)
    assert report.outcomes[Outcome.CHANGED] == 2


async def test_a_revoked_credential_makes_no_call(
    world: World, writer: GroupCommitWriter, pool: asyncpg.Pool
) -> None:
    """A revocation that committed before the sync's check: no request for that user at all."""
    from receiver.credentials import revoke_credential

    record = await claim(world, "alice")
    await revoke_credential(writer, user_id="alice", reason="user_request", source="test")
    assert await sync_user(world.deps, record) == Outcome.WITHDRAWN
    assert world.nextcloud.request_count("alice", world.passwords["alice"]) == 0
