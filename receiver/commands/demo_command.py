"""`credledger demo`: a private PostgreSQL, a simulated Nextcloud and the service, with sample traffic.

It provisions three users through the Astrolabe API, lets sync run, revokes one, deletes one with a
signed `user.deleted`, revokes the third's password inside Nextcloud so that its next sync meets a
401, then prints every user's history and the chain's verification. Nothing outside a temporary
directory is touched, whatever CREDLEDGER_* says.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from events.database import connect_owner
from events.reading import read_stream
from events.verify import verify_chain
from receiver.app import create_app
from receiver.app_keys import DATABASE_URL
from receiver.commands.history_format import as_table
from receiver.logging import configure_logging
from receiver.settings import Settings
from receiver.webhook_signatures import parse_secret, sign
from sync.nextcloud_simulator import NextcloudSimulator, running_simulator

USERS = (("alice", "alice"), ("bob", "bob"), ("5f3a9c", "Carol.Smith"))


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo",
        help="run the whole flow against a simulated Nextcloud and print the audit trail",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--timeout", type=float, default=45.0, help="give up after this many seconds")
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging("console", level=30)  # warnings only: the demo prints its own story
    return asyncio.run(_demo(args.timeout))


def _say(message: str) -> None:
    print(f"==> {message}", flush=True)


def _basic(login: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


async def _until(what: str, check: Callable[[], Awaitable[bool]], deadline: float) -> None:
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        await asyncio.sleep(0.1)  # polling the service's state, as a person watching it would


async def _demo(seconds: float) -> int:
    deadline = time.monotonic() + seconds
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    with tempfile.TemporaryDirectory(prefix="credledger-demo-") as data_dir:
        async with running_simulator() as (nextcloud_url, nextcloud):
            passwords = _populate(nextcloud)
            settings = Settings(
                database_url=None,
                data_dir=Path(data_dir),
                nextcloud_url=nextcloud_url,
                webhook_secrets=secret,
                sync_interval_seconds=1,
                master_keys=None,
            )
            app = create_app(settings)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            site = web.TCPSite(runner, "127.0.0.1", port)
            await site.start()
            base = f"http://127.0.0.1:{port}"
            _say(f"credledger on {base}, a simulated Nextcloud on {nextcloud_url}")
            _say(f"PostgreSQL embedded under {data_dir}")
            try:
                async with aiohttp.ClientSession() as http:
                    await _story(http, base, app, nextcloud, passwords, secret, deadline)
                return await _report(app[DATABASE_URL])
            finally:
                await runner.cleanup()


def _populate(nextcloud: NextcloudSimulator) -> dict[str, str]:
    passwords = {}
    for user_id, login in USERS:
        nextcloud.add_user(user_id, login_name=login)
        passwords[user_id] = nextcloud.create_app_password(user_id)
        nextcloud.put_file(user_id, "Documents/notes.md", size=1200)
        nextcloud.put_file(user_id, "Photos/holiday.jpg", size=2_400_000)
    return passwords


async def _story(
    http: aiohttp.ClientSession,
    base: str,
    app: web.Application,
    nextcloud: NextcloudSimulator,
    passwords: dict[str, str],
    secret: str,
    deadline: float,
) -> None:
    for user_id, login in USERS:
        async with http.post(
            f"{base}/api/v1/users/{user_id}/app-password",
            headers=_basic(login, passwords[user_id]),
            json={"username": login, "scopes": ["files"]},
        ) as response:
            body = await response.json()
            _say(f"Astrolabe provisions {user_id} (login {login}): {response.status} {body['message']}")

    async def synced_all() -> bool:
        return all(nextcloud.requests_by_user[(u, "search")] > 0 for u, _ in USERS)

    await _until("the first sync of every user", synced_all, deadline)
    _say("background sync fetched every user's files (PROPFIND, then SEARCH since the watermark)")

    async with http.delete(
        f"{base}/api/v1/users/alice/app-password", headers=_basic("alice", passwords["alice"])
    ) as r:
        _say(f"alice revokes her password: {r.status} {(await r.json())['message']}")

    body = json.dumps(
        {"type": "user.deleted", "user_id": "bob", "occurred_at": datetime.now(UTC).isoformat()}
    )
    msg_id, stamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(parse_secret(secret), msg_id, stamp, body.encode()),
        "Content-Type": "application/json",
    }
    async with http.post(f"{base}/api/v1/events", data=body, headers=headers) as r:
        position = (await r.json())["position"]
        _say(f"Nextcloud reports bob deleted (signed webhook): {r.status}, stored at position {position}")

    used_before = nextcloud.request_count("5f3a9c", passwords["5f3a9c"])
    nextcloud.revoke_app_password(passwords["5f3a9c"])
    _say("Carol's app password is revoked inside Nextcloud; her next sync will meet a 401")

    async def carol_invalidated() -> bool:
        conn = await connect_owner(app[DATABASE_URL])
        try:
            status = await conn.fetchval("SELECT status FROM credential_state WHERE user_id = '5f3a9c'")
        finally:
            await conn.close()
        return bool(status == "invalid")

    await _until("Carol's credential to be invalidated", carol_invalidated, deadline)
    tried = nextcloud.request_count("5f3a9c", passwords["5f3a9c"]) - used_before
    _say(
        f"sync met the 401 and invalidated Carol's credential after {tried} request (the first 401 is enough)"
    )


async def _report(url: str) -> int:
    conn = await connect_owner(url)
    try:
        for user_id, _ in USERS:
            print(f"\nHistory of {user_id}:")
            print(as_table(await read_stream(conn, user_id)))
        report = await verify_chain(conn)
        state = await conn.fetch("SELECT user_id, status, reason FROM credential_state ORDER BY user_id")
    finally:
        await conn.close()
    print("\nCredential state:")
    for row in state:
        print(f"  {row['user_id']:8s} {row['status']:8s} {row['reason'] or ''}")
    verdict = "intact" if report.intact else f"TAMPERED at {report.bad_position}: {report.reason}"
    head = f"head position {report.head_position}, hash {report.head_hash.hex()[:16]}…"
    print(f"\nverify: {verdict}, {report.checked} events, {head}")
    return 0 if report.intact else 1
