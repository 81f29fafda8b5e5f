"""`make bench`: run every benchmark and rewrite docs/benchmarks.md with what they printed.

Each benchmark runs as its own process (`python -m bench.<name>`), exactly as its make target
runs it, so the figures in the document are the ones a reader reproduces with the command shown
beside them. Their output is echoed as it comes and kept verbatim: the document never restates a
figure by hand. The machine (cores, memory, CPU, kernel, Python, PostgreSQL and its durability
settings) is recorded above them, because on a shared two-core machine the figures mean nothing
without it.

    make bench                                   # embedded PostgreSQL 16
    CREDLEDGER_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres make bench
    python -m bench.report --only append sync    # a subset; the document lists only what ran
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.database import server

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Benchmark:
    name: str  # the module under bench/ and the make target's suffix
    title: str
    measures: str
    target: str


BENCHMARKS = (
    Benchmark(
        "append",
        "Appends through the group-commit writer",
        "Appends/s from 1, 16 and 64 concurrent callers through the writer (lock, chain, COPY, commit), "
        "bare and with the service's inline projections, beside single-row INSERT transactions into "
        "an equivalent table from 16 connections (no lock, no chain) measured in the same run.",
        "issue 2: the writer at least matches the single-row baseline (ratio >= 1.0).",
    ),
    Benchmark(
        "rebuild",
        "Rebuilding the credential projection",
        "`projections rebuild --check` and the rebuild with its swap over 1,000,000 generated events "
        "(100,000 users), with one and two worker processes. Generation is not timed.",
        "issue 3: 100,000 events/s.",
    ),
    Benchmark(
        "verify",
        "Verifying the chain",
        "`credledger verify` over a 1,000,000-event log: recomputing every hash from the genesis, "
        "with one and two worker processes. Generation is not timed.",
        "issue 6: 200,000 events/s.",
    ),
    Benchmark(
        "sync",
        "Background sync",
        "Users synced/s against the simulator (its own process, answering at once) at concurrency 16 "
        "and 64, first pass and unchanged, beside bare PROPFIND requests at the same concurrency; "
        "the tick that finds nobody due at 10,000 and 100,000 users.",
        "issue 5: 1,000 users/s; the idle tick flat in the number of users.",
    ),
    Benchmark(
        "ingest",
        "End-to-end ingest",
        "Signed `POST /api/v1/events` (verify, validate, chain, inline projections, durable commit, "
        "201) from wrk at 64 connections against `serve` with 1 and 2 workers; p50/p99 under wrk and "
        "at half that rate from an open-loop generator; peak memory of the service's processes. "
        "Beside pgbench `-M prepared -c 16 -j 2` single-row INSERTs and the `eventsourcing` library "
        "from 16 threads, in the same run on the same server.",
        "issue 6: ingest/pgbench >= 1.0, >= 10x eventsourcing, p99 < 50 ms at half rate, "
        "peak memory < 200 MB.",
    ),
    Benchmark(
        "astrolabe",
        "Astrolabe app-password POSTs",
        "Astrolabe's app-password POST through the service (Basic auth, the Nextcloud check against "
        "the simulator, encryption, append) at concurrency 16 and 64, beside the simulator answering "
        "the same check directly.",
        "none set; measured so that a change shows.",
    ),
)


def machine() -> list[tuple[str, str]]:
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    total_kb = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal")), 0)
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line), "")
    return [
        ("cores", str(os.cpu_count())),
        ("CPU", model or platform.processor() or "unknown"),
        ("memory", f"{total_kb / 2**20:.1f} GiB"),
        ("kernel", platform.release()),
        ("Python", platform.python_version()),
    ]


async def postgres() -> list[tuple[str, str]]:
    """The server the benchmarks use, started once here only to describe it."""
    where = "CREDLEDGER_BENCH_DATABASE_URL" if os.environ.get("CREDLEDGER_BENCH_DATABASE_URL") else "embedded"
    async with server() as url:
        conn = await asyncpg.connect(url)
        try:
            settings = {
                name: await conn.fetchval(f"SHOW {name}")
                for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers")
            }
        finally:
            await conn.close()
    return [
        ("PostgreSQL", f"{settings['server_version']} ({where}; a fresh database per benchmark run)"),
        (
            "durability",
            f"fsync {settings['fsync']}, synchronous_commit {settings['synchronous_commit']}, "
            f"shared_buffers {settings['shared_buffers']}",
        ),
    ]


def without_password(url: str) -> str:
    """The URL as the document may show it: a password in it never reaches a file in clear."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def run(benchmark: Benchmark) -> tuple[str, int, float]:
    """Run one benchmark, echoing its standard output while keeping it; (output, exit code, seconds)."""
    print(f"\n== make bench-{benchmark.name}", flush=True)
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", f"bench.{benchmark.name}"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    lines = []
    for line in child.stdout:  # progress bars go to stderr, straight to the terminal
        print(line, end="", flush=True)
        lines.append(line)
    return "".join(lines).rstrip(), child.wait(), time.perf_counter() - started


def render(
    facts: list[tuple[str, str]], results: list[tuple[Benchmark, str, int, float]], started: datetime
) -> str:
    server_note = (
        f"CREDLEDGER_BENCH_DATABASE_URL={without_password(os.environ['CREDLEDGER_BENCH_DATABASE_URL'])} "
        if os.environ.get("CREDLEDGER_BENCH_DATABASE_URL")
        else ""
    )
    out = [
        "# Benchmarks",
        "",
        f"Written by `{server_note}make bench` (bench/report.py) on {started:%Y-%m-%d %H:%M} UTC: do not",
        "edit by hand, run it again. Every figure is printed by a benchmark beside a baseline measured in",
        "the same run on the same server. What the figures mean, what was tried and where the time goes:",
        "[performance.md](performance.md).",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in facts),
        "",
        "The load generators, the service, PostgreSQL and (for sync and Astrolabe) the Nextcloud",
        "simulator share these cores; on a shared virtual machine consecutive runs differ by up to 30%.",
    ]
    for benchmark, output, code, seconds in results:
        out += [
            "",
            f"## {benchmark.title}",
            "",
            benchmark.measures,
            "",
            f"Target: {benchmark.target}",
            "",
            "```sh",
            f"{server_note}make bench-{benchmark.name}    # python -m bench.{benchmark.name}",
            "```",
            "",
            f"Output ({seconds:.0f} s{'' if code == 0 else f', FAILED with exit status {code}'}):",
            "",
            "```",
            output or "(nothing printed)",
            "```",
        ]
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    names = [b.name for b in BENCHMARKS]
    parser.add_argument("--only", nargs="+", choices=names, help="run these benchmarks only")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "docs" / "benchmarks.md", help="the document to write"
    )
    args = parser.parse_args()
    started = datetime.now(UTC)
    facts = machine() + asyncio.run(postgres())
    chosen = [b for b in BENCHMARKS if args.only is None or b.name in args.only]
    results = [(b, *run(b)) for b in chosen]
    args.output.write_text(render(facts, results, started))
    print(f"\nwrote {args.output}")
    return max((code for _, _, code, _ in results), default=0)


if __name__ == "__main__":
    sys.exit(main())
