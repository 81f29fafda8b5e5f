"""`send`: sign one event the Standard Webhooks way and post it to credledger, retrying until it is taken."""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import json
import random
import re
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
from yarl import URL

from receiver.settings import Settings
from receiver.webhook_signatures import (
    HEADER_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    InvalidSecret,
    WebhookSecret,
    is_valid_msg_id,
    parse_secrets,
    sign,
)

EXIT_SENT = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_GAVE_UP = 3

DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_BACKOFF_BASE_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0
# A Retry-After longer than this would leave a hook script hanging; we wait this long at most.
MAX_RETRY_AFTER_SECONDS = 300.0
# The answer is a small JSON document; a misdirected URL must not make us buffer a download.
MAX_RESPONSE_BYTES = 1024 * 1024

_RETRY_AFTER_SECONDS = re.compile(r"[0-9]{1,9}")
# Jitter spreads the retries of many hook scripts that failed together; it need not be unpredictable.
_jitter = random.SystemRandom()

HELP = "sign an event and post it to credledger's events endpoint, retrying until it is taken"
DESCRIPTION = """\
Build the event {"type", "user_id", "occurred_at", "data"}, sign it with a Standard Webhooks
secret and POST it to URL. 429, 5xx, timeouts and connection errors are retried with
exponential backoff and jitter (Retry-After is honoured), each attempt signed afresh with a new
timestamp but the same webhook-id, so credledger stores the event once however often it arrives.

The secret comes from --secret-file, else from CREDLEDGER_WEBHOOK_SECRETS; every secret of the list
signs (newest first), so a rotation works whichever side learns the new secret first. --secret
exists for tests: a secret on the command line is visible to every user in `ps` and lands in shell
history."""
EPILOG = """\
exit status: 0 accepted (the answer, e.g. the position, is printed on stdout); 1 refused with a
4xx other than 429 (the server's error is printed on stderr); 2 usage error, nothing sent;
3 gave up after --max-attempts."""


class _UsageError(Exception):
    """The command line or configuration is wrong; nothing was sent."""


@dataclass(frozen=True)
class Delivery:
    """One event, ready to post: the same id and body on every attempt, signed anew each time."""

    url: URL
    msg_id: str
    body: bytes
    signers: tuple[WebhookSecret, ...]

    def headers(self, timestamp: int) -> dict[str, str]:
        """The request headers for an attempt made at `timestamp`."""
        signatures = " ".join(sign(secret.key, self.msg_id, timestamp, self.body) for secret in self.signers)
        return {
            "Content-Type": "application/json",
            HEADER_ID: self.msg_id,
            HEADER_TIMESTAMP: str(timestamp),
            HEADER_SIGNATURE: signatures,
        }


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `credledger send`."""
    parser = commands.add_parser(
        "send",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url",
        required=True,
        help="the full URL of the events endpoint, e.g. http://127.0.0.1:8080/api/v1/events",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--secret-file",
        type=Path,
        metavar="PATH",
        help="a file holding the whsec_… secret (or a comma-separated list, newest first)",
    )
    source.add_argument(
        "--secret",
        metavar="WHSEC",
        help="the secret itself; avoid: visible in `ps` and shell history. Default: "
        "CREDLEDGER_WEBHOOK_SECRETS",
    )
    parser.add_argument(
        "--type", required=True, dest="event_type", metavar="TYPE", help="event type, e.g. user.deleted"
    )
    parser.add_argument(
        "--user", required=True, dest="user_id", metavar="USER_ID", help="the Nextcloud user id"
    )
    parser.add_argument("--data", metavar="JSON", help="the event's data as a JSON object (default {})")
    parser.add_argument(
        "--occurred-at",
        metavar="ISO",
        help="when it happened, ISO-8601 with an offset (default: now)",
    )
    parser.add_argument(
        "--id",
        dest="msg_id",
        metavar="MSG_ID",
        help="the webhook-id: pass the same one to resend the same event (default: msg_ + random)",
    )
    parser.add_argument(
        "--max-attempts",
        type=_whole_number(1, 100),
        default=DEFAULT_MAX_ATTEMPTS,
        metavar="N",
        help=f"attempts before giving up (default {DEFAULT_MAX_ATTEMPTS})",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds(minimum=0.001),
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="S",
        help=f"seconds allowed for each attempt (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    # Hidden: only tests need retries faster than a second apart.
    parser.add_argument(
        "--backoff-base",
        type=_seconds(minimum=0.0),
        default=DEFAULT_BACKOFF_BASE_SECONDS,
        help=argparse.SUPPRESS,
    )
    parser.set_defaults(run=send)


def send(args: argparse.Namespace, settings: Settings) -> int:
    """Post the event described by `args`; the exit status says whether it was taken."""
    try:
        delivery = prepare(args, settings)
    except _UsageError as error:
        print(f"credledger send: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(
        deliver(
            delivery,
            max_attempts=args.max_attempts,
            attempt_timeout=args.timeout,
            backoff_base=args.backoff_base,
        )
    )


def prepare(args: argparse.Namespace, settings: Settings) -> Delivery:
    """Check everything the command line says and build the body, before anything is sent."""
    body = {
        "type": args.event_type,
        "user_id": args.user_id,
        "occurred_at": _occurred_at(args.occurred_at),
        "data": _data(args.data),
    }
    msg_id = args.msg_id if args.msg_id is not None else "msg_" + secrets.token_urlsafe(18)
    if not is_valid_msg_id(msg_id):
        raise _UsageError("--id must be 1 to 256 visible ASCII characters")
    return Delivery(
        url=_url(args.url),
        msg_id=msg_id,
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
        signers=tuple(_secrets(args, settings)),
    )


async def deliver(
    delivery: Delivery, *, max_attempts: int, attempt_timeout: float, backoff_base: float
) -> int:
    """Post until a 2xx, a permanent refusal, or `max_attempts`; returns the exit status."""
    outcome = "nothing tried"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=attempt_timeout)) as session:
        for attempt in range(1, max_attempts + 1):
            retry_after: str | None = None
            try:
                # Redirects are not followed: a signed event goes only where the operator pointed it.
                async with session.post(
                    delivery.url,
                    data=delivery.body,
                    headers=delivery.headers(int(time.time())),
                    allow_redirects=False,
                ) as response:
                    status = response.status
                    answer = await _read_answer(response)
                    retry_after = response.headers.get("Retry-After")
            except TimeoutError:
                outcome = f"no answer within {attempt_timeout:g} s"
            except aiohttp.ClientError as error:
                outcome = f"{type(error).__name__}: {error}"
            else:
                if 200 <= status < 300:
                    if answer:
                        print(answer)
                    return EXIT_SENT
                if status != 429 and status < 500:
                    print(f"credledger send: refused with HTTP {status}: {answer}", file=sys.stderr)
                    return EXIT_REFUSED
                outcome = f"HTTP {status}"
            if attempt == max_attempts:
                break
            # A lost answer may hide a committed event: the retry reuses the id, and credledger
            # answers it with the original result instead of storing it twice.
            delay = _delay(attempt, retry_after, backoff_base)
            print(
                f"credledger send: attempt {attempt} of {max_attempts}: {outcome}; retrying in {delay:.1f} s",
                file=sys.stderr,
            )
            await asyncio.sleep(delay)
    print(f"credledger send: gave up after {max_attempts} attempts; last: {outcome}", file=sys.stderr)
    return EXIT_GAVE_UP


async def _read_answer(response: aiohttp.ClientResponse) -> str:
    """The answer's text, or its first MAX_RESPONSE_BYTES."""
    received = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        received += chunk
        if len(received) >= MAX_RESPONSE_BYTES:
            break
    return received[:MAX_RESPONSE_BYTES].decode(errors="replace").strip()


def _delay(attempt: int, retry_after: str | None, base: float) -> float:
    """Retry-After when the server gave one, else exponential backoff with jitter, capped."""
    asked = _retry_after_seconds(retry_after)
    if asked is not None:
        return min(asked, MAX_RETRY_AFTER_SECONDS)
    # Exponent capped so that a large attempt count cannot overflow a float.
    ceiling = min(MAX_BACKOFF_SECONDS, base * 2.0 ** min(attempt - 1, 30))
    return ceiling * _jitter.uniform(0.5, 1.0)


def _retry_after_seconds(value: str | None) -> float | None:
    if value is None:
        return None
    value = value.strip()
    if _RETRY_AFTER_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _url(text: str) -> URL:
    try:
        url = URL(text)
    except (TypeError, ValueError):
        raise _UsageError("--url is not a URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise _UsageError("--url must be an http:// or https:// URL with a host")
    return url


def _secrets(args: argparse.Namespace, settings: Settings) -> list[WebhookSecret]:
    if args.secret is not None:
        text, origin = args.secret, "--secret"
    elif args.secret_file is not None:
        text, origin = _read_secret_file(args.secret_file), f"the secret file {args.secret_file}"
    elif settings.webhook_secrets:
        text, origin = settings.webhook_secrets, "CREDLEDGER_WEBHOOK_SECRETS"
    else:
        raise _UsageError("no secret: set CREDLEDGER_WEBHOOK_SECRETS or pass --secret-file")
    try:
        return parse_secrets(text)
    except InvalidSecret as error:
        raise _UsageError(f"{origin}: {error}") from None


def _read_secret_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise _UsageError(f"cannot read the secret file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        # Not the codec's message: it quotes the offending byte.
        raise _UsageError(f"the secret file {path} is not UTF-8 text") from None


def _data(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        # NaN and Infinity are not JSON; Python's parser would accept and then re-emit them.
        value = json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        raise _UsageError("--data is not valid JSON") from None
    if not isinstance(value, dict):
        raise _UsageError('--data must be a JSON object, e.g. \'{"reason": "admin"}\'')
    return value


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _occurred_at(text: str | None) -> str:
    if text is None:
        moment = datetime.now(UTC)
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise _UsageError("--occurred-at is not an ISO-8601 time") from None
        if moment.tzinfo is None:
            raise _UsageError("--occurred-at needs an offset, e.g. 2026-01-01T12:00:00Z or +02:00")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _whole_number(minimum: int, maximum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be {minimum} to {maximum}")
        return value

    return parse


def _seconds(minimum: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not minimum <= value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be at least {minimum:g} seconds")
        return value

    return parse
