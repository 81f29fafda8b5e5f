"""The simulator as an aiohttp application: routes, the fault and accounting middleware, and a runner."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.typedefs import Handler

from sync.nextcloud_simulator import ocs, search, webdav
from sync.nextcloud_simulator.auth import attributed_user
from sync.nextcloud_simulator.control import NextcloudSimulator
from sync.nextcloud_simulator.dav_xml import error_response
from sync.nextcloud_simulator.keys import SIMULATOR

_LOGIN_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Login - Nextcloud</title></head><body>Log in</body></html>\n"
)
_ERROR_PAGE = "<!DOCTYPE html>\n<html><head><title>Nextcloud</title></head><body>{status}</body></html>\n"


def request_kind(request: web.Request) -> str:
    """What the counters file a request under: ocs, ocs_v1, or the WebDAV method in lower case."""
    if request.path.startswith("/ocs/v2.php/"):
        return "ocs"
    if request.path.startswith("/ocs/v1.php/"):
        return "ocs_v1"
    if request.path.startswith("/remote.php/dav"):
        return request.method.lower()
    return "other"


def _throttled(request: web.Request, retry_after: float) -> web.Response:
    headers = {"Retry-After": str(math.ceil(retry_after))}
    kind = request_kind(request)
    if kind in {"ocs", "ocs_v1"}:
        response = ocs.ocs_response(request, 1 if kind == "ocs_v1" else 2, 429, "Reached maximum delay")
        response.headers.update(headers)
        return response
    return error_response(
        429, "OCA\\DAV\\Connector\\Sabre\\Exception\\TooManyRequests", "Too many requests", headers=headers
    )


async def _answer(request: web.Request, handler: Handler, control: NextcloudSimulator) -> web.StreamResponse:
    if control.delay_seconds:
        # The simulated server is slow: this sleep is its behaviour, not anyone's synchronisation.
        await asyncio.sleep(control.delay_seconds)
    # Nextcloud's throttler acts before the credentials are checked, so a throttled request never logs in.
    retry_after = control.retry_after_for(request.remote or "")
    if retry_after is not None:
        return _throttled(request, retry_after)
    if control.forced_status is not None:
        page = _ERROR_PAGE.format(status=control.forced_status)
        return web.Response(status=control.forced_status, text=page, content_type="text/html")
    if control.html_instead:
        return web.Response(text=_LOGIN_PAGE, content_type="text/html")
    return await handler(request)


@web.middleware
async def simulate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request, hold it if its user's gate is closed, then apply the fault modes."""
    control = request.app[SIMULATOR]
    user, credentials = attributed_user(request)
    user_id = user.user_id if user else None
    control.record_request(request_kind(request), user_id, credentials.password if credentials else None)
    if user_id is None:
        return await _answer(request, handler, control)
    control.enter(user_id)
    try:
        await control.holds.pass_gate(user_id)
        return await _answer(request, handler, control)
    finally:
        control.leave(user_id)


def create_app(simulator: NextcloudSimulator | None = None) -> web.Application:
    """A fake Nextcloud answering OCS cloud/user and WebDAV files from `simulator`'s state."""
    app = web.Application(middlewares=[simulate])
    app[SIMULATOR] = simulator or NextcloudSimulator()
    app.router.add_get("/ocs/v2.php/cloud/user", ocs.current_user_v2)
    app.router.add_get("/ocs/v1.php/cloud/user", ocs.current_user_v1)
    app.router.add_route("PROPFIND", "/remote.php/dav/files/{uid}", webdav.propfind)
    app.router.add_route("PROPFIND", "/remote.php/dav/files/{uid}/{tail:.*}", webdav.propfind)
    app.router.add_route("REPORT", "/remote.php/dav/files/{uid}{tail:.*}", webdav.report)
    app.router.add_route("SEARCH", "/remote.php/dav{tail:.*}", search.search)
    return app


@asynccontextmanager
async def running_simulator(
    simulator: NextcloudSimulator | None = None,
) -> AsyncIterator[tuple[str, NextcloudSimulator]]:
    """Serve a simulator on 127.0.0.1 on a free port; yields its base URL and its control object."""
    control = simulator or NextcloudSimulator()
    # Cancel handlers whose client has gone (a timed-out call must not keep a slow answer alive).
    runner = web.AppRunner(
        create_app(control), access_log=None, handler_cancellation=True, shutdown_timeout=0.5
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}", control
    finally:
        control.holds.release_all()
        await runner.cleanup()
