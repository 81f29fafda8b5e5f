"""Starting the project's commands as real OS processes, as an operator or a crash would meet them."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import aiohttp

ROOT = Path(__file__).resolve().parents[2]


def environment(**settings: str) -> dict[str, str]:
    """The current environment with CREDLEDGER_* settings replaced by `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDLEDGER_")}
    env.update({f"CREDLEDGER_{k.upper()}": v for k, v in settings.items()})
    env["PYTHONPATH"] = str(ROOT)
    return env


def credledger(*args: str, timeout: float = 120, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run `credledger ARGS` to completion and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "receiver.cli", *args],
        env=environment(**settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def start_append_worker(
    url: str, *, name: str, tasks: int, count: int, stdout: IO[str] | int = subprocess.PIPE
) -> subprocess.Popen[str]:
    """An append worker process; its stdout lists each acknowledged append.

    A pipe holds only 64 KiB: pass a file as `stdout` unless the caller reads as the worker writes.
    """
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.e2e.append_worker",
            "--url",
            url,
            "--name",
            name,
            "--tasks",
            str(tasks),
            "--count",
            str(count),
        ],
        env=environment(),
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_service(port: int, log: Path, *args: str, **settings: str) -> subprocess.Popen[str]:
    """`credledger serve` on 127.0.0.1:`port`, its JSON log lines appended to the file `log`.

    A file, not a pipe: a busy service fills a 64 KiB pipe nobody reads, then blocks on its log.
    """
    with log.open("a") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "receiver.cli", "serve", *args],
            env=environment(host="127.0.0.1", port=str(port), log_format="json", **settings),
            stdout=subprocess.DEVNULL,
            stderr=sink,
            text=True,
            cwd=ROOT,
        )


async def wait_until_healthy(port: int, process: subprocess.Popen[str], within: float = 60) -> None:
    """Poll /healthz until it answers 200; fail early if the process died."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while True:
            assert process.poll() is None, (
                f"the service exited: {process.stderr.read() if process.stderr else ''}"
            )
            assert time.monotonic() < deadline, "the service did not become healthy"
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)  # polling interval while the process starts
