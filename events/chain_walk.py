"""The check of a run of raw log rows: positions, links, recomputed hashes and stream versions.

Rows are read as raw columns (data and metadata as jsonb text, times as integer microseconds) and
each event's canonical bytes are rebuilt from them directly, without building a RecordedEvent or
a datetime: the bytes `events.canonical` defines, at several times the old walk's rate.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from json.encoder import encode_basestring
from json.scanner import make_scanner
from typing import Any, cast

from events.canonical import canonical_json
from events.database import Connection
from events.errors import InvalidEvent

LAST_POSITION = 2**63 - 1
CHUNK = 10_000

_UNIX_EPOCH = datetime(1970, 1, 1)
_ONE_MICROSECOND = timedelta(microseconds=1)

# Times come as microseconds since 1970 so the walk formats them without building datetimes (that
# and isoformat were a third of the old walk). asyncpg writes datetime.min and datetime.max as
# -infinity and infinity, and the append path hashed them as those datetimes, so they read as such.
# Whole seconds and the microseconds apart: before PostgreSQL 14, EXTRACT returns a double, which
# holds either part exactly but not the two together (a time in 2026 needs 16 digits).
_MICROS = f"""CASE WHEN isfinite({{0}}) THEN
        EXTRACT(EPOCH FROM date_trunc('second', {{0}}))::int8 * 1000000
        + EXTRACT(MICROSECONDS FROM {{0}})::int8 % 1000000
    WHEN {{0}} > 'epoch' THEN {(datetime.max - _UNIX_EPOCH) // _ONE_MICROSECOND}
    ELSE {(datetime.min - _UNIX_EPOCH) // _ONE_MICROSECOND} END"""
ROWS_QUERY = f"""
SELECT position, event_id, source, stream, stream_version, type, schema_version, data::text,
       metadata::text, {_MICROS.format("occurred_at")}, {_MICROS.format("recorded_at")}, prev_hash, hash
FROM events WHERE position > $1 AND position <= $2 ORDER BY position
"""


def _refuse_float(text: str) -> Any:
    # What canonical_json refuses; the only such value jsonb text can hold (it stores no NUL).
    raise InvalidEvent("event values must be JSON strings, integers, booleans or null, not float")


# jsonb's text is one value with no surrounding white space: the scanner alone reads it.
# (typeshed types its argument as a scanner; it takes any object with a decoder's attributes)
_scan = make_scanner(cast(Any, json.JSONDecoder(parse_float=_refuse_float)))
try:
    from _json import make_encoder

    # canonical_json's encoder, called without JSONEncoder.encode's per-call set-up (a third of it).
    _encoder = make_encoder(
        None, json.JSONEncoder().default, encode_basestring, None, ":", ",", True, False, True
    )

    def _canonical_text(text: str) -> str:
        return "".join(_encoder(_scan(text, 0)[0], 0))

except ImportError:  # pragma: no cover - interpreters without the C accelerator

    def _canonical_text(text: str) -> str:
        return canonical_json(_scan(text, 0)[0])


def _second_text(second: int) -> str:
    """The canonical time up to its fraction, for whole seconds since 1970; OverflowError past 9999."""
    return (_UNIX_EPOCH + timedelta(seconds=second)).isoformat() + "."


class ChainWalk:
    """The check over consecutive rows of ROWS_QUERY: positions, links, hashes and stream versions.

    `versions` None skips the stream-version check (it is only complete from the genesis). With
    `firsts`, a stream's first version in the run is recorded (with its position and link) instead
    of required to be 1, for a run that starts in the middle of the log.
    """

    def __init__(
        self,
        after: int,
        after_hash: bytes,
        *,
        versions: dict[str, int] | None,
        firsts: dict[str, tuple[int, int, bytes]] | None = None,
    ) -> None:
        self.after = after
        self.expected = after + 1
        self.prev_hash = after_hash
        self.versions = versions
        self.firsts = firsts
        self.bad_position: int | None = None
        self.reason: str | None = None
        # The canonical text of a jsonb text: most metadata and many payloads repeat exactly.
        self._canonical: dict[str, str] = {}
        self._seconds: tuple[int | None, str, int | None, str] = (None, "", None, "")

    @property
    def checked(self) -> int:
        return self.expected - self.after - 1

    def feed(self, rows: Sequence[Any]) -> bool:
        """Check the next `rows` in position order; False (and bad_position set) once one fails."""
        expected, prev_hash, versions, firsts = self.expected, self.prev_hash, self.versions, self.firsts
        canonical, sha256, quote = self._canonical, hashlib.sha256, encode_basestring
        occ_second, occ_text, rec_second, rec_text = self._seconds
        bad: tuple[int, str] | None = None
        for (
            position,
            event_id,
            source,
            stream,
            version,
            type_,
            schema,
            data,
            meta,
            occ,
            rec,
            link,
            digest,
        ) in rows:
            if position != expected:
                bad = expected, f"position {expected} is missing: the next stored is {position}"
                break
            if link != prev_hash:
                bad = position, f"position {position} does not link to the hash of position {expected - 1}"
                break
            try:
                data_text = canonical.get(data) or canonical.setdefault(data, _canonical_text(data))
                meta_text = canonical.get(meta) or canonical.setdefault(meta, _canonical_text(meta))
                if len(canonical) > 4096:
                    canonical.clear()
                second, occ_micro = divmod(occ, 1_000_000)
                if second != occ_second:
                    occ_text, occ_second = _second_text(second), second
                second, rec_micro = divmod(rec, 1_000_000)
                if second != rec_second:
                    rec_text, rec_second = _second_text(second), second
            except (InvalidEvent, OverflowError):
                # A float or a time past 9999 has no canonical form, so the append path hashed
                # neither: the row was changed afterwards.
                bad = position, f"position {position} does not match its hash: its content was changed"
                break
            text = (
                f'{{"data":{data_text},"event_id":{quote(event_id)},"metadata":{meta_text},'
                f'"occurred_at":"{occ_text}{occ_micro:06d}Z","position":{position},'
                f'"recorded_at":"{rec_text}{rec_micro:06d}Z","schema_version":{schema},'
                f'"source":{quote(source)},"stream":{quote(stream)},"stream_version":{version},'
                f'"type":{quote(type_)}}}'
            )
            if sha256(prev_hash + text.encode()).digest() != digest:
                bad = position, f"position {position} does not match its hash: its content was changed"
                break
            if versions is not None:
                last = versions.get(stream)
                if last is not None or firsts is None:
                    want = 1 if last is None else last + 1
                    if version != want:
                        bad = position, version_reason(position, version, stream, want)
                        break
                else:
                    firsts[stream] = (version, position, link)
                versions[stream] = version
            prev_hash = digest
            expected += 1
        self.expected, self.prev_hash = expected, prev_hash
        self._seconds = (occ_second, occ_text, rec_second, rec_text)
        if bad is not None:
            self.bad_position, self.reason = bad
            return False
        return True


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """The walk makes millions of short-lived, acyclic rows and strings; the collector's scans
    of them cost a tenth of the walk and find nothing to free."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def walk_range(
    conn: Connection,
    walk: ChainWalk,
    upto: int = LAST_POSITION,
    *,
    query: str = ROWS_QUERY,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Feed `walk` the rows after its start up to `upto`, until they end or one fails.

    Must run inside a transaction (the cursor lives in it). The next chunk is requested before
    the current one is checked, so the server reads while this process hashes.
    """
    cursor = await conn.cursor(query, walk.expected - 1, upto)
    pending = asyncio.ensure_future(cursor.fetch(CHUNK))
    try:
        with cyclic_gc_paused():
            while rows := await pending:
                pending = asyncio.ensure_future(cursor.fetch(CHUNK))
                await asyncio.sleep(0)  # let the request for the next chunk go out before hashing
                intact = walk.feed(rows)
                if progress is not None:
                    progress(walk.checked)
                if not intact:
                    break
    finally:
        # The connection takes no other command (not even the rollback) until this fetch ends.
        if not pending.done():
            await asyncio.wait([pending])
        if not pending.cancelled():
            pending.exception()


def version_reason(position: int, version: int, stream: str, want: int) -> str:
    return f"position {position} has version {version} of stream {stream!r}, expected {want}"
