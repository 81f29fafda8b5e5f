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
from events.envelope import SYSTEM_STREAM
from events.event_types import CredentialInvalidated, SyncFailed, SyncRecovered, to_new_event
from events.writer import GroupCommitWriter
from projections.queries import CredentialRecord
from projections.sync_bookkeeping import record_failure, record_success, release_lease
from sync import pause
from sync.credentials import open_active_credential
from sync.cursors import SyncCursor, load_cursor, save_cursor
from sync.nextcloud_client import InvalidCredentials, NextcloudClient, NextcloudError, Throttled
from sync.revocation_gate import CredentialWithdrawn, SyncGate
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


async def sync_user(deps: SyncDependencies, record: CredentialRecord) -> Outcome:
    """Sync one claimed user and record the outcome; never raises for Nextcloud's answers."""
    state = record.state
    position = state.credential_position
    if position is None:
        return await _withdrawn(deps, state.user_id)
    try:
        outcome = await _call_nextcloud(deps, state.user_id, position)
    except CredentialWithdrawn:
        return await _withdrawn(deps, state.user_id)
    except Paused:
        outcome = await _left_for_later(deps, state.user_id)
    except InvalidCredentials:
        outcome = await _invalidated(deps, state.user_id, position)
    except Throttled as error:
        outcome = await _throttled(deps, state.user_id, error.retry_after)
    except NextcloudError as error:
        outcome = await _failed(deps, state.user_id, str(error))
    deps.on_outcome(outcome)
    return outcome


def _not_paused(deps: SyncDependencies) -> None:
    if deps.throttle.remaining() > 0:
        raise Paused


async def _call_nextcloud(deps: SyncDependencies, user_id: str, position: int) -> Outcome:
    _not_paused(deps)
    async with SyncGate(deps.pool, user_id, position) as gate:
        # The gate's own connection: a second one per sync could exhaust the pool under load.
        credential = await open_active_credential(gate.conn, deps.master_keys, user_id)
        cursor = await load_cursor(gate.conn, user_id)
        if credential is None or credential.credential_position != position:
            raise CredentialWithdrawn(user_id)
        etag = await deps.client.root_etag(
            user_id, credential.login_name, credential.app_password, on_sent=gate.request_started
        )
    if etag == cursor.root_etag:
        await _succeeded(deps, user_id, cursor)
        return Outcome.UNCHANGED
    _not_paused(deps)
    async with SyncGate(deps.pool, user_id, position) as gate:
        files = await deps.client.changed_files(
            user_id,
            credential.login_name,
            credential.app_password,
            cursor.watermark,
            on_sent=gate.request_started,
        )
    await deps.sink.accept(user_id, files)
    newest = max((f.last_modified for f in files), default=cursor.watermark)
    await _succeeded(deps, user_id, SyncCursor(etag, newest))
    return Outcome.CHANGED


async def _succeeded(deps: SyncDependencies, user_id: str, cursor: SyncCursor) -> None:
    async with deps.pool.acquire() as conn:
        await save_cursor(conn, user_id, cursor)
        ended_failures = await record_success(conn, user_id, deps.owner, deps.next_sync_at())
    if ended_failures:
        await deps.writer.append(to_new_event(SyncRecovered(ended_failures), stream=user_id, source=SOURCE))


async def _failed(deps: SyncDependencies, user_id: str, error: str) -> Outcome:
    async with deps.pool.acquire() as conn:
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


async def _throttled(deps: SyncDependencies, user_id: str, retry_after: float | None) -> Outcome:
    seconds = deps.throttle.pause(retry_after)
    async with deps.pool.acquire() as conn:
        started = await pause.pause(conn, seconds, "nextcloud answered 429")
        await release_lease(conn, user_id, deps.owner)
    if started:
        event = SyncFailed("throttled", retry_after_seconds=max(1, round(seconds)))
        await deps.writer.append(to_new_event(event, stream=SYSTEM_STREAM, source=SOURCE))
        log.warning("sync.paused", seconds=seconds)
    return Outcome.THROTTLED


async def _left_for_later(deps: SyncDependencies, user_id: str) -> Outcome:
    async with deps.pool.acquire() as conn:
        await release_lease(conn, user_id, deps.owner)
    return Outcome.THROTTLED


async def _withdrawn(deps: SyncDependencies, user_id: str) -> Outcome:
    async with deps.pool.acquire() as conn:
        await release_lease(conn, user_id, deps.owner)
    deps.on_outcome(Outcome.WITHDRAWN)
    return Outcome.WITHDRAWN
