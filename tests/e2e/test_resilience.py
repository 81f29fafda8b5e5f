"""The database going away answers 503 with Retry-After and recovers; SIGTERM loses no acknowledged event."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from events.crypto import MasterKeyRing
from receiver.app import create_app
from receiver.webhook_signatures import parse_secret, sign
from tests.e2e.conftest import service_settings
from tests.e2e.processes import free_port, start_service, wait_until_healthy
from tests.factories import new_webhook_secret
from tests.tcp_proxy import proxied_database_url


def signed_request(secret: str, user: str = "alice") -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"type": "user.disabled", "user_id": user, "occurred_at": datetime.now(UTC).isoformat()}
    ).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time())
    return body, {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(parse_secret(secret), msg_id, timestamp, body),
    }


async def test_a_lost_database_is_503_with_retry_after_and_recovery_needs_no_restart(
    database_url: str, master_keys: MasterKeyRing, tmp_path: Path, owner: asyncpg.Connection
) -> None:
    """Cut the network to PostgreSQL: 503 + Retry-After, never 500; restore it: 201 again."""
    secret = new_webhook_secret()
    async with proxied_database_url(database_url) as (url, proxy):
        settings = service_settings(url, "http://127.0.0.1:9", master_keys, tmp_path, webhook_secrets=secret)
        async with TestClient(TestServer(create_app(settings))) as client:
            body, headers = signed_request(secret)
            assert (await client.post("/api/v1/events", data=body, headers=headers)).status == 201

            await proxy.cut()
            for _ in range(3):
                body, headers = signed_request(secret)
                response = await client.post("/api/v1/events", data=body, headers=headers)
                assert response.status == 503
                assert int(response.headers["Retry-After"]) >= 1
                assert (await response.json())["code"] == "database_unavailable"
            assert (await client.get("/readyz")).status == 503

            await proxy.restore()
            statuses = []
            for _ in range(5):  # a sender retrying: the first attempts may meet a dropped connection
                body, headers = signed_request(secret)
                statuses.append((await client.post("/api/v1/events", data=body, headers=headers)).status)
                if statuses[-1] == 201:
                    break
            assert statuses[-1] == 201
            assert set(statuses) <= {201, 503}
    acknowledged = 1 + statuses.count(201)
    assert await owner.fetchval("SELECT count(*) FROM events") == acknowledged


@pytest.mark.slow
async def test_sigterm_lets_in_flight_appends_commit_and_exits_0(database_url: str, tmp_path: Path) -> None:
    """Under load, SIGTERM: every 201 the clients saw is stored, and the process exits 0."""
    secret = new_webhook_secret()
    port = free_port()
    service = start_service(port, tmp_path / "service.log", database_url=database_url, webhook_secrets=secret)
    await wait_until_healthy(port, service)
    acknowledged: list[int] = []
    stop = asyncio.Event()
    enough = asyncio.Event()

    async def sender(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            body, headers = signed_request(secret, user=f"user{uuid.uuid4().hex[:6]}")
            try:
                async with session.post(
                    f"http://127.0.0.1:{port}/api/v1/events", data=body, headers=headers
                ) as r:
                    if r.status == 201:
                        acknowledged.append((await r.json())["position"])
                        if len(acknowledged) >= 200:
                            enough.set()
            except aiohttp.ClientError:
                return

    async with aiohttp.ClientSession() as session:
        senders = [asyncio.create_task(sender(session)) for _ in range(16)]
        await asyncio.wait_for(enough.wait(), 60)
        service.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(service.wait, 60)
        stop.set()
        await asyncio.gather(*senders)
    assert code == 0
    conn = await asyncpg.connect(database_url)
    try:
        stored = {r["position"] for r in await conn.fetch("SELECT position FROM events")}
    finally:
        await conn.close()
    assert set(acknowledged) <= stored
    assert len(acknowledged) >= 200
