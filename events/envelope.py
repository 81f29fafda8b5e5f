"""The shapes of an event: as a caller hands it in, and as the log holds it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from events.canonical import canonical_event_bytes, canonical_json, canonical_time

# The stream for events that concern the service itself rather than one user.
SYSTEM_STREAM = "system"

# The envelope of DESIGN.md, in its order: the log's columns, and what an export line holds.
ENVELOPE_FIELDS = (
    "position",
    "event_id",
    "source",
    "stream",
    "stream_version",
    "type",
    "schema_version",
    "data",
    "metadata",
    "occurred_at",
    "recorded_at",
    "prev_hash",
    "hash",
)


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

    def canonical_bytes(self) -> bytes:
        """What this event's link hashes (after the previous hash): its envelope, canonically."""
        return canonical_event_bytes(
            position=self.position,
            event_id=self.event_id,
            source=self.source,
            stream=self.stream,
            stream_version=self.stream_version,
            type=self.type,
            schema_version=self.schema_version,
            data_json=canonical_json(self.data),
            metadata_json=canonical_json(self.metadata),
            occurred_at=self.occurred_at,
            recorded_at=self.recorded_at,
        )


@dataclass(frozen=True, slots=True)
class Appended:
    """What an append answers: where the event stands, and whether this call stored it."""

    position: int
    stream_version: int
    hash: bytes
    duplicate: bool = False


def envelope_json(event: RecordedEvent) -> dict[str, Any]:
    """The event's whole envelope as JSON values: times as the canonical form spells them, hashes in hex."""
    return {
        "position": event.position,
        "event_id": event.event_id,
        "source": event.source,
        "stream": event.stream,
        "stream_version": event.stream_version,
        "type": event.type,
        "schema_version": event.schema_version,
        "data": dict(event.data),
        "metadata": dict(event.metadata),
        "occurred_at": canonical_time(event.occurred_at),
        "recorded_at": canonical_time(event.recorded_at),
        "prev_hash": event.prev_hash.hex(),
        "hash": event.hash.hex(),
    }
