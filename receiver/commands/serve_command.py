"""`serve`: migrate, then run the HTTP service until SIGTERM or SIGINT, in one process or several.

With `--workers N` (N > 1) this process is the first of N workers: once it has started (the
embedded PostgreSQL if one is needed, the migrations, any development keys) it starts N-1 more
that share the port (SO_REUSEPORT: the kernel spreads connections over them) and the one chain
(the append lock lives in PostgreSQL). It forwards SIGTERM and SIGINT to them and waits for each
to finish; if one exits on its own, all stop with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import web

from receiver.app import create_app
from receiver.logging import configure_logging
from receiver.settings import Settings
from receiver.worker_processes import SiblingWorkers


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
    app = create_app(settings)
    siblings = SiblingWorkers(args.workers - 1)
    if siblings.count:
        siblings.attach(app)
    web.run_app(
        app,
        loop=_event_loop(),
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        shutdown_timeout=30,
        reuse_port=args.reuse_port or siblings.count > 0 or None,
    )
    return 1 if siblings.failed else 0


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (everywhere but Windows): the HTTP path is loop-bound."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
