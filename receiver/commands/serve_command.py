"""`serve`: migrate, then run the HTTP service until SIGTERM or SIGINT, in one process or several.

With `--workers N` (N > 1) this process starts the embedded PostgreSQL if one is needed, applies
the migrations and creates any development keys, then runs N worker processes that share the
port (SO_REUSEPORT: the kernel spreads connections over them) and the one chain (the append lock
lives in PostgreSQL). It forwards SIGTERM and SIGINT to them and waits for each to finish.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

import structlog
from aiohttp import web

from receiver.app import create_app
from receiver.database import database_url, migrate_database
from receiver.key_material import load_master_keys, load_signing_key
from receiver.logging import configure_logging
from receiver.settings import Settings

log = structlog.get_logger(__name__)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "serve",
        help="migrate, then run the HTTP service",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes sharing the port (default 1; one per core is typical)",
    )
    # A worker started by a parent `serve --workers N`: bind with SO_REUSEPORT beside its siblings.
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(run=serve)


def serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run until a signal; aiohttp stops accepting, finishes in-flight requests, then cleans up."""
    configure_logging(settings.log_format)
    if args.workers < 1:
        print("serve: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1:
        return asyncio.run(_supervise(args.workers, settings))
    web.run_app(
        create_app(settings),
        loop=_event_loop(),
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        shutdown_timeout=30,
        reuse_port=args.reuse_port or None,
    )
    return 0


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (everywhere but Windows): the HTTP path is loop-bound."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def _supervise(workers: int, settings: Settings) -> int:
    # Created here, once: workers starting together would otherwise race to create them.
    load_master_keys(settings)
    load_signing_key(settings)
    async with database_url(settings) as url:
        await migrate_database(url)
        env = {**os.environ, "CREDLEDGER_DATABASE_URL": url}
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "receiver.cli", "serve", "--reuse-port", env=env
            )
            for _ in range(workers)
        ]
        log.info("serve.workers_started", workers=workers, pids=[c.pid for c in children])
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        exits = [asyncio.ensure_future(child.wait()) for child in children]
        # Until a signal, or until any worker exits on its own (then the others are stopped too).
        await asyncio.wait([asyncio.ensure_future(stop.wait()), *exits], return_when=asyncio.FIRST_COMPLETED)
        for child in children:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
        codes = [await exit_ for exit_ in exits]
    if not stop.is_set():
        log.error("serve.worker_exited", codes=codes)
        return 1
    return max(codes)
