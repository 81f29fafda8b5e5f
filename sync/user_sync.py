"""Syncing one user: open the credential at the moment of use, ask Nextcloud, record what happened.

An unchanged root etag costs one PROPFIND; a changed one adds a SEARCH for files modified since
the user's watermark, whose results go to the sink. Each request passes the revocation gate.
Outcomes: a success moves the user's next sync one interval (plus or minus 10%) ahead; a
transient failure backs off exponentially; a 401 invalidates the credential for good; a 429
pauses every call to Nextcloud without counting against anyone.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import asyncpg
import structlog

from events.crypto import MasterKeyRing
from events.database import Connection
from events.envelope import SYSTEM_STREAM
from events.event_types import CredentialInvalidated, SyncFailed, SyncRecovered, to_new_event
from events.writer import GroupCommitWriter
from projections.queries import CredentialRecord
from projections.sync_bookkeeping import (
    SyncCursor,
    SyncSuccess,
    record_failure,
    record_successes,
    release_lease,
)
from sync import pause
from sync.credentials import open_for_sync
from sync.nextcloud_client import InvalidCredentials, NextcloudClient, NextcloudError, Throttled
from sync.revocation_gate import LOCK_CLASS, CredentialWithdrawn, SyncGate, still_active
from sync.sink import SyncSink
from sync.throttle import InstanceThrottle

log = structlog.get_logger(__name__)

SOURCE = "sync"
MAX_BACKOFF_SECONDS = 3600.0


class Paused(Exception):
    """Calls to Nextcloud are paused (a 429 was seen): leave the user for later, unblamed."""


class Outcome(StrEnum):
    UNCHANGED = "unchanged"
    CHANGED = "changed"
    FAILED = "failed"
    INVALIDATED = "invalidated"
    THROTTLED = "throttled"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class SyncDependencies:
    """Everything a sync needs, passed in: the jobs are plain functions, testable without a scheduler."""

    pool: asyncpg.Pool
    writer: GroupCommitWriter
    master_keys: MasterKeyRing
    client: NextcloudClient
    sink: SyncSink
    interval_seconds: float
    owner: str
    throttle: InstanceThrottle
    on_outcome: Callable[[Outcome], None] = field(default=lambda outcome: None)

    def next_sync_at(self) -> datetime:
        """One interval from now, give or take 10%, so that users spread out over time."""
        jitter = random.uniform(0.9, 1.1)  # noqa: S311 (spreading load, not security)
        return datetime.now(UTC) + timedelta(seconds=self.interval_seconds * jitter)

    def backoff_schedule(self) -> list[float]:
        """Waits after 1, 2, 3… consecutive failures: doubling from min(interval, 30 s), capped."""
        base = min(self.interval_seconds, 30.0)
        waits, wait = [], base
        while wait < MAX_BACKOFF_SECONDS:
            waits.append(wait)
            wait *= 2
        return [*waits, MAX_BACKOFF_SECONDS]


class Successes:
    """Successful syncs of one worker, recorded together (one statement for many users)."""

    def __init__(self, deps: SyncDependencies, conn: Connection, batch: int = 32) -> None:
        self._deps, self._conn, self._batch = deps, conn, batch
        self._waiting: list[SyncSuccess] = []

    async def add(self, user_id: str, cursor: SyncCursor) -> None:
        self._waiting.append(SyncSuccess(user_id, self._deps.next_sync_at(), cursor))
        if len(self._waiting) >= self._batch:
            await self.flush()

    async def flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        ended = await record_successes(self._conn, self._deps.owner, waiting)
        for user_id, failures in ended.items():
            if failures:
                event = to_new_event(SyncRecovered(failures), stream=user_id, source=SOURCE)
                await self._deps.writer.append(event)


async def sync_user(
    deps: SyncDependencies,
    record: CredentialRecord,
    conn: Connection | None = None,
    successes: Successes | None = None,
) -> Outcome:
    """Sync one claimed user and record the outcome; never raises for Nextcloud's answers.

    The whole sync works on one connection (the caller's, or one from the pool): the gate's locks,
    the reads and the outcome. A success is recorded at once, or added to the caller's `successes`
    (which the caller flushes).
    """
    if conn is None:
        async with deps.pool.acquire() as pooled:
            return await sync_user(deps, record, pooled, successes)
    if successes is None:
        own = Successes(deps, conn)
        outcome = await sync_user(deps, record, conn, own)
        await own.flush()
        return outcome
    user_id, position = record.state.user_id, record.state.credential_position
    if position is None:
        outcome = await _withdrawn(conn, deps, user_id)
    else:
        try:
            outcome = await _call_nextcloud(conn, deps, user_id, position, successes)
        except CredentialWithdrawn:
            outcome = await _withdrawn(conn, deps, user_id)
        except Paused:
            outcome = await _left_for_later(conn, deps, user_id)
        except InvalidCredentials:
            outcome = await _invalidated(deps, user_id, position)
        except Throttled as error:
            outcome = await _throttled(conn, deps, user_id, error.retry_after)
        except NextcloudError as error:
            outcome = await _failed(conn, deps, user_id, str(error))
    deps.on_outcome(outcome)
    return outcome


def _not_paused(deps: SyncDependencies) -> None:
    if deps.throttle.remaining() > 0:
        raise Paused


async def _call_nextcloud(
    conn: Connection, deps: SyncDependencies, user_id: str, position: int, successes: Successes
) -> Outcome:
    gate = SyncGate(conn, user_id)
    _not_paused(deps)
    async with gate.passage(locked=True):
        opened = await open_for_sync(conn, deps.master_keys, user_id, position, lock_class=LOCK_CLASS)
        if opened is None:
            raise CredentialWithdrawn(user_id)
        credential, cursor = opened
        etag = await deps.client.root_etag(
            user_id, credential.login_name, credential.app_password, on_sent=gate.request_started
        )
    if etag == cursor.root_etag:
        await successes.add(user_id, cursor)
        return Outcome.UNCHANGED
    _not_paused(deps)
    async with gate.passage():
        if not await still_active(conn, user_id, position):
            raise CredentialWithdrawn(user_id)
        files = await deps.client.changed_files(
            user_id,
            credential.login_name,
            credential.app_password,
            cursor.watermark,
            on_sent=gate.request_started,
        )
    await deps.sink.accept(user_id, files)
    newest = max((f.last_modified for f in files), default=cursor.watermark)
    await successes.add(user_id, SyncCursor(etag, newest))
    return Outcome.CHANGED


async def _failed(conn: Connection, deps: SyncDependencies, user_id: str, error: str) -> Outcome:
    failures = await record_failure(conn, user_id, deps.owner, deps.backoff_schedule())
    if failures == 1:  # the transition into failing is history; each retry after it is not
        await deps.writer.append(to_new_event(SyncFailed(error), stream=user_id, source=SOURCE))
    log.info("sync.failed", user_id=user_id, failures=failures, error=error)
    return Outcome.FAILED


async def _invalidated(deps: SyncDependencies, user_id: str, position: int) -> Outcome:
    # One 401 is enough: the credential is never tried again (its key is shredded with this event),
    # because every further try would be another brute-force strike against this server.
    await deps.writer.append(
        to_new_event(CredentialInvalidated(credential_position=position), stream=user_id, source=SOURCE)
    )
    log.info("sync.credential_invalidated", user_id=user_id)
    return Outcome.INVALIDATED


async def _throttled(
    conn: Connection, deps: SyncDependencies, user_id: str, retry_after: float | None
) -> Outcome:
    seconds = deps.throttle.pause(retry_after)
    started = await pause.pause(conn, seconds, "nextcloud answered 429")
    await release_lease(conn, user_id, deps.owner)
    if started:
        event = SyncFailed("throttled", retry_after_seconds=max(1, round(seconds)))
        await deps.writer.append(to_new_event(event, stream=SYSTEM_STREAM, source=SOURCE))
        log.warning("sync.paused", seconds=seconds)
    return Outcome.THROTTLED


async def _left_for_later(conn: Connection, deps: SyncDependencies, user_id: str) -> Outcome:
    await release_lease(conn, user_id, deps.owner)
    return Outcome.THROTTLED


async def _withdrawn(conn: Connection, deps: SyncDependencies, user_id: str) -> Outcome:
    await release_lease(conn, user_id, deps.owner)
    return Outcome.WITHDRAWN
