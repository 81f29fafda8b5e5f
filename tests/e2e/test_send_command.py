"""`credledger send` against a stand-in endpoint that records requests and answers as scripted."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from receiver.commands.send_command import add_parser, send
from receiver.settings import Settings
from receiver.webhook_signatures import parse_secrets, verify
from tests.e2e.processes import free_port


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


SECRET = new_secret()


@dataclass(frozen=True)
class Reply:
    status: int = 201
    body: dict[str, Any] = field(default_factory=lambda: {"position": 1})
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    headers: CIMultiDict[str]
    body: bytes
    at: float


class Endpoint:
    """A stand-in for credledger's events route: records each request, answers from a script."""

    def __init__(self) -> None:
        self.url = ""
        self.received: list[Received] = []
        self.script: deque[Reply] = deque()

    def answer(self, *replies: Reply) -> None:
        self.script.extend(replies)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(CIMultiDict(request.headers), await request.read(), time.time()))
        reply = self.script.popleft() if self.script else Reply()
        await asyncio.sleep(reply.delay)
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    """The stand-in, listening on a free port of 127.0.0.1."""
    stand_in = Endpoint()
    app = web.Application()
    app.router.add_post("/api/v1/events", stand_in.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    stand_in.url = str(server.make_url("/api/v1/events"))
    yield stand_in
    await server.close()


def arguments(*argv: str) -> argparse.Namespace:
    """`argv` parsed by the real `send` parser."""
    parser = argparse.ArgumentParser(prog="credledger")
    add_parser(parser.add_subparsers())
    return parser.parse_args(["send", *argv])


async def run(url: str, *argv: str, secrets: str | None = SECRET, backoff: str = "0.01") -> int:
    """`credledger send` in a worker thread (it runs its own event loop), with tiny backoff."""
    args = arguments(
        "--url", url, "--type", "user.deleted", "--user", "alice", "--backoff-base", backoff, *argv
    )
    return await asyncio.to_thread(send, args, Settings(webhook_secrets=secrets))


async def test_the_request_verifies_and_carries_the_event(
    endpoint: Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    """One signed POST of {type, user_id, occurred_at, data}; the answer is printed on stdout."""
    endpoint.answer(Reply(201, {"position": 42}))
    assert await run(endpoint.url, "--data", '{"reason": "offboarding"}') == 0
    [request] = endpoint.received
    verified = verify(parse_secrets(SECRET), request.headers, request.body, now=time.time())
    assert verified.msg_id.startswith("msg_")
    assert request.headers["Content-Type"] == "application/json"
    event = json.loads(request.body)
    assert event["type"] == "user.deleted"
    assert event["user_id"] == "alice"
    assert event["data"] == {"reason": "offboarding"}
    assert abs(datetime.fromisoformat(event["occurred_at"]).timestamp() - time.time()) < 60
    assert json.loads(capsys.readouterr().out) == {"position": 42}


async def test_given_id_and_time_are_sent_as_given(endpoint: Endpoint) -> None:
    """--id becomes the webhook-id and --occurred-at is sent in UTC."""
    assert await run(endpoint.url, "--id", "msg_fixed", "--occurred-at", "2026-01-01T13:00:00+01:00") == 0
    [request] = endpoint.received
    assert request.headers["webhook-id"] == "msg_fixed"
    assert json.loads(request.body)["occurred_at"] == "2026-01-01T12:00:00Z"
    assert json.loads(request.body)["data"] == {}


async def test_a_503_is_retried_with_the_same_id_and_a_fresh_signature(endpoint: Endpoint) -> None:
    """The retry waits the Retry-After second, keeps the id, and is signed anew at its own time."""
    endpoint.answer(Reply(503, {"error": "busy"}, {"Retry-After": "1"}), Reply(201))
    assert await run(endpoint.url) == 0
    first, second = endpoint.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert second.at - first.at >= 1
    assert int(second.headers["webhook-timestamp"]) > int(first.headers["webhook-timestamp"])
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
    assert first.body == second.body
    for request in (first, second):
        verify(parse_secrets(SECRET), request.headers, request.body, now=request.at)


async def test_a_429_with_retry_after_zero_is_retried_at_once(endpoint: Endpoint) -> None:
    """Retry-After: 0 overrides the backoff, however long that would have been."""
    endpoint.answer(Reply(429, {"error": "slow down"}, {"Retry-After": "0"}), Reply(201))
    assert await run(endpoint.url, backoff="5") == 0
    first, second = endpoint.received
    assert second.at - first.at < 2


async def test_a_timeout_is_retried(endpoint: Endpoint) -> None:
    """An attempt that gets no answer within --timeout is retried with the same id."""
    endpoint.answer(Reply(201, delay=1.0), Reply(201))
    assert await run(endpoint.url, "--timeout", "0.2") == 0
    first, second = endpoint.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]


async def test_a_422_exits_1_without_retrying(endpoint: Endpoint, capsys: pytest.CaptureFixture[str]) -> None:
    """A permanent refusal is final, and the server's error reaches stderr."""
    endpoint.answer(Reply(422, {"error": "unknown event type"}))
    assert await run(endpoint.url) == 1
    assert len(endpoint.received) == 1
    assert "unknown event type" in capsys.readouterr().err


async def test_a_redirect_is_not_followed(endpoint: Endpoint) -> None:
    """A signed event goes only where it was pointed: a 307 is a refusal, not a detour."""
    endpoint.answer(Reply(307, {}, {"Location": "http://127.0.0.1:1/elsewhere"}))
    assert await run(endpoint.url) == 1
    assert len(endpoint.received) == 1


async def test_a_refused_connection_is_retried_until_exhausted(capsys: pytest.CaptureFixture[str]) -> None:
    """Nobody listening: every attempt is made, then exit 3."""
    url = f"http://127.0.0.1:{free_port()}/api/v1/events"
    assert await run(url, "--max-attempts", "3") == 3
    err = capsys.readouterr().err
    assert err.count("retrying in") == 2
    assert "gave up after 3 attempts" in err


async def test_the_secret_never_appears_in_the_output(
    endpoint: Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not on stdout or stderr, even through a run of failures."""
    endpoint.answer(*[Reply(503, {"error": "down"})] * 3)
    assert await run(endpoint.url, "--max-attempts", "3", "--secret", SECRET) == 3
    shown = capsys.readouterr()
    for text in (shown.out, shown.err):
        assert SECRET.removeprefix("whsec_") not in text


@pytest.mark.parametrize("data", ["[1, 2]", '"text"', "not json", '{"a": NaN}'])
async def test_bad_data_exits_2_before_any_request(
    endpoint: Endpoint, capsys: pytest.CaptureFixture[str], data: str
) -> None:
    """--data must be a JSON object; otherwise nothing is sent."""
    assert await run(endpoint.url, "--data", data) == 2
    assert endpoint.received == []
    assert "--data" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [("--occurred-at", "2026-01-01T12:00:00"), ("--occurred-at", "yesterday"), ("--id", "msg with spaces")],
)
async def test_bad_time_or_id_exits_2_before_any_request(endpoint: Endpoint, argv: tuple[str, str]) -> None:
    """A time without an offset, a non-time, or an id the receiver would refuse: nothing is sent."""
    assert await run(endpoint.url, *argv) == 2
    assert endpoint.received == []


async def test_without_a_secret_nothing_is_sent(
    endpoint: Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --secret, --secret-file or CREDLEDGER_WEBHOOK_SECRETS: exit 2, saying where to put one."""
    assert await run(endpoint.url, secrets=None) == 2
    assert endpoint.received == []
    assert "CREDLEDGER_WEBHOOK_SECRETS" in capsys.readouterr().err


async def test_the_secret_can_come_from_a_file(endpoint: Endpoint, tmp_path: Path) -> None:
    """--secret-file is read, trailing newline and all, and wins over nothing configured."""
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text(SECRET + "\n")
    assert await run(endpoint.url, "--secret-file", str(secret_file), secrets=None) == 0
    [request] = endpoint.received
    verify(parse_secrets(SECRET), request.headers, request.body, now=time.time())


async def test_a_bad_secret_file_is_a_usage_error(
    endpoint: Endpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that does not hold a secret is refused without quoting it."""
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text("whsec_tooshortbutsecret")
    assert await run(endpoint.url, "--secret-file", str(secret_file)) == 2
    assert endpoint.received == []
    assert "tooshortbutsecret" not in capsys.readouterr().err


async def test_every_configured_secret_signs(endpoint: Endpoint) -> None:
    """Signed with new and old, the event verifies at a receiver that still holds only the old one."""
    new, old = new_secret(), new_secret()
    assert await run(endpoint.url, secrets=f"{new},{old}") == 0
    [request] = endpoint.received
    receiver_key = parse_secrets(old)
    assert (
        verify(receiver_key, request.headers, request.body, now=time.time()).key_id == receiver_key[0].key_id
    )
