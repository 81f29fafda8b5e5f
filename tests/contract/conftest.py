"""A `credledger serve` process of its own for contract tests, which call it synchronously."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
import requests

from events.database import with_database
from tests.e2e.processes import free_port, start_service
from tests.factories import new_webhook_secret


def _run(coroutine: object) -> None:
    asyncio.run(coroutine)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def served(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a real service process on a fresh database; stopped after the module."""
    name = f"credledger_contract_{uuid.uuid4().hex[:10]}"

    async def admin(statement: str) -> None:
        conn = await asyncpg.connect(with_database(postgres_url, "postgres"))
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    _run(admin(f'CREATE DATABASE "{name}"'))
    port = free_port()
    workdir = tmp_path_factory.mktemp("contract")
    process = start_service(
        port,
        workdir / "service.log",
        database_url=with_database(postgres_url, name),
        data_dir=str(workdir),
        webhook_secrets=new_webhook_secret(),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        _run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _wait_healthy(base: str, process: subprocess.Popen[str]) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the service exited before it was ready (see its log file)"
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)  # polling interval while the process starts
    raise AssertionError("the service did not become ready")


@pytest.fixture(scope="module")
def openapi_document(served: str) -> dict[str, object]:
    document: dict[str, object] = requests.get(f"{served}/openapi.json", timeout=10).json()
    return document
