"""Faults under ingest load: the service killed, the database's backends killed, a sender's clock off."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pytest

from events.verify import verify_chain
from projections.rebuild import rebuild_credentials
from receiver.webhook_signatures import parse_secret, sign
from tests.e2e.processes import free_port, start_service, wait_until_healthy
from tests.factories import new_webhook_secret
from tests.faults.load import LoadReport, deliver_all, deliveries

pytestmark = pytest.mark.slow


async def stored_once(owner: asyncpg.Connection, report: LoadReport) -> None:
    """Every acknowledged event is stored exactly once, at the position it was acknowledged with."""
    rows = await owner.fetch(
        "SELECT event_id, position FROM events WHERE source = 'webhook' AND event_id = ANY($1)",
        list(report.acknowledged),
    )
    assert {r["event_id"]: r["position"] for r in rows} == report.acknowledged
    assert len(rows) == len(report.acknowledged)


async def test_sigkill_under_load_loses_no_acknowledged_event(
    database_url: str, owner: asyncpg.Connection, tmp_path: Path
) -> None:
    """Kill -9 mid-load, restart; senders retry with the same ids: each event stored once, chain intact."""
    secret = new_webhook_secret()
    port = free_port()
    settings = {"database_url": database_url, "webhook_secrets": secret, "data_dir": str(tmp_path)}
    service = start_service(port, tmp_path / "first.log", **settings)
    await wait_until_healthy(port, service)
    queue = deliveries(1500)
    report = LoadReport()
    some_acknowledged = asyncio.Event()
    load = asyncio.create_task(
        deliver_all(
            f"http://127.0.0.1:{port}",
            secret,
            queue,
            report=report,
            milestones={300: some_acknowledged},
        )
    )
    await asyncio.wait_for(some_acknowledged.wait(), 60)
    service.send_signal(signal.SIGKILL)
    await asyncio.to_thread(service.wait, 30)
    acknowledged_before_restart = dict(report.acknowledged)
    restarted = start_service(port, tmp_path / "second.log", **settings)
    try:
        await wait_until_healthy(port, restarted)
        await load
    finally:
        restarted.send_signal(signal.SIGTERM)
        await asyncio.to_thread(restarted.wait, 60)

    assert len(report.acknowledged) == len(queue)
    assert report.connection_errors > 0  # the kill was felt
    for msg_id, position in acknowledged_before_restart.items():
        assert report.acknowledged[msg_id] == position
    await stored_once(owner, report)
    assert await owner.fetchval("SELECT count(*) FROM events") == len(queue)
    assert (await verify_chain(owner)).intact
    assert (await rebuild_credentials(owner, check_only=True)).differences == []


async def test_killed_database_backends_give_503_then_recover_without_restart(
    database_url: str, postgres_url: str, owner: asyncpg.Connection, tmp_path: Path
) -> None:
    """pg_terminate_backend on the service's connections, thrice under load: 503s, no 500, nothing lost."""
    secret = new_webhook_secret()
    port = free_port()
    service = start_service(port, tmp_path / "service.log", database_url=database_url, webhook_secrets=secret)
    await wait_until_healthy(port, service)
    database = urlsplit(database_url).path.lstrip("/")
    queue = deliveries(1500)
    report = LoadReport()
    milestones = {count: asyncio.Event() for count in (300, 600, 900)}
    load = asyncio.create_task(
        deliver_all(f"http://127.0.0.1:{port}", secret, queue, report=report, milestones=milestones)
    )
    admin = await asyncpg.connect(postgres_url)
    spared = await owner.fetchval("SELECT pg_backend_pid()")  # this test's own connection
    try:
        for reached in milestones.values():
            await asyncio.wait_for(reached.wait(), 60)
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = $1 AND application_name = 'credledger' AND pid <> $2",
                database,
                spared,
            )
            assert killed > 0
        await load
    finally:
        await admin.close()
        service.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(service.wait, 60)

    assert code == 0
    assert 500 not in report.statuses
    assert report.statuses[503] > 0  # the lost connections were answered 503, and retried
    assert len(report.acknowledged) == len(queue)
    await stored_once(owner, report)
    assert (await verify_chain(owner)).intact


async def test_a_sender_clock_ten_minutes_off_is_refused_clearly(
    database_url: str, owner: asyncpg.Connection, tmp_path: Path
) -> None:
    """Timestamps 10 minutes behind or ahead: 401 naming the reason; nothing stored."""
    secret = new_webhook_secret()
    port = free_port()
    service = start_service(port, tmp_path / "service.log", database_url=database_url, webhook_secrets=secret)
    try:
        await wait_until_healthy(port, service)
        body = json.dumps(
            {"type": "user.disabled", "user_id": "alice", "occurred_at": datetime.now(UTC).isoformat()}
        )
        answers = []
        async with aiohttp.ClientSession() as http:
            for skew, reason in ((-600, "timestamp_too_old"), (600, "timestamp_too_new")):
                msg_id, stamp = f"msg_{uuid.uuid4().hex}", int(time.time()) + skew
                headers = {
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(stamp),
                    "webhook-signature": sign(parse_secret(secret), msg_id, stamp, body.encode()),
                }
                async with http.post(
                    f"http://127.0.0.1:{port}/api/v1/events", data=body, headers=headers
                ) as r:
                    answers.append((r.status, (await r.json())["error"], reason))
    finally:
        service.send_signal(signal.SIGTERM)
        await asyncio.to_thread(service.wait, 60)
    for status, error, reason in answers:
        assert status == 401
        assert reason in error
    assert await owner.fetchval("SELECT count(*) FROM events") == 0
