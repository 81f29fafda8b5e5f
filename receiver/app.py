"""The application factory: state, start-up and shutdown order, routes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from events.database import create_pool
from events.writer import GroupCommitWriter
from projections.credential_store import project_credentials
from receiver.app_keys import DATABASE_URL, MASTER_KEYS, POOL, SETTINGS, WRITER
from receiver.database import database_url, migrate_database
from receiver.key_material import load_master_keys
from receiver.routes import health
from receiver.settings import Settings

log = structlog.get_logger(__name__)

# Run inside every append's transaction: the projection (and with it key shredding).
APPEND_HOOKS = (project_credentials,)

# Bodies are small JSON documents; anything bigger is refused before it is read.
MAX_BODY_BYTES = 64 * 1024


async def _database(app: web.Application) -> AsyncIterator[None]:
    async with database_url(app[SETTINGS]) as url:
        applied = await migrate_database(url)
        if applied:
            log.info("migrations.applied", files=[m.filename for m in applied])
        app[DATABASE_URL] = url
        yield


async def _pool(app: web.Application) -> AsyncIterator[None]:
    pool = await create_pool(app[DATABASE_URL], min_size=2, max_size=20)
    app[POOL] = pool
    yield
    await pool.close()


async def _writer(app: web.Application) -> AsyncIterator[None]:
    writer = GroupCommitWriter(app[POOL], hooks=APPEND_HOOKS)
    await writer.start()
    app[WRITER] = writer
    yield
    # Runs after the server stopped taking requests: what is queued still commits.
    await writer.close()


def create_app(settings: Settings) -> web.Application:
    """The credledger application; cleanup contexts unwind in reverse on shutdown."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[MASTER_KEYS] = load_master_keys(settings)
    app.cleanup_ctx.extend([_database, _pool, _writer])
    health.setup(app)
    return app
