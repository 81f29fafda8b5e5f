"""Astrolabe's provisioning POST against `credledger serve`, beside the Nextcloud call it must make.

The simulator (python -m sync.nextcloud_simulator, users user0 … user{N-1} with app passwords made
before the clock starts) and `credledger serve` (fresh database, sync off) run as processes of
their own. A third process, an asyncio aiohttp client, sends POST /api/v1/users/{uid}/app-password
as Astrolabe does (Basic login name + app password, body {"username", "scopes"}) with 16 and then
64 requests in flight, for --seconds each, one user per request. A request counts when answered
2xx: the password checked against the simulator (OCS cloud/user), sealed under a new data key,
appended as credential.provisioned with its projection, committed. Any other answer fails the run.

Baseline, in the same run at the same concurrency: the same OCS cloud/user call made straight at
the simulator, the Nextcloud round trip the service makes for each POST. The service's peak memory is
sampled throughout.

    make bench-astrolabe
    python -m bench.astrolabe [--seconds S] [--users N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.database import fresh_database, server, server_version
from bench.ingest import sample_memory
from bench.sync import SEED, start_simulator
from sync.nextcloud_simulator.__main__ import derived_password
from tests.e2e.processes import free_port, start_service, wait_until_healthy

PATH = "/api/v1/users/{uid}/app-password"
OCS_USER = "/ocs/v2.php/cloud/user?format=json"


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000 if ordered else float("nan")


async def drive(
    target: str, url: str, concurrency: int, seconds: float, first: int, last: int
) -> dict[str, Any]:
    """Closed loop: `concurrency` workers each send the next request as soon as the last is answered."""
    users = [f"user{n}" for n in range(first, last)]
    # Basic headers are built before the clock starts: the client's own cost stays out of the figure.
    auth = ["Basic " + base64.b64encode(f"{u}:{derived_password(SEED, u)}".encode()).decode() for u in users]
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    sample: list[str] = []
    taken = 0

    async def one(http: aiohttp.ClientSession, n: int) -> None:
        if target == "service":
            body = {"username": users[n], "scopes": ["files"]}
            request = http.post(
                f"{url}{PATH.format(uid=users[n])}", json=body, headers={"Authorization": auth[n]}
            )
        else:
            # Exactly what the service's NextcloudClient.fetch_user sends.
            headers = {"Authorization": auth[n], "OCS-APIRequest": "true", "Accept": "application/json"}
            request = http.get(f"{url}{OCS_USER}", headers=headers)
        sent = time.perf_counter()
        try:
            async with request as response:
                text = await response.text()
                status = str(response.status)
        except aiohttp.ClientError as error:
            text, status = repr(error), f"error:{type(error).__name__}"
        latencies.append(time.perf_counter() - sent)
        statuses[status] += 1
        if not status.startswith("2") and len(sample) < 3:
            sample.append(f"{status} {users[n]}: {text[:300]}")

    async def worker(http: aiohttp.ClientSession, deadline: float) -> None:
        nonlocal taken
        while time.perf_counter() < deadline:
            if target == "service" and taken >= len(users):
                return  # out of fresh users: reported as "exhausted", which fails the run
            n, taken = taken % len(users), taken + 1  # the baseline may reuse users: it stores nothing
            await one(http, n)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http, started + seconds) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    failures = sum(count for status, count in statuses.items() if not status.startswith("2"))
    return {
        "requests": len(latencies),
        "rate": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "non_2xx": failures,
        "statuses": dict(statuses),
        "sample": sample,
        "used": min(taken, len(users)),
        "exhausted": target == "service" and taken >= len(users),
    }


async def run_driver(target: str, url: str, concurrency: int, seconds: float, first: int, last: int) -> Any:
    """The client in a process of its own, so it does not share an event loop or a GIL with anyone."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.astrolabe",
        "--drive",
        target,
        "--url",
        url,
        "--concurrency",
        str(concurrency),
        "--seconds",
        str(seconds),
        "--first",
        str(first),
        "--last",
        str(last),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"the {target} client exited with {process.returncode}")
    return json.loads(out)


def fail_unless_clean(name: str, result: Any, log: Path) -> None:
    if result["non_2xx"] or result["exhausted"]:
        tail = "".join(log.read_text().splitlines(keepends=True)[-10:])
        raise SystemExit(
            f"{name}: {result['non_2xx']} non-2xx answers {result['statuses']}"
            f"{', ran out of users (raise --users)' if result['exhausted'] else ''}; the figure is "
            f"meaningless.\nfirst failures: {result['sample']}\nservice log tail:\n{tail}"
        )


async def measure(db: str, nextcloud_url: str, seconds: float, users: int, workdir: Path) -> None:
    port = free_port()
    log = workdir / "serve.log"
    # Sync off: the scheduler would otherwise start syncing the users as they are provisioned, and
    # this measures the POST. The failure rate limits need no setting: they count failures only.
    service = start_service(
        port, log, database_url=db, nextcloud_url=nextcloud_url, sync_enabled="false", data_dir=str(workdir)
    )
    try:
        await wait_until_healthy(port, service)
        stop = asyncio.Event()
        memory = asyncio.create_task(sample_memory(service.pid, stop))
        fresh, stored = 0, 0
        for concurrency in (16, 64):
            base = await run_driver("simulator", nextcloud_url, concurrency, seconds, 0, users)
            fail_unless_clean(f"simulator at c={concurrency}", base, log)
            ours = await run_driver("service", f"http://127.0.0.1:{port}", concurrency, seconds, fresh, users)
            fresh += ours["used"]
            stored += ours["requests"] - ours["non_2xx"]
            print(
                f"concurrency {concurrency:2d}: credledger POST {ours['rate']:6,.0f} req/s "
                f"(p50 {ours['p50_ms']:5.1f} ms, p99 {ours['p99_ms']:5.1f} ms, non-2xx {ours['non_2xx']}) | "
                f"simulator OCS cloud/user direct {base['rate']:6,.0f} req/s "
                f"(p50 {base['p50_ms']:5.1f} ms, p99 {base['p99_ms']:5.1f} ms) | "
                f"ratio {ours['rate'] / base['rate']:.2f}",
                flush=True,
            )
            fail_unless_clean(f"credledger at c={concurrency}", ours, log)
        stop.set()
        peak_pss, peak_rss = await memory
        assert service.poll() is None, "the service exited during the run"
    finally:
        service.terminate()
        service.wait()
    # Every 2xx must be a new credential: an "already stored" answer would skip the append.
    owner = await asyncpg.connect(db)
    try:
        provisioned = await owner.fetchval(
            "SELECT count(*) FROM events WHERE type = 'credential.provisioned'"
        )
    finally:
        await owner.close()
    if provisioned != stored:
        raise SystemExit(f"{stored} answers 2xx but {provisioned} credential.provisioned events")
    print(
        f"credential.provisioned events: {provisioned:,}; credledger serve peak memory "
        f"{peak_pss:.0f} MB PSS ({peak_rss:.0f} MB RSS)"
    )


async def main(seconds: float, users: int) -> None:
    simulator, nextcloud_url = await start_simulator(users)
    try:
        with tempfile.TemporaryDirectory(prefix="credledger-astrolabe-") as tmp:
            async with server() as url:
                print(
                    f"PostgreSQL {await server_version(url)}, {os.cpu_count()} cores, {seconds:.0f} s per "
                    f"run; simulator with {users:,} users in its own process",
                    flush=True,
                )
                async with fresh_database(url) as db:
                    await measure(db, nextcloud_url, seconds, users, Path(tmp))
    finally:
        simulator.terminate()
        await simulator.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=50_000, help="more than the POSTs of both runs together")
    # The client process (run_driver) is this module again, with these options.
    parser.add_argument("--drive", choices=("service", "simulator"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--last", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        result = asyncio.run(
            drive(args.drive, args.url, args.concurrency, args.seconds, args.first, args.last)
        )
        print(json.dumps(result))
    else:
        asyncio.run(main(args.seconds, args.users))
