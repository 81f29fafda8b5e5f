"""A retrying load generator: pre-built events, each sent until acknowledged, with its same webhook-id."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp

from receiver.webhook_signatures import parse_secret, sign


@dataclass
class Delivery:
    """One event to deliver: its id and body never change between attempts."""

    msg_id: str
    body: bytes


@dataclass
class LoadReport:
    """What the senders saw: the position each event was acknowledged with, and every status."""

    acknowledged: dict[str, int] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    connection_errors: int = 0


def deliveries(count: int, users: int = 50) -> list[Delivery]:
    """`count` distinct user.disabled/enabled events, built before any timing starts."""
    built = []
    for n in range(count):
        body = {
            "type": "user.disabled" if n % 2 else "user.enabled",
            "user_id": f"user{n % users}",
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        built.append(Delivery(f"msg_{uuid.uuid4().hex}", json.dumps(body).encode()))
    return built


async def deliver_all(
    base_url: str,
    secret: str,
    queue: list[Delivery],
    *,
    concurrency: int = 16,
    report: LoadReport | None = None,
    milestones: dict[int, asyncio.Event] | None = None,
    deadline: float = 120.0,
) -> LoadReport:
    """Send every delivery until a 2xx, retrying connection errors and 5xx like a webhook sender.

    `milestones` maps a number of acknowledged events to an event set when that many are.
    """
    report = report or LoadReport()
    key = parse_secret(secret)
    stop_at = time.monotonic() + deadline
    waiting = list(reversed(queue))

    async def sender(http: aiohttp.ClientSession) -> None:
        while waiting:
            delivery = waiting.pop()
            while True:
                assert time.monotonic() < stop_at, "deliveries did not complete in time"
                stamp = int(time.time())
                headers = {
                    "webhook-id": delivery.msg_id,
                    "webhook-timestamp": str(stamp),
                    "webhook-signature": sign(key, delivery.msg_id, stamp, delivery.body),
                    "Content-Type": "application/json",
                }
                try:
                    async with http.post(
                        f"{base_url}/api/v1/events", data=delivery.body, headers=headers
                    ) as r:
                        report.statuses[r.status] += 1
                        if r.status in (200, 201):
                            report.acknowledged[delivery.msg_id] = (await r.json())["position"]
                            for count, reached in (milestones or {}).items():
                                if len(report.acknowledged) >= count:
                                    reached.set()
                            break
                        assert r.status in (429, 502, 503, 504), (r.status, await r.text())
                except (aiohttp.ClientConnectionError, TimeoutError):
                    report.connection_errors += 1
                await asyncio.sleep(0.05)  # a sender's backoff before the retry

    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await asyncio.gather(*(sender(http) for _ in range(concurrency)))
    return report
