"""POST /api/v1/events: signed, validated per type, stored once per webhook-id."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from events.crypto import MasterKeyRing
from receiver.app import create_app
from receiver.webhook_signatures import parse_secret, sign
from tests.e2e.conftest import Service, service_settings
from tests.factories import new_webhook_secret

PATH = "/api/v1/events"


def signed(
    secret: str, body: bytes, *, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(parse_secret(secret), msg_id, timestamp, body),
        "Content-Type": "application/json",
    }


def event(type: str = "user.disabled", user_id: str = "alice", **data: Any) -> bytes:
    body: dict[str, Any] = {"type": type, "user_id": user_id, "occurred_at": datetime.now(UTC).isoformat()}
    if data:
        body["data"] = data
    return json.dumps(body).encode()


async def count(owner: asyncpg.Connection) -> int:
    return int(await owner.fetchval("SELECT count(*) FROM events"))


async def test_a_signed_event_is_stored_with_its_position(
    service: Service, owner: asyncpg.Connection
) -> None:
    """201, the position, and the webhook-id as the event id."""
    body = event()
    headers = signed(service.webhook_secret, body)
    response = await service.client.post(PATH, data=body, headers=headers)
    assert response.status == 201
    answer = await response.json()
    assert answer == {"success": True, "position": 1, "event_id": headers["webhook-id"], "duplicate": False}
    row = await owner.fetchrow("SELECT source, event_id, stream, type FROM events WHERE position = 1")
    assert row is not None
    assert tuple(row) == ("webhook", headers["webhook-id"], "alice", "user.disabled")


async def test_a_redelivery_is_answered_with_the_original_position(
    service: Service, owner: asyncpg.Connection
) -> None:
    """Same id, same body, fresh timestamp and signature: 200, same position, one row."""
    body = event()
    msg_id = f"msg_{uuid.uuid4().hex}"
    first = await service.client.post(
        PATH, data=body, headers=signed(service.webhook_secret, body, msg_id=msg_id)
    )
    again = await service.client.post(
        PATH,
        data=body,
        headers=signed(service.webhook_secret, body, msg_id=msg_id, timestamp=int(time.time()) + 1),
    )
    assert (first.status, again.status) == (201, 200)
    assert (await again.json())["position"] == (await first.json())["position"]
    assert (await again.json())["duplicate"] is True
    assert await count(owner) == 1


async def test_the_same_id_with_another_body_is_409(service: Service, owner: asyncpg.Connection) -> None:
    """Reusing a webhook-id for other content is refused."""
    msg_id = f"msg_{uuid.uuid4().hex}"
    first, second = event(user_id="alice"), event(user_id="bob")
    await service.client.post(PATH, data=first, headers=signed(service.webhook_secret, first, msg_id=msg_id))
    response = await service.client.post(
        PATH, data=second, headers=signed(service.webhook_secret, second, msg_id=msg_id)
    )
    assert response.status == 409
    assert (await response.json())["code"] == "idempotency_conflict"
    assert await count(owner) == 1


async def test_user_deleted_revokes_and_shreds(service: Service, owner: asyncpg.Connection) -> None:
    """A signed user.deleted ends the user's credential and destroys its key."""
    service.nextcloud.add_user("alice")
    password = service.nextcloud.create_app_password("alice")
    from tests.e2e.test_astrolabe_api import basic

    await service.client.post("/api/v1/users/alice/app-password", headers=basic("alice", password))
    body = event("user.deleted")
    response = await service.client.post(PATH, data=body, headers=signed(service.webhook_secret, body))
    assert response.status == 201
    assert await owner.fetchval("SELECT status FROM credential_state WHERE user_id = 'alice'") == "deleted"
    assert await owner.fetchval("SELECT count(*) FROM user_keys") == 0


async def test_admin_revocation_with_a_reason(service: Service, owner: asyncpg.Connection) -> None:
    """credential.revoked carries its reason into the log."""
    body = event("credential.revoked", reason="token_invalidated")
    response = await service.client.post(PATH, data=body, headers=signed(service.webhook_secret, body))
    assert response.status == 201
    assert await owner.fetchval("SELECT data->>'reason' FROM events") == "token_invalidated"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda h: {k: v for k, v in h.items() if k != "webhook-signature"},
        lambda h: {**h, "webhook-signature": "v1,AAAA"},
        lambda h: {**h, "webhook-signature": "no-comma-here"},
        lambda h: {**h, "webhook-signature": "v1,!!!"},
        lambda h: {**h, "webhook-timestamp": str(int(time.time()) - 600)},
        lambda h: {**h, "webhook-timestamp": str(int(time.time()) + 600)},
        lambda h: {**h, "webhook-timestamp": "yesterday"},
        lambda h: {**h, "webhook-id": ""},
    ],
    ids=["missing", "wrong", "no-comma", "bad-base64", "too-old", "too-new", "bad-timestamp", "empty-id"],
)
async def test_bad_signatures_are_401_and_append_nothing(
    service: Service, owner: asyncpg.Connection, mangle: Any
) -> None:
    """Every malformed or wrong signature header is a 401, never a 500."""
    body = event()
    response = await service.client.post(
        PATH, data=body, headers=mangle(signed(service.webhook_secret, body))
    )
    assert response.status == 401
    assert (await response.json())["code"] == "invalid_signature"
    assert await count(owner) == 0


async def test_a_signature_over_other_bytes_is_401(service: Service, owner: asyncpg.Connection) -> None:
    """The raw body is what is signed: re-serialised JSON does not verify."""
    body = event()
    headers = signed(service.webhook_secret, body)
    response = await service.client.post(PATH, data=body.replace(b'": "', b'":"'), headers=headers)
    assert response.status == 401


async def test_a_body_over_64_kib_is_413(service: Service, owner: asyncpg.Connection) -> None:
    """Refused before it is read, as JSON."""
    body = b'{"pad": "' + b"x" * (65 * 1024) + b'"}'
    response = await service.client.post(PATH, data=body, headers=signed(service.webhook_secret, body))
    assert response.status == 413
    assert (await response.json())["code"] == "body_too_large"
    assert await count(owner) == 0


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, None),
        (
            b'{"type": "credential.stolen", "user_id": "alice", "occurred_at": "2026-01-01T00:00:00Z"}',
            422,
            None,
        ),
        (b'{"type": "user.deleted", "user_id": "alice"}', 422, "occurred_at"),
        (
            b'{"type": "user.deleted", "user_id": "alice", "occurred_at": "2026-01-01T00:00:00"}',
            422,
            "occurred_at",
        ),
        (
            b'{"type": "user.deleted", "user_id": "a/b", "occurred_at": "2026-01-01T00:00:00Z"}',
            422,
            "user_id",
        ),
        (
            b'{"type": "user.deleted", "user_id": "system", "occurred_at": "2026-01-01T00:00:00Z"}',
            422,
            "user_id",
        ),
        (
            b'{"type": "credential.revoked", "user_id": "alice", "occurred_at": "2026-01-01T00:00:00Z",'
            b' "data": {"reason": "bored"}}',
            422,
            "data.reason",
        ),
        (
            b'{"type": "credential.provisioned", "user_id": "alice", "occurred_at": "2026-01-01T00:00:00Z"}',
            422,
            None,
        ),
        (b"[1, 2, 3]", 422, None),
    ],
    ids=[
        "not-json",
        "unknown-type",
        "no-time",
        "naive-time",
        "bad-user",
        "reserved-user",
        "bad-reason",
        "not-accepted-here",
        "not-an-object",
    ],
)
async def test_invalid_events_are_4xx_with_the_field_and_append_nothing(
    service: Service, owner: asyncpg.Connection, body: bytes, status: int, field: str | None
) -> None:
    """Validated per type; the answer names the field at fault; nothing is stored."""
    response = await service.client.post(PATH, data=body, headers=signed(service.webhook_secret, body))
    assert response.status == status
    answer = await response.json()
    assert answer["success"] is False
    if field is not None:
        assert field in [f["field"] for f in answer["fields"]]
    assert await count(owner) == 0


async def test_either_of_two_secrets_verifies_during_rotation(
    database_url: str, nextcloud: Any, master_keys: MasterKeyRing, tmp_path: Any, owner: asyncpg.Connection
) -> None:
    """With new and old configured, a sender still on the old secret is accepted."""
    from aiohttp.test_utils import TestServer

    old, new = new_webhook_secret(), new_webhook_secret()
    settings = service_settings(
        database_url, nextcloud[0], master_keys, tmp_path, webhook_secrets=f"{new},{old}"
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        for secret in (old, new):
            body = event()
            response = await client.post(PATH, data=body, headers=signed(secret, body))
            assert response.status == 201
    assert await count(owner) == 2
