"""The shapes of an event: as a caller hands it in, and as the log holds it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The stream for events that concern the service itself rather than one user.
SYSTEM_STREAM = "system"


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append. `source` + `event_id` is its idempotency key."""

    event_id: str
    source: str
    stream: str
    type: str
    data: Mapping[str, Any]
    occurred_at: datetime
    metadata: Mapping[str, Any] = field(default_factory=dict)
    schema_version: int = 1


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored: the envelope of DESIGN.md with its place in the chain."""

    position: int
    event_id: str
    source: str
    stream: str
    stream_version: int
    type: str
    schema_version: int
    data: Mapping[str, Any]
    metadata: Mapping[str, Any]
    occurred_at: datetime
    recorded_at: datetime
    prev_hash: bytes
    hash: bytes


@dataclass(frozen=True, slots=True)
class Appended:
    """What an append answers: where the event stands, and whether this call stored it."""

    position: int
    stream_version: int
    hash: bytes
    duplicate: bool = False
