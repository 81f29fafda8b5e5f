"""The HTTP framework's own ceiling: an aiohttp app whose POST handler does no work at all.

It reads the body and answers 201 with a small JSON body, on uvloop, in one process, as
`credledger serve` with one worker does: no signature, no validation, no database. The ingest
benchmark drives it with the same wrk script, so the figure says how much of the pgbench ceiling
an aiohttp service could reach on this machine before doing any of the work an event needs.

    python -m bench.empty_handler --port 8099
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

from bench import event_loop


async def ready(request: web.Request) -> web.Response:
    return web.json_response({"status": "ready"})


async def accept(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"position": 1, "duplicate": False}, status=201)


async def serve(port: int) -> None:
    app = web.Application()
    app.router.add_post("/api/v1/events", accept)
    app.router.add_get("/readyz", ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()  # until the benchmark terminates this process


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    event_loop.run(serve(parser.parse_args().port))
