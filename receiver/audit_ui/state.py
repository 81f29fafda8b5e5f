"""The audit page's state in one process: the latest chain verification, and where checkpoints come from.

Verifying reads the whole log, so it runs when an auditor asks, one run at a time per process;
pages show its outcome with the time it was taken. Several replicas each keep their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import structlog
from aiohttp import web

from events.database import Connection
from events.verify import ChainReport, verify_chain
from receiver.audit_ui.panels import CheckpointView

log = structlog.get_logger(__name__)

CheckpointReader = Callable[[Connection], Awaitable[CheckpointView | None]]


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """One verification's outcome and when it finished."""

    report: ChainReport
    checked_at: datetime


@dataclass
class AuditPageState:
    """Set once at setup and mutated within: an app's own state is frozen once it starts.

    `checkpoint_reader` is None while this service signs no checkpoints.
    """

    checkpoint_reader: CheckpointReader | None = None
    latest: ChainCheck | None = None
    running: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def verify(self, pool: asyncpg.Pool) -> ChainCheck:
        """Verify the chain now, or wait for the run already in progress and share its outcome.

        Impatient clicks must not stack up runs that each read the whole log.
        """
        if self.running.locked():
            async with self.running:
                if self.latest is not None:
                    return self.latest
        async with self.running:
            async with pool.acquire() as conn:
                report = await verify_chain(conn)
            if not report.intact:
                log.warning("audit_page.chain_broken", bad_position=report.bad_position)
            self.latest = ChainCheck(report, datetime.now(UTC))
            return self.latest


AUDIT_PAGE = web.AppKey("audit_page", AuditPageState)
