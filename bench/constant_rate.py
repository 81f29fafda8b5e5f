"""An open-loop load generator, run as a process of its own: N signed events/s, latencies in JSON.

Requests are sent on a fixed schedule whatever the answers take (open loop), so queueing in the
service shows in the latency instead of slowing the generator down.

    python -m bench.constant_rate --url URL --secret whsec_… --rate 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import aiohttp

from bench import event_loop
from receiver.webhook_signatures import parse_secret, sign
from tests.faults.load import deliveries


async def run(url: str, secret: str, rate: float, seconds: float) -> dict[str, float]:
    key = parse_secret(secret)
    queue = deliveries(int(rate * seconds) + 1, users=10_000)
    # Signed before the clock starts (the timestamps stay well inside the 5-minute window), so
    # the generator's own work does not land in the latencies it reports.
    stamp = int(time.time())
    signed = [
        {
            "webhook-id": delivery.msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(key, delivery.msg_id, stamp, delivery.body),
            "Content-Type": "application/json",
        }
        for delivery in queue
    ]
    latencies: list[float] = []
    failures = 0
    started = time.perf_counter()

    async def one(http: aiohttp.ClientSession, n: int) -> None:
        nonlocal failures
        delivery, headers = queue[n], signed[n]
        sent = time.perf_counter()
        try:
            async with http.post(f"{url}/api/v1/events", data=delivery.body, headers=headers) as response:
                await response.read()
                if response.status not in (200, 201):
                    failures += 1
        except aiohttp.ClientError:
            failures += 1
        latencies.append(time.perf_counter() - sent)

    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as http:
        tasks = []
        for n in range(len(queue) - 1):
            due = started + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the schedule of an open-loop generator
            tasks.append(asyncio.create_task(one(http, n)))
        await asyncio.gather(*tasks)
    latencies.sort()
    return {
        "sent": len(latencies),
        "failures": failures,
        "achieved_rate": len(latencies) / (time.perf_counter() - started),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    # On uvloop, like the service: the generator must not be the slower side.
    print(json.dumps(event_loop.run(run(args.url, args.secret, args.rate, args.seconds))))


if __name__ == "__main__":
    main()
