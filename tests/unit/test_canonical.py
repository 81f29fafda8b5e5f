"""The canonical form and the hash chain, without a database."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.canonical import (
    GENESIS_HASH,
    canonical_event_bytes,
    canonical_json,
    canonical_time,
    chain_hash,
    content_digest,
)
from events.envelope import RecordedEvent
from events.errors import InvalidEvent

text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)
times = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2999, 1, 1), timezones=st.just(UTC))


@given(
    position=st.integers(1, 2**62),
    version=st.integers(1, 2**62),
    ident=text.filter(bool),
    data=st.dictionaries(text, json_values, max_size=5),
    metadata=st.dictionaries(text, text, max_size=3),
    occurred=times,
    recorded=times,
)
def test_canonical_bytes_equal_sorted_compact_json(
    position: int,
    version: int,
    ident: str,
    data: dict[str, Any],
    metadata: dict[str, str],
    occurred: datetime,
    recorded: datetime,
) -> None:
    """The hand-built envelope is byte for byte what json.dumps with sorted keys produces."""
    envelope = {
        "position": position,
        "event_id": ident,
        "source": ident,
        "stream": ident,
        "stream_version": version,
        "type": ident,
        "schema_version": 1,
        "data": data,
        "metadata": metadata,
        "occurred_at": canonical_time(occurred),
        "recorded_at": canonical_time(recorded),
    }
    expected = json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    built = canonical_event_bytes(
        position=position,
        event_id=ident,
        source=ident,
        stream=ident,
        stream_version=version,
        type=ident,
        schema_version=1,
        data_json=canonical_json(data),
        metadata_json=canonical_json(metadata),
        occurred_at=occurred,
        recorded_at=recorded,
    )
    assert built == expected.encode()


def test_a_recorded_event_hashes_its_own_envelope() -> None:
    """RecordedEvent.canonical_bytes is the envelope without the two hashes, canonically."""
    moment = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    event = RecordedEvent(
        position=3, event_id="e", source="s", stream="u", stream_version=2, type="user.disabled",
        schema_version=1, data={"b": 1, "a": "é"}, metadata={"request_id": "r"},
        occurred_at=moment, recorded_at=moment, prev_hash=bytes(32), hash=bytes(32),
    )  # fmt: skip
    envelope = {
        "position": 3, "event_id": "e", "source": "s", "stream": "u", "stream_version": 2,
        "type": "user.disabled", "schema_version": 1, "data": {"b": 1, "a": "é"},
        "metadata": {"request_id": "r"}, "occurred_at": "2026-12-04T12:00:00.000000Z",
        "recorded_at": "2026-12-04T12:00:00.000000Z",
    }  # fmt: skip
    expected = json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert event.canonical_bytes() == expected.encode()


def test_chain_hash_is_sha256_of_previous_hash_then_bytes() -> None:
    """The link is SHA-256(prev_hash || canonical bytes)."""
    assert chain_hash(GENESIS_HASH, b"{}") == hashlib.sha256(bytes(32) + b"{}").digest()


@pytest.mark.parametrize("value", [1.5, {"a": 0.1}, [float("nan")]])
def test_floats_are_refused(value: Any) -> None:
    """jsonb would rewrite a float's spelling and break the hash: refuse it."""
    with pytest.raises(InvalidEvent):
        canonical_json(value)


def test_nul_characters_are_refused() -> None:
    """jsonb cannot hold NUL: refuse it before the database does."""
    with pytest.raises(InvalidEvent):
        canonical_json({"a": "x\x00y"})


def test_non_string_keys_are_refused() -> None:
    """JSON object keys are strings; an int key would be silently converted."""
    with pytest.raises(InvalidEvent):
        canonical_json({1: "a"})


def test_naive_times_are_refused() -> None:
    """A time without a zone has no single canonical spelling."""
    with pytest.raises(InvalidEvent):
        canonical_time(datetime(2026, 1, 1))


def test_times_are_spelled_in_utc_with_microseconds() -> None:
    """Any zone is converted to UTC, always with six fractional digits."""
    moment = datetime(2026, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert canonical_time(moment) == "2026-01-01T12:00:00.000000Z"


def test_content_digest_ignores_nothing_but_metadata() -> None:
    """Two deliveries of one event agree; a changed field gives another digest."""
    base = {
        "stream": "alice",
        "type": "user.disabled",
        "schema_version": 1,
        "data_json": "{}",
        "occurred_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    assert content_digest(**base) == content_digest(**base)  # type: ignore[arg-type]
    changed = dict(base, data_json='{"a":1}')
    assert content_digest(**base) != content_digest(**changed)  # type: ignore[arg-type]
