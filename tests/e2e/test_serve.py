"""`credledger serve` on a machine with nothing configured: embedded PostgreSQL, then a clean stop."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.processes import free_port, start_service, wait_until_healthy

pytestmark = pytest.mark.slow


async def test_serve_runs_on_the_embedded_database_and_stops_on_sigterm(tmp_path: Path) -> None:
    """No DATABASE_URL: it starts PostgreSQL under DATA_DIR, is ready, and SIGTERM stops both."""
    port = free_port()
    data_dir = tmp_path / "var"
    service = start_service(port, tmp_path / "service.log", data_dir=str(data_dir))
    try:
        await wait_until_healthy(port, service)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/readyz") as response,
        ):
            assert response.status == 200
            assert await response.json() == {"status": "ready"}
        assert (data_dir / "postgres" / "postmaster.pid").exists()
    finally:
        service.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(service.wait, 60)
    assert code == 0
    assert not (data_dir / "postgres" / "postmaster.pid").exists()


async def test_two_workers_share_the_port_and_the_chain(tmp_path: Path) -> None:
    """`serve --workers 2`: it and one sibling answer on one port, append to one chain; SIGTERM stops all."""
    import psutil

    from tests.factories import new_webhook_secret
    from tests.faults.load import deliver_all, deliveries

    port, secret = free_port(), new_webhook_secret()
    data_dir = tmp_path / "var"
    service = start_service(
        port, tmp_path / "service.log", "--workers", "2", data_dir=str(data_dir), webhook_secrets=secret
    )
    try:
        await wait_until_healthy(port, service)
        workers = psutil.Process(service.pid).children()
        assert len(workers) == 1  # this process serves too: no idle supervisor
        report = await deliver_all(f"http://127.0.0.1:{port}", secret, deliveries(200), concurrency=8)
        assert sorted(report.acknowledged.values()) == list(range(1, 201))
    finally:
        service.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(service.wait, 60)
    assert code == 0
    assert not any(w.is_running() for w in workers)
    assert not (data_dir / "postgres" / "postmaster.pid").exists()


async def test_a_worker_that_dies_stops_the_service_with_a_failure(tmp_path: Path) -> None:
    """Half a deployment is not left answering: a killed sibling makes `serve` exit 1, database stopped."""
    import psutil

    port = free_port()
    data_dir = tmp_path / "var"
    service = start_service(port, tmp_path / "service.log", "--workers", "2", data_dir=str(data_dir))
    try:
        await wait_until_healthy(port, service)
        (sibling,) = psutil.Process(service.pid).children()
        sibling.send_signal(signal.SIGKILL)
        code = await asyncio.to_thread(service.wait, 60)
    finally:
        if service.poll() is None:
            service.kill()
    assert code == 1
    assert not (data_dir / "postgres" / "postmaster.pid").exists()


async def test_an_appended_event_is_logged_on_its_requests_one_line(tmp_path: Path) -> None:
    """One JSON line per webhook request, carrying the event's type and position and the delivery id."""
    import json

    from tests.factories import new_webhook_secret
    from tests.faults.load import deliver_all, deliveries

    port, secret, log = free_port(), new_webhook_secret(), tmp_path / "service.log"
    service = start_service(port, log, data_dir=str(tmp_path / "var"), webhook_secrets=secret)
    try:
        await wait_until_healthy(port, service)
        queue = deliveries(3)
        report = await deliver_all(f"http://127.0.0.1:{port}", secret, queue, concurrency=1)
    finally:
        service.send_signal(signal.SIGTERM)
        await asyncio.to_thread(service.wait, 60)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    for delivery in queue:
        mine = [line for line in lines if line.get("delivery_id") == delivery.msg_id]
        assert len(mine) == 1
        (line,) = mine
        assert (line["event"], line["route"], line["status"]) == ("request", "/api/v1/events", 201)
        assert line["position"] == report.acknowledged[delivery.msg_id]
        assert line["event_type"] == json.loads(delivery.body)["type"]
