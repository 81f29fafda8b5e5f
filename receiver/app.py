"""The application factory: shared state, start-up and shutdown order, middleware and routes."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from events.database import create_pool
from events.writer import BatchStats, GroupCommitWriter
from projections.api_tokens import project_tokens
from projections.credential_store import project_credentials
from receiver.app_keys import (
    DATABASE_URL,
    MASTER_KEYS,
    NEXTCLOUD,
    POOL,
    RATE_LIMITS,
    SETTINGS,
    THROTTLE,
    WEBHOOK_SECRETS,
    WRITER,
)
from receiver.audit_ui.checkpoint import read_latest_checkpoint
from receiver.database import database_url, migrate_database
from receiver.key_material import SIGNING_KEY, load_master_keys, load_signing_key
from receiver.metrics import METRICS, ServiceMetrics
from receiver.middleware import request_context
from receiver.rate_limits import Limits
from receiver.routes import (
    admin,
    app_passwords,
    audit,
    audit_page,
    checkpoints,
    health,
    operations,
    webhook_events,
)
from receiver.settings import Settings
from receiver.webhook_signatures import parse_secrets
from sync.nextcloud_client import NextcloudClient, new_session
from sync.scheduler import CheckpointScheduler, SyncScheduler
from sync.sink import DatabaseSink
from sync.throttle import InstanceThrottle
from sync.user_sync import SyncDependencies

log = structlog.get_logger(__name__)


def replica_id() -> str:
    """Who holds a lease: this host and process, unique among the replicas."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# Run inside every append's transaction: the projections (and with them key shredding).
APPEND_HOOKS = (project_credentials, project_tokens)

# Bodies are small JSON documents; anything bigger is refused (413) before it is read.
MAX_BODY_BYTES = 64 * 1024


async def _database(app: web.Application) -> AsyncIterator[None]:
    async with database_url(app[SETTINGS]) as url:
        applied = await migrate_database(url)
        if applied:
            log.info("migrations.applied", files=[m.filename for m in applied])
        app[DATABASE_URL] = url
        yield


async def _pool(app: web.Application) -> AsyncIterator[None]:
    # Each sync in flight holds a connection while it passes the revocation gate; requests need theirs.
    pool = await create_pool(app[DATABASE_URL], min_size=2, max_size=app[SETTINGS].sync_concurrency + 20)
    app[POOL] = pool
    yield
    await pool.close()


async def _writer(app: web.Application) -> AsyncIterator[None]:
    metrics = app[METRICS]

    def on_batch(stats: BatchStats) -> None:
        metrics.batch(stats.size, stats.seconds)

    writer = GroupCommitWriter(app[POOL], hooks=APPEND_HOOKS, on_batch=on_batch)
    await writer.start()
    app[WRITER] = writer
    yield
    # Runs after the server stopped taking requests: what is queued still commits.
    await writer.close()


async def _nextcloud(app: web.Application) -> AsyncIterator[None]:
    url = app[SETTINGS].nextcloud_url
    if not url:
        log.warning(
            "nextcloud.unconfigured", message="CREDLEDGER_NEXTCLOUD_URL is unset: no provisioning, no sync"
        )
        yield
        return
    session = new_session()
    app[NEXTCLOUD] = NextcloudClient(session, url)
    yield
    await session.close()


async def _sync(app: web.Application) -> AsyncIterator[None]:
    client = app.get(NEXTCLOUD)
    if client is None or not app[SETTINGS].sync_enabled:
        yield
        return
    metrics = app[METRICS]
    settings = app[SETTINGS]
    deps = SyncDependencies(
        pool=app[POOL],
        writer=app[WRITER],
        master_keys=app[MASTER_KEYS],
        client=client,
        sink=DatabaseSink(app[POOL]),
        interval_seconds=settings.sync_interval_seconds,
        owner=replica_id(),
        throttle=app[THROTTLE],
        on_outcome=lambda outcome: metrics.sync_outcome(outcome.value),
    )
    scheduler = SyncScheduler(deps, concurrency=settings.sync_concurrency)
    scheduler.start()
    yield
    # First to stop on shutdown: a sync in progress finishes while the pool and writer still run.
    await scheduler.stop()


async def _checkpoints(app: web.Application) -> AsyncIterator[None]:
    # Every replica runs the job; its advisory lock lets one of them sign at a time.
    scheduler = CheckpointScheduler(app[POOL], app[SIGNING_KEY])
    scheduler.start()
    yield
    await scheduler.stop()


def create_app(settings: Settings) -> web.Application:
    """The credledger application; cleanup contexts unwind in reverse order on shutdown."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[request_context])
    app[SETTINGS] = settings
    app[MASTER_KEYS] = load_master_keys(settings)
    app[SIGNING_KEY] = load_signing_key(settings)
    app[WEBHOOK_SECRETS] = parse_secrets(settings.webhook_secrets) if settings.webhook_secrets else []
    app[METRICS] = ServiceMetrics()
    app[THROTTLE] = InstanceThrottle()
    app[RATE_LIMITS] = Limits()
    if not app[WEBHOOK_SECRETS]:
        log.warning(
            "webhooks.unconfigured", message="CREDLEDGER_WEBHOOK_SECRETS is unset: /api/v1/events answers 503"
        )
    app.cleanup_ctx.extend([_database, _pool, _writer, _checkpoints, _nextcloud, _sync])
    health.setup(app)
    app_passwords.setup(app)
    webhook_events.setup(app)
    audit.setup(app)
    checkpoints.setup(app)
    audit_page.setup(app, checkpoint_reader=read_latest_checkpoint)
    admin.setup(app)
    operations.setup(app)
    return app
