"""`serve`: migrate, then run the HTTP service until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse

from aiohttp import web

from receiver.app import create_app
from receiver.logging import configure_logging
from receiver.settings import Settings


def serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run until a signal; aiohttp stops accepting, finishes in-flight requests, then cleans up."""
    configure_logging(settings.log_format)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        shutdown_timeout=30,
    )
    return 0
