"""Two `credledger serve` processes on one database: one chain, one projection, sync shared, never doubled."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from events.crypto import MasterKeyRing
from events.verify import verify_chain
from projections.rebuild import rebuild_credentials
from receiver.webhook_signatures import parse_secret, sign
from sync.nextcloud_simulator import NextcloudSimulator
from tests.e2e.processes import free_port, start_service, wait_until_healthy
from tests.factories import master_keys_setting, new_webhook_secret

pytestmark = pytest.mark.slow

USERS = [f"user{n}" for n in range(8)]
INTERVALS = 12


def basic(login: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


def signed_event(secret: str, user: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"type": "user.enabled", "user_id": user, "occurred_at": datetime.now(UTC).isoformat()})
    msg_id, stamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    return body.encode(), {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(parse_secret(secret), msg_id, stamp, body.encode()),
    }


async def test_two_replicas_share_one_chain_one_projection_and_the_sync_work(
    database_url: str,
    nextcloud: tuple[str, NextcloudSimulator],
    master_keys: MasterKeyRing,
    owner: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    """Half the provisionings and events to each replica; then twelve one-second sync intervals."""
    url, simulator = nextcloud
    passwords = {}
    for user in USERS:
        simulator.add_user(user)
        passwords[user] = simulator.create_app_password(user)
        simulator.put_file(user, "a.txt", size=1)
    secret = new_webhook_secret()
    settings = {
        "database_url": database_url,
        "nextcloud_url": url,
        "webhook_secrets": secret,
        "master_keys": master_keys_setting(master_keys),
        "sync_interval_seconds": "1",
        "data_dir": str(tmp_path),
    }
    ports = [free_port(), free_port()]
    replicas = [start_service(port, tmp_path / f"replica{n}.log", **settings) for n, port in enumerate(ports)]
    try:
        for port, process in zip(ports, replicas, strict=True):
            await wait_until_healthy(port, process)
        async with aiohttp.ClientSession() as http:
            for n, user in enumerate(USERS):
                base = f"http://127.0.0.1:{ports[n % 2]}"
                async with http.post(
                    f"{base}/api/v1/users/{user}/app-password", headers=basic(user, passwords[user])
                ) as r:
                    assert r.status == 200
            for n in range(40):
                base = f"http://127.0.0.1:{ports[n % 2]}"
                body, headers = signed_event(secret, USERS[n % len(USERS)])
                async with http.post(f"{base}/api/v1/events", data=body, headers=headers) as r:
                    assert r.status == 201
            started = simulator.requests_by_kind["propfind"]
            await asyncio.sleep(INTERVALS)  # the observation window: twelve sync intervals of both replicas
            synced = simulator.requests_by_kind["propfind"] - started
            runs = []
            for port in ports:
                async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                    text = await r.text()
                runs.append(
                    sum(
                        float(line.split()[-1])
                        for line in text.splitlines()
                        if line.startswith("credledger_sync_runs_total{")
                    )
                )
    finally:
        for process in replicas:
            process.send_signal(signal.SIGTERM)
        codes = [await asyncio.to_thread(process.wait, 60) for process in replicas]
    assert codes == [0, 0]

    positions = [r["position"] for r in await owner.fetch("SELECT position FROM events ORDER BY position")]
    assert positions == list(range(1, len(positions) + 1))
    assert (await verify_chain(owner)).intact
    assert (await rebuild_credentials(owner, check_only=True)).differences == []
    for user in USERS:
        assert simulator.max_concurrent_requests(user) == 1
    # Each user about once per interval (±10% jitter), never twice in one: no replica doubled up.
    assert len(USERS) * (INTERVALS - 3) <= synced <= len(USERS) * (INTERVALS + 1)
    assert all(count > 0 for count in runs)
