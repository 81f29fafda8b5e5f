"""Standard Webhooks v1 secrets, signing and verification, raising nothing but our own errors on bad input.

The signed content is `{webhook-id}.{webhook-timestamp}.{raw body}` and a signature is
`v1,` + base64(HMAC-SHA256(key, content)); see docs/nextcloud-hooks.md and the specification at
standardwebhooks.com. Everything a sender controls is checked against a fixed shape (length, alphabet)
before it is used, so a hostile header costs a few regular-expression matches and is refused with a
`SignatureError` whose `reason` is one short word, never a ValueError that a handler would turn into a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"

WHSEC_PREFIX = "whsec_"
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64
DEFAULT_TOLERANCE = 300

MAX_ID_CHARS = 256
MAX_SIGNATURES = 20
# Twenty entries of the longest version known (`v1a,` + 88 characters of Ed25519) fit with room to spare.
MAX_SIGNATURE_HEADER_CHARS = 4096

# Visible ASCII: what header parsers pass through unchanged and every sender can produce.
_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_ID_CHARS}}}")
# Twelve digits reach the year 33658; int() never sees a sign, a space, a non-ASCII digit or 4,300 digits.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_VERSION = re.compile(r"v[0-9a-z]{1,8}")
# The base64 of a 32-byte HMAC-SHA256: 43 characters and one `=`.
_V1_SIGNATURE = re.compile(r"[A-Za-z0-9+/]{43}=")

Reason = Literal[
    "missing_headers",
    "malformed_id",
    "malformed_timestamp",
    "timestamp_too_old",
    "timestamp_too_new",
    "malformed_signature",
    "no_matching_signature",
]


class InvalidSecret(ValueError):
    """A configured secret is not `whsec_` + base64 of 24 to 64 bytes; the message never holds it."""


class SignatureError(Exception):
    """A request's signature headers were missing, malformed, stale or signed by no key we hold."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason)
        self.reason: Reason = reason


@dataclass(frozen=True)
class WebhookSecret:
    """One HMAC key and its public id: the first 8 hex digits of SHA-256 of the key bytes."""

    key: bytes = field(repr=False)
    key_id: str = field(init=False)

    def __post_init__(self) -> None:
        # 32 bits of a hash of a key of at least 192 random bits: names the key, reveals nothing of it.
        object.__setattr__(self, "key_id", hashlib.sha256(self.key).hexdigest()[:8])

    def __str__(self) -> str:
        return f"webhook secret {self.key_id}"


@dataclass(frozen=True)
class Verified:
    """What a valid signature vouches for: the sender's message id, its timestamp, and which key signed."""

    msg_id: str
    timestamp: int
    key_id: str


def parse_secret(text: str) -> bytes:
    """The key bytes of one `whsec_…` secret; InvalidSecret when it is not one."""
    text = text.strip()
    if not text.startswith(WHSEC_PREFIX):
        raise InvalidSecret(f"a webhook secret must start with {WHSEC_PREFIX!r}")
    encoded = text[len(WHSEC_PREFIX) :]
    # Some generators drop the padding; restore exactly what is missing, then decode strictly.
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(padded.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        # `from None`: the chained error could quote the input.
        raise InvalidSecret("a webhook secret must be base64 after its 'whsec_' prefix") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise InvalidSecret(
            f"a webhook secret must decode to {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, not {len(key)}"
        )
    return key


def parse_secrets(comma_separated: str) -> list[WebhookSecret]:
    """Every secret of a comma-separated list, newest first; InvalidSecret names a bad one by its place."""
    pieces = comma_separated.split(",")
    secrets: list[WebhookSecret] = []
    for place, piece in enumerate(pieces, start=1):
        if not piece.strip():
            raise InvalidSecret(f"webhook secret {place} of {len(pieces)} is empty")
        try:
            secrets.append(WebhookSecret(parse_secret(piece)))
        except InvalidSecret as error:
            raise InvalidSecret(f"webhook secret {place} of {len(pieces)}: {error}") from None
    return secrets


def is_valid_msg_id(msg_id: str) -> bool:
    """Whether `verify` accepts this webhook-id: 1 to 256 characters of visible ASCII."""
    return _ID.fullmatch(msg_id) is not None


def sign(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of `body` sent as message `msg_id` at `timestamp` (Unix seconds)."""
    return "v1," + base64.b64encode(_digest(secret, msg_id, str(timestamp), body)).decode("ascii")


def verify(
    secrets: Sequence[WebhookSecret],
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE,
) -> Verified:
    """Check the request's signature headers against the raw `body`; SignatureError says why not.

    Any signature in the header may match any of `secrets` (rotation). `now` is the receiver's clock in
    Unix seconds; a timestamp more than `tolerance` seconds from it, either way, is refused.
    """
    msg_id, timestamp_text, signature_header = _signature_headers(headers)
    if _ID.fullmatch(msg_id) is None:
        raise SignatureError("malformed_id")
    if _TIMESTAMP.fullmatch(timestamp_text) is None:
        raise SignatureError("malformed_timestamp")
    signatures = _v1_signatures(signature_header)

    timestamp = int(timestamp_text)
    # Written as "not within" so that a NaN clock fails closed instead of passing both tests.
    if not timestamp >= now - tolerance:
        raise SignatureError("timestamp_too_old")
    if not timestamp <= now + tolerance:
        raise SignatureError("timestamp_too_new")

    for secret in secrets:
        expected = _digest(secret.key, msg_id, timestamp_text, body)
        for signature in signatures:
            if hmac.compare_digest(expected, signature):
                return Verified(msg_id=msg_id, timestamp=timestamp, key_id=secret.key_id)
    raise SignatureError("no_matching_signature")


def _digest(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def _signature_headers(headers: Mapping[str, str]) -> tuple[str, str, str]:
    """The three headers, found whatever their case; a repeated one is refused, not picked from."""
    wanted: dict[str, Reason] = {
        HEADER_ID: "malformed_id",
        HEADER_TIMESTAMP: "malformed_timestamp",
        HEADER_SIGNATURE: "malformed_signature",
    }
    found: dict[str, str] = {}
    # items(), not get(): a CIMultiDict yields every copy of a header, and two proxies could each pick
    # a different copy of an ambiguous one.
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in wanted:
            if lowered in found:
                raise SignatureError(wanted[lowered])
            found[lowered] = value.strip()
    msg_id = found.get(HEADER_ID, "")
    timestamp = found.get(HEADER_TIMESTAMP, "")
    signature = found.get(HEADER_SIGNATURE, "")
    if not (msg_id and timestamp and signature):
        raise SignatureError("missing_headers")
    return msg_id, timestamp, signature


def _v1_signatures(header: str) -> list[bytes]:
    """The decoded v1 signatures of a header; other versions are skipped, anything unparseable refused."""
    if len(header) > MAX_SIGNATURE_HEADER_CHARS:
        raise SignatureError("malformed_signature")
    entries = header.split()
    if not entries or len(entries) > MAX_SIGNATURES:
        raise SignatureError("malformed_signature")
    signatures: list[bytes] = []
    for entry in entries:
        version, comma, payload = entry.partition(",")
        if not comma or not payload or _VERSION.fullmatch(version) is None:
            raise SignatureError("malformed_signature")
        if version != "v1":
            continue
        if _V1_SIGNATURE.fullmatch(payload) is None:
            raise SignatureError("malformed_signature")
        # The pattern admits only valid base64 of 32 bytes, so this cannot raise.
        signatures.append(base64.b64decode(payload))
    return signatures
