"""Sync inside the running service: the revocation race, and two replicas sharing the work."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from events.crypto import MasterKeyRing
from projections.queries import get_state
from receiver.app import create_app
from receiver.app_keys import MASTER_KEYS, POOL, THROTTLE, WRITER
from receiver.metrics import METRICS
from sync.nextcloud_client import NextcloudClient, new_session
from sync.nextcloud_simulator import NextcloudSimulator
from sync.sink import DatabaseSink
from sync.user_sync import Outcome, SyncDependencies, sync_user
from tests.e2e.conftest import Service, service_settings
from tests.e2e.test_astrolabe_api import basic

PATH = "/api/v1/users/{uid}/app-password"


async def test_no_request_starts_after_the_revocation_is_answered(service: Service) -> None:
    """A sync's request is held at Nextcloud; the user revokes: it may finish, but no new one starts."""
    simulator = service.nextcloud
    simulator.add_user("alice")
    password = simulator.create_app_password("alice")
    simulator.put_file("alice", "notes.md", size=1)
    assert (
        await service.client.post(PATH.format(uid="alice"), headers=basic("alice", password))
    ).status == 200
    app = service.client.app
    async with app[POOL].acquire() as conn:
        await conn.execute(
            "UPDATE credential_state SET lease_owner = 'race', lease_until = now() + interval '1 minute'"
        )
        record = await get_state(conn, "alice")
    assert record is not None

    async with new_session() as session:
        deps = SyncDependencies(
            pool=app[POOL],
            writer=app[WRITER],
            master_keys=app[MASTER_KEYS],
            client=NextcloudClient(session, service.nextcloud_url),
            sink=DatabaseSink(app[POOL]),
            interval_seconds=60,
            owner="race",
            throttle=app[THROTTLE],
        )
        simulator.hold("alice")
        syncing = asyncio.create_task(sync_user(deps, record))
        await simulator.wait_until_held("alice")
        revoked = await service.client.delete(PATH.format(uid="alice"), headers=basic("alice", password))
        answered_at = time.monotonic()
        assert revoked.status == 200
        simulator.release("alice")
        outcome = await syncing

    assert outcome == Outcome.WITHDRAWN
    later = [a for a in simulator.arrivals if a.user_id == "alice" and a.at > answered_at]
    assert later == []
    assert simulator.requests_by_user[("alice", "search")] == 0


@pytest.mark.slow
async def test_two_replicas_sync_each_user_once_per_interval_never_together(
    database_url: str, nextcloud: tuple[str, NextcloudSimulator], master_keys: MasterKeyRing, tmp_path: Path
) -> None:
    """Two service instances, one database, one Nextcloud, 30 one-second intervals."""
    url, simulator = nextcloud
    users = [f"user{n}" for n in range(6)]
    passwords = {}
    for user in users:
        simulator.add_user(user)
        passwords[user] = simulator.create_app_password(user)
        simulator.put_file(user, "a.txt", size=1)
    settings = service_settings(
        database_url, url, master_keys, tmp_path, sync_interval_seconds="1", sync_enabled="true"
    )
    async with (
        TestClient(TestServer(create_app(settings))) as first,
        TestClient(TestServer(create_app(settings))) as second,
    ):
        for n, user in enumerate(users):
            client = first if n % 2 else second
            response = await client.post(PATH.format(uid=user), headers=basic(user, passwords[user]))
            assert response.status == 200
        await asyncio.sleep(30)  # the observation window: thirty sync intervals of the service
        runs = [
            client.app[METRICS].sync_runs.value(outcome=o)
            for client in (first, second)
            for o in ("changed", "unchanged")
        ]

    for user in users:
        syncs = simulator.requests_by_user[(user, "propfind")]
        assert 25 <= syncs <= 33, (user, syncs)
        assert simulator.max_concurrent_requests(user) == 1
    assert sum(runs[:2]) > 0
    assert sum(runs[2:]) > 0
