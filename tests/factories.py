"""Small builders for test data."""

from __future__ import annotations

import base64
import os
import uuid
from datetime import UTC, datetime
from typing import Any

from events.crypto import MasterKeyRing
from events.envelope import NewEvent


def new_event(
    *,
    stream: str = "alice",
    type: str = "user.disabled",
    data: dict[str, Any] | None = None,
    source: str = "test",
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    metadata: dict[str, Any] | None = None,
) -> NewEvent:
    """A valid event with a fresh id unless told otherwise."""
    return NewEvent(
        event_id=event_id or uuid.uuid4().hex,
        source=source,
        stream=stream,
        type=type,
        data={"note": "made by a test"} if data is None else data,
        occurred_at=occurred_at or datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=UTC),
        metadata={} if metadata is None else metadata,
    )


def master_keys_setting(ring: MasterKeyRing) -> str:
    """The CREDLEDGER_MASTER_KEYS spelling of a ring."""
    return ",".join(f"{k.key_id}:{base64.b64encode(k.key).decode()}" for k in ring.keys)


def new_webhook_secret() -> str:
    """A fresh Standard Webhooks secret."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()
