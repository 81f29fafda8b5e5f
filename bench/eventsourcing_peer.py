"""The peer: the Python `eventsourcing` library appending one event per save from 16 threads.

Run as a process of its own (its PostgreSQL recorder uses psycopg and threads):

    python -m bench.eventsourcing_peer --url postgresql://… --seconds 10 --threads 16
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate


class Credential(Aggregate):
    """One aggregate per save, created with its one event."""


def run(url: str, seconds: float, threads: int) -> dict[str, float]:
    parts = urlsplit(url)
    socket_dir = parse_qs(parts.query).get("host", [None])[0]
    os.environ.update(
        {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.path.lstrip("/"),
            "POSTGRES_HOST": socket_dir or parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": parts.username or "postgres",
            "POSTGRES_PASSWORD": parts.password or "",
            "POSTGRES_POOL_SIZE": str(threads),
            "CREATE_TABLE": "y",
        }
    )
    app: Application[Any] = Application()
    saved = [0] * threads
    stop_at = time.perf_counter() + seconds

    def worker(index: int) -> None:
        while time.perf_counter() < stop_at:
            app.save(Credential())
            saved[index] += 1

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    app.close()
    return {"events": sum(saved), "events_per_second": sum(saved) / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    print(json.dumps(run(args.url, args.seconds, args.threads)))


if __name__ == "__main__":
    main()
