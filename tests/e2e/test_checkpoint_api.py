"""The checkpoint routes over HTTP: the latest one behind an auditor token, the public key for anyone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from events.checkpoint_store import take_checkpoint
from events.checkpoints import Checkpoint, SigningKey, parse_public_key, verify_checkpoint_signature
from events.envelope import SYSTEM_STREAM
from events.event_types import to_new_event
from events.writer import GroupCommitWriter
from receiver.app_keys import POOL, WRITER
from receiver.bearer_tokens import issue_token
from receiver.key_material import SIGNING_KEY
from receiver.middleware import request_context
from receiver.routes import checkpoints
from receiver.routes.checkpoints import CHECKPOINT_PATH, PUBLIC_KEY_PATH, CheckpointOut, PublicKeyOut
from tests.factories import new_event
from tests.secret_watch import leaks, watch

Client = TestClient[web.Request, web.Application]


@dataclass
class Api:
    """The checkpoint routes served over HTTP, the key behind them, and a header of each role."""

    client: Client
    key: SigningKey
    auditor: dict[str, str]
    admin: dict[str, str]


async def bearer(writer: GroupCommitWriter, role: str) -> dict[str, str]:
    token, created = issue_token(role, f"{role} for tests")
    watch(token)
    await writer.append(to_new_event(created, stream=SYSTEM_STREAM, source="test"))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api(pool: asyncpg.Pool, writer: GroupCommitWriter) -> AsyncIterator[Api]:
    """The routes with the service's middleware and a signing key, over the test's database."""
    key = SigningKey.generate()
    watch(key.private_base64())
    app = web.Application(middlewares=[request_context])
    app[POOL] = pool
    app[WRITER] = writer
    app[SIGNING_KEY] = key
    checkpoints.setup(app)
    auditor, admin = await bearer(writer, "auditor"), await bearer(writer, "admin")
    async with TestClient(TestServer(app)) as client:
        yield Api(client, key, auditor, admin)


async def test_the_public_key_is_served_without_a_token(api: Api) -> None:
    """Its id, the algorithm and the raw key in base64, and never the private half."""
    response = await api.client.get(PUBLIC_KEY_PATH)
    assert response.status == 200
    text = await response.text()
    served = PublicKeyOut.model_validate_json(text)
    assert (served.key_id, served.algorithm) == (api.key.key_id, "ed25519")
    assert parse_public_key(served.public_key) == api.key.public_key
    assert leaks(text) == []


async def test_the_checkpoint_needs_a_token(api: Api) -> None:
    """No token: 401 with a bearer challenge."""
    response = await api.client.get(CHECKPOINT_PATH)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_an_admin_token_cannot_read_the_checkpoint(api: Api) -> None:
    """Roles do not nest: the checkpoint is for auditors."""
    response = await api.client.get(CHECKPOINT_PATH, headers=api.admin)
    assert response.status == 403


async def test_before_any_checkpoint_the_answer_is_404_json(api: Api) -> None:
    """Nothing signed yet: a JSON error saying so."""
    response = await api.client.get(CHECKPOINT_PATH, headers=api.auditor)
    assert response.status == 404
    body = await response.json()
    assert (body["success"], body["code"]) == (False, "no_checkpoint")


async def test_the_latest_checkpoint_verifies_against_the_served_key(
    api: Api, pool: asyncpg.Pool, writer: GroupCommitWriter
) -> None:
    """The served document reads back as a checkpoint of the latest head, signed by the served key."""
    for count in (3, 2):
        for _ in range(count):
            await writer.append(new_event())
        async with pool.acquire() as conn:
            latest = (await take_checkpoint(conn, api.key)).checkpoint
    response = await api.client.get(CHECKPOINT_PATH, headers=api.auditor)
    assert response.status == 200
    body = await response.json()
    CheckpointOut.model_validate(body)
    served = Checkpoint.from_document(body)
    assert served == latest
    key = PublicKeyOut.model_validate(await (await api.client.get(PUBLIC_KEY_PATH)).json())
    verify_checkpoint_signature(served, parse_public_key(key.public_key))
