"""The canonical bytes of an event and the hash chain over them.

The chain is `hash = SHA-256(prev_hash || canonical bytes)`, with 32 zero bytes before the first
event. The canonical bytes are the envelope (every field but the two hashes) as JSON with keys
sorted by code point, no insignificant white space, non-ASCII characters as UTF-8 and times as
`YYYY-MM-DDTHH:MM:SS.ffffffZ`. That is what `json.dumps(envelope, sort_keys=True,
separators=(",", ":"), ensure_ascii=False)` produces, so an auditor can recompute the chain in any
language from an export. Values are limited to what survives a round trip through PostgreSQL's
jsonb unchanged: no floats (jsonb would rewrite `1.0e2`), no NUL characters (jsonb refuses them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from events.errors import InvalidEvent

GENESIS_HASH = bytes(32)

_dump_string = json.JSONEncoder(ensure_ascii=False).encode
_dump_sorted = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical_json(value: Any) -> str:
    """The canonical JSON text of `value`, refusing what jsonb would not store unchanged."""
    _check_storable(value)
    return _dump_sorted(value)


def _check_storable(value: Any) -> None:
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidEvent("event values may not contain NUL characters")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidEvent("event object keys must be strings")
            _check_storable(key)
            _check_storable(item)
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_storable(item)
        return
    raise InvalidEvent(
        f"event values must be JSON strings, integers, booleans or null, not {type(value).__name__}"
    )


def canonical_time(moment: datetime) -> str:
    """A timezone-aware time in UTC with microseconds, as the canonical form spells it."""
    if moment.tzinfo is not UTC:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise InvalidEvent("event times must be timezone-aware")
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical_event_bytes(
    *,
    position: int,
    event_id: str,
    source: str,
    stream: str,
    stream_version: int,
    type: str,
    schema_version: int,
    data_json: str,
    metadata_json: str,
    occurred_at: datetime,
    recorded_at: datetime,
) -> bytes:
    """The envelope's canonical bytes, given `data` and `metadata` already in canonical JSON.

    Spelled out key by key (in sorted order) so that the hot path serialises `data` once and reuses
    that text for both the hash and the insert.
    """
    return (
        '{"data":'
        + data_json
        + ',"event_id":'
        + _dump_string(event_id)
        + ',"metadata":'
        + metadata_json
        + ',"occurred_at":"'
        + canonical_time(occurred_at)
        + '","position":'
        + str(position)
        + ',"recorded_at":"'
        + canonical_time(recorded_at)
        + '","schema_version":'
        + str(schema_version)
        + ',"source":'
        + _dump_string(source)
        + ',"stream":'
        + _dump_string(stream)
        + ',"stream_version":'
        + str(stream_version)
        + ',"type":'
        + _dump_string(type)
        + "}"
    ).encode()


def chain_hash(prev_hash: bytes, canonical_bytes: bytes) -> bytes:
    """The link: SHA-256 over the previous hash followed by this event's canonical bytes."""
    return hashlib.sha256(prev_hash + canonical_bytes).digest()


def content_digest(
    *, stream: str, type: str, schema_version: int, data_json: str, occurred_at: datetime
) -> bytes:
    """What a redelivery must repeat to count as the same event (metadata may differ)."""
    text = (
        '{"data":'
        + data_json
        + ',"occurred_at":"'
        + canonical_time(occurred_at)
        + '","schema_version":'
        + str(schema_version)
        + ',"stream":'
        + _dump_string(stream)
        + ',"type":'
        + _dump_string(type)
        + "}"
    )
    return hashlib.sha256(text.encode()).digest()
