"""The service over HTTP, against a real database and the project's Nextcloud simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from events.crypto import MasterKeyRing
from receiver.app import create_app
from receiver.settings import Settings
from sync.nextcloud_simulator import NextcloudSimulator, running_simulator
from tests.factories import master_keys_setting, new_webhook_secret
from tests.secret_watch import leaks, watch


@dataclass
class Service:
    """A running credledger app, its simulated Nextcloud, and what a test needs to sign for it."""

    client: TestClient[web.Request, web.Application]
    nextcloud: NextcloudSimulator
    nextcloud_url: str
    webhook_secret: str
    settings: Settings


@pytest.fixture
async def nextcloud() -> AsyncIterator[tuple[str, NextcloudSimulator]]:
    """The simulator; every app password it creates is watched for leaks."""
    async with running_simulator() as (url, simulator):
        create = simulator.create_app_password

        def create_and_watch(user_id: str, **kwargs: Any) -> str:
            return watch(create(user_id, **kwargs))

        simulator.create_app_password = create_and_watch  # type: ignore[method-assign]
        yield url, simulator


def _recording(bodies: list[bytes]) -> aiohttp.TraceConfig:
    async def on_chunk(
        session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceResponseChunkReceivedParams
    ) -> None:
        bodies.append(params.chunk)

    trace = aiohttp.TraceConfig()
    trace.on_response_chunk_received.append(on_chunk)
    return trace


def service_settings(
    database_url: str, nextcloud_url: str, master_keys: MasterKeyRing, data_dir: Path, **overrides: str
) -> Settings:
    values = {
        "database_url": database_url,
        "nextcloud_url": nextcloud_url,
        "webhook_secrets": new_webhook_secret(),
        "master_keys": master_keys_setting(master_keys),
        "data_dir": str(data_dir),
        # Tests that want the scheduler turn it on; the others must not meet a sync they did not start.
        "sync_enabled": "false",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def service(
    database_url: str, nextcloud: tuple[str, NextcloudSimulator], master_keys: MasterKeyRing, tmp_path: Path
) -> AsyncIterator[Service]:
    """create_app(settings) served on a local port, as `credledger serve` would run it."""
    url, simulator = nextcloud
    settings = service_settings(database_url, url, master_keys, tmp_path)
    assert settings.webhook_secrets is not None
    watch(settings.webhook_secrets)
    bodies: list[bytes] = []
    async with TestClient(TestServer(create_app(settings)), trace_configs=[_recording(bodies)]) as client:
        yield Service(client, simulator, url, settings.webhook_secrets, settings)
        metrics = await (await client.get("/metrics")).text()
    assert leaks(b"".join(bodies).decode(errors="replace")) == []
    assert leaks(metrics) == []
