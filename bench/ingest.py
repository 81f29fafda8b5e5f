"""End-to-end ingest: signed POST /api/v1/events against `credledger serve`, beside the ceilings.

For 1 and 2 worker processes (`serve --workers N`, sharing the port), wrk (a separate process,
2 threads, 64 connections) sends pre-signed events, each webhook-id once, for --seconds. An event
counts when it is stored: verified, validated, appended to the chain with the inline projections,
committed with synchronous_commit on, answered 201. Then an open-loop generator at half that rate
measures p50/p99 latency, and the service's peak memory (all its processes) is reported.

In the same run, on the same server: pgbench -M prepared with single-row INSERT transactions into
an equivalent table at -c 16 -j 2 (the raw ceiling), and the `eventsourcing` library appending one
event per save from 16 threads (a peer); and, under the same wrk load, an aiohttp handler that
does nothing at all (bench/empty_handler.py): how far the HTTP framework alone gets on this machine.

    make bench-ingest
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import asyncpg
import psutil

from bench.database import fresh_database, server, server_version
from receiver.webhook_signatures import parse_secret, sign
from tests.e2e.processes import free_port
from tests.factories import new_webhook_secret

HERE = Path(__file__).resolve().parent


@dataclass
class IngestResult:
    workers: int
    events_per_second: float
    wrk_p50_ms: float
    wrk_p99_ms: float
    half_rate: float
    half_p50_ms: float
    half_p99_ms: float
    peak_pss_mb: float
    peak_rss_mb: float


def write_requests(path: Path, secret: str, count: int) -> None:
    """Pre-sign `count` distinct events, one per line, for the wrk script."""
    key = parse_secret(secret)
    stamp = int(time.time())
    with path.open("w") as out:
        for n in range(count):
            body = json.dumps(
                {
                    "type": "user.disabled" if n % 2 else "user.enabled",
                    "user_id": f"user{n % 10_000}",
                    "occurred_at": "2026-12-04T12:00:00+00:00",
                }
            )
            msg_id = f"msg_{uuid.uuid4().hex}"
            out.write(f"{msg_id}\t{stamp}\t{sign(key, msg_id, stamp, body.encode())}\t{body}\n")


async def wait_healthy(port: int) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)  # waiting for the service to listen
    raise RuntimeError("the service did not become ready")


async def sample_memory(pid: int, stop: asyncio.Event) -> tuple[float, float]:
    """Peak memory in MB of the service and all its worker processes: (PSS, RSS).

    PSS splits each shared page among the processes mapping it, so it is what the processes
    together cost the machine; summed RSS counts the interpreter and libraries once per worker.
    """
    peak_pss = peak_rss = 0.0
    root = psutil.Process(pid)
    while not stop.is_set():
        try:
            infos = [p.memory_full_info() for p in (root, *root.children(recursive=True))]
            peak_pss = max(peak_pss, sum(getattr(i, "pss", i.rss) for i in infos) / 2**20)
            peak_rss = max(peak_rss, sum(i.rss for i in infos) / 2**20)
        except psutil.Error:
            pass
        await asyncio.sleep(0.2)  # the sampling interval
    return peak_pss, peak_rss


def parse_wrk(output: str) -> tuple[float, float]:
    def latency(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        if match is None:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return latency("50"), latency("99")


async def run_wrk(port: int, requests_file: Path, seconds: float, connections: int) -> str:
    """wrk's report: 2 threads, `connections` connections, cycling through the pre-signed requests."""
    wrk = await asyncio.create_subprocess_exec(
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{seconds:.0f}s",
        "--latency",
        "-s",
        str(HERE / "wrk_events.lua"),
        f"http://127.0.0.1:{port}",
        env={**os.environ, "REQUESTS_FILE": str(requests_file), "WRK_THREADS": "2"},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await wrk.communicate()
    return out.decode()


async def empty_handler_rate(seconds: float, connections: int, workdir: Path) -> float:
    """Requests/s of an aiohttp handler that does nothing, under the same wrk load."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.empty_handler", "--port", str(port)
    )
    try:
        await wait_healthy(port)
        requests_file = workdir / "requests-empty.tsv"
        write_requests(requests_file, new_webhook_secret(), int(30_000 * seconds))
        out = await run_wrk(port, requests_file, seconds, connections)
    finally:
        process.terminate()
        await process.wait()
    match = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk: {out[-500:]}")
    return float(match.group(1))


async def ingest(db: str, workers: int, seconds: float, connections: int, workdir: Path) -> IngestResult:
    secret = new_webhook_secret()
    port = free_port()
    env = {
        **os.environ,
        "CREDLEDGER_DATABASE_URL": db,
        "CREDLEDGER_PORT": str(port),
        "CREDLEDGER_WEBHOOK_SECRETS": secret,
        "CREDLEDGER_SYNC_ENABLED": "false",
        "CREDLEDGER_LOG_FORMAT": "json",
        "CREDLEDGER_DATA_DIR": str(workdir),
    }
    log = (workdir / f"serve-{workers}.log").open("w")
    service = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "receiver.cli", "serve", "--workers", str(workers), env=env, stderr=log
    )
    try:
        await wait_healthy(port)
        requests_file = workdir / f"requests-{workers}.tsv"
        write_requests(requests_file, secret, int(30_000 * seconds))
        stop = asyncio.Event()
        memory = asyncio.create_task(sample_memory(service.pid, stop))
        owner = await asyncpg.connect(db)
        before = await owner.fetchval("SELECT count(*) FROM events")
        out = await run_wrk(port, requests_file, seconds, connections)
        stored = await owner.fetchval("SELECT count(*) FROM events") - before
        rate = stored / seconds
        p50, p99 = parse_wrk(out)
        generator = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.constant_rate",
            "--url",
            f"http://127.0.0.1:{port}",
            "--secret",
            secret,
            "--rate",
            str(max(rate / 2, 1)),
            "--seconds",
            str(seconds),
            stdout=asyncio.subprocess.PIPE,
        )
        half = json.loads((await generator.communicate())[0])
        stop.set()
        peak_pss, peak_rss = await memory
        await owner.close()
        return IngestResult(
            workers, rate, p50, p99, half["achieved_rate"], half["p50_ms"], half["p99_ms"], peak_pss, peak_rss
        )
    finally:
        service.terminate()
        await service.wait()
        log.close()


def connection_args(db: str) -> list[str]:
    parts = urlsplit(db)
    host = parse_qs(parts.query).get("host", [parts.hostname or "127.0.0.1"])[0]
    return [
        "-h",
        host,
        "-p",
        str(parts.port or 5432),
        "-U",
        parts.username or "postgres",
        parts.path.lstrip("/"),
    ]


_PGBENCH_TABLE = """
CREATE TABLE pgbench_events (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
CREATE SEQUENCE pgbench_position OWNED BY pgbench_events.position;
"""

_PGBENCH_SCRIPT = r"""\set user random(1, 10000)
INSERT INTO pgbench_events (position, event_id, source, stream, stream_version, type, schema_version,
  data, metadata, occurred_at, recorded_at, prev_hash, hash)
VALUES (nextval('pgbench_position'), md5(random()::text), 'bench', 'user' || :user,
  currval('pgbench_position'), 'user.disabled', 1, '{"reason": "admin"}', '{"request_id": "r"}',
  now(), now(), '\x0000000000000000000000000000000000000000000000000000000000000000',
  '\x0000000000000000000000000000000000000000000000000000000000000000');
"""


async def pgbench(db: str, seconds: float, workdir: Path) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset, pgserver copes
        import pgserver._commands

    owner = await asyncpg.connect(db)
    await owner.execute(_PGBENCH_TABLE)
    await owner.close()
    script = workdir / "pgbench.sql"
    script.write_text(_PGBENCH_SCRIPT)
    binary = Path(pgserver._commands.POSTGRES_BIN_PATH) / "pgbench"
    process = await asyncio.create_subprocess_exec(
        str(binary),
        "-n",
        "-M",
        "prepared",
        "-c",
        "16",
        "-j",
        "2",
        "-T",
        f"{seconds:.0f}",
        "-f",
        str(script),
        *connection_args(db),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.decode())
    if match is None:
        raise RuntimeError(f"pgbench: {err.decode()[-500:]}")
    return float(match.group(1))


async def eventsourcing_peer(db: str, seconds: float) -> float:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.eventsourcing_peer",
        "--url",
        db,
        "--seconds",
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    return float(json.loads(out)["events_per_second"])


async def main(seconds: float, connections: int) -> None:
    with tempfile.TemporaryDirectory(prefix="credledger-ingest-") as tmp:
        workdir = Path(tmp)
        async with server() as url:
            print(f"PostgreSQL {await server_version(url)}, {os.cpu_count()} cores, {seconds:.0f} s per run")
            async with fresh_database(url) as db:
                ceiling = await pgbench(db, seconds, workdir)
            print(f"pgbench -M prepared -c 16 -j 2, single-row INSERT: {ceiling:9,.0f} tps")
            async with fresh_database(url) as db:
                peer = await eventsourcing_peer(db, seconds)
            print(f"eventsourcing, 16 threads, one event per save:  {peer:9,.0f} events/s")
            empty = await empty_handler_rate(seconds, connections, workdir)
            print(
                f"aiohttp handler doing nothing, wrk -c{connections}: {empty:9,.0f} requests/s "
                f"= {empty / ceiling:.2f} of pgbench (the framework's own ceiling here)"
            )
            for workers in (1, 2):
                async with fresh_database(url) as db:
                    r = await ingest(db, workers, seconds, connections, workdir)
                name = f"credledger, {workers} worker{'s' if workers > 1 else ' '}, wrk -c{connections}"
                print(
                    f"{name}: {r.events_per_second:9,.0f} events/s "
                    f"(p50 {r.wrk_p50_ms:.1f} ms, p99 {r.wrk_p99_ms:.1f} ms)\n"
                    f"    = {r.events_per_second / ceiling:.2f} of pgbench, "
                    f"{r.events_per_second / peer:.1f}x eventsourcing; "
                    f"at half that rate ({r.half_rate:,.0f}/s): p50 {r.half_p50_ms:.1f} ms, "
                    f"p99 {r.half_p99_ms:.1f} ms; peak memory {r.peak_pss_mb:.0f} MB PSS "
                    f"({r.peak_rss_mb:.0f} MB summed RSS)"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.connections))
