"""Recompute the hash chain from the first event and name the first position that does not hold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from events.canonical import GENESIS_HASH, canonical_event_bytes, canonical_json, chain_hash
from events.database import Connection
from events.reading import iter_events


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of a verification: the head that was proven, or where and why it failed."""

    intact: bool
    checked: int
    head_position: int
    head_hash: bytes
    bad_position: int | None = None
    reason: str | None = None


async def verify_chain(
    conn: Connection,
    *,
    after: int = 0,
    after_hash: bytes = GENESIS_HASH,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 10_000,
) -> ChainReport:
    """Walk the log in position order, checking positions, links, hashes and stream versions.

    `after` and `after_hash` start the walk from a trusted point (a checkpoint) instead of the
    genesis. The stream-version check can only be complete from the genesis, so it is made then.
    """
    expected = after + 1
    prev_hash = after_hash
    versions: dict[str, int] | None = {} if after == 0 else None
    checked = 0

    def broken(position: int, reason: str) -> ChainReport:
        return ChainReport(False, checked, expected - 1, prev_hash, position, reason)

    async for event in iter_events(conn, after=after):
        if event.position != expected:
            return broken(expected, f"position {expected} is missing: the next stored is {event.position}")
        if event.prev_hash != prev_hash:
            return broken(
                event.position,
                f"position {event.position} does not link to the hash of position {expected - 1}",
            )
        canonical = canonical_event_bytes(
            position=event.position,
            event_id=event.event_id,
            source=event.source,
            stream=event.stream,
            stream_version=event.stream_version,
            type=event.type,
            schema_version=event.schema_version,
            data_json=canonical_json(event.data),
            metadata_json=canonical_json(event.metadata),
            occurred_at=event.occurred_at,
            recorded_at=event.recorded_at,
        )
        if chain_hash(prev_hash, canonical) != event.hash:
            return broken(
                event.position,
                f"position {event.position} does not match its hash: its content was changed",
            )
        if versions is not None:
            want = versions.get(event.stream, 0) + 1
            if event.stream_version != want:
                return broken(
                    event.position,
                    f"position {event.position} has version {event.stream_version} of stream "
                    f"{event.stream!r}, expected {want}",
                )
            versions[event.stream] = want
        prev_hash = event.hash
        expected += 1
        checked += 1
        if progress is not None and checked % progress_every == 0:
            progress(checked)
    if progress is not None:
        progress(checked)
    return ChainReport(True, checked, expected - 1, prev_hash)
