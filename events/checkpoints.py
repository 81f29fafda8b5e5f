"""Signed checkpoints: the statement over the log's size and head hash, its Ed25519 signature, the keys.

The signed bytes are the statement as canonical JSON (events.canonical): keys sorted, no white
space, the head hash in lowercase hex, the time as `YYYY-MM-DDTHH:MM:SS.ffffffZ`. A key is named by
the first 16 hex characters of the SHA-256 of its 32 raw public bytes. The JSON document an auditor
keeps adds the signature and the public key (base64) to the statement's fields, so anyone can check
it with any Ed25519 implementation; what proves anything is checking it against a public key the
auditor obtained and kept beforehand, not against the key the document carries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from events.canonical import canonical_json, canonical_time
from events.errors import EventLogError

ALGORITHM: Literal["ed25519"] = "ed25519"
KEY_BYTES = 32
SIGNATURE_BYTES = 64
HASH_BYTES = 32
KEY_ID_HEX_CHARS = 16
MAX_LOG_SIZE = 2**63 - 1

_FIELDS = frozenset({"log_size", "head_hash", "signed_at", "key_id", "algorithm", "signature", "public_key"})
_HEX_HASH = re.compile(r"^[0-9a-f]{64}$")
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_CANONICAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


class InvalidCheckpoint(EventLogError, ValueError):
    """A checkpoint document or public key that cannot even be read. Never quotes a key."""


class InvalidSigningKey(EventLogError, ValueError):
    """A signing key setting that cannot be used. The message never contains the key."""


RefusalKind = Literal["foreign", "bad_signature"]


class CheckpointRefused(EventLogError):
    """A well-formed checkpoint that proves nothing: signed by another key, or not validly signed."""

    def __init__(self, kind: RefusalKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def key_id_for(public_key: bytes) -> str:
    """The key's short name: the first 16 hex characters of SHA-256 over its raw bytes."""
    return hashlib.sha256(public_key).hexdigest()[:KEY_ID_HEX_CHARS]


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _decode_b64(text: str, size: int, what: str, error: type[ValueError]) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise error(f"{what} is not valid base64") from None
    if len(raw) != size:
        raise error(f"{what} must be {size} bytes, not {len(raw)}")
    return raw


def parse_public_key(text: str) -> bytes:
    """An Ed25519 public key given as base64 of its 32 raw bytes; raises InvalidCheckpoint."""
    return _decode_b64(text, KEY_BYTES, "the public key", InvalidCheckpoint)


def parse_public_key_document(text: str) -> bytes:
    """A trusted key as kept: bare base64, or the JSON of GET /api/v1/audit/public-key.

    In the JSON form, `algorithm` and `key_id` are checked when present; raises InvalidCheckpoint.
    """
    text = text.strip()
    if not text.startswith("{"):
        return parse_public_key(text)
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidCheckpoint("the public key is neither base64 nor a JSON document") from None
    encoded = document.get("public_key") if isinstance(document, dict) else None
    if not isinstance(encoded, str):
        raise InvalidCheckpoint("the public key document has no `public_key` string")
    if document.get("algorithm", ALGORITHM) != ALGORITHM:
        raise InvalidCheckpoint(f"the public key document's algorithm is not {ALGORITHM!r}")
    key = parse_public_key(encoded)
    if document.get("key_id", key_id_for(key)) != key_id_for(key):
        raise InvalidCheckpoint("the public key document's key_id does not belong to its public key")
    return key


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The Ed25519 key checkpoints are signed with. The private half never appears in a repr."""

    private_key: Ed25519PrivateKey = field(repr=False)
    public_key: bytes
    key_id: str

    @classmethod
    def from_private(cls, private_key: Ed25519PrivateKey) -> SigningKey:
        public = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return cls(private_key, public, key_id_for(public))

    @classmethod
    def generate(cls) -> SigningKey:
        """A new key from the operating system's randomness."""
        return cls.from_private(Ed25519PrivateKey.generate())

    @classmethod
    def from_base64(cls, setting: str) -> SigningKey:
        """CREDLEDGER_SIGNING_KEY's spelling: base64 of the 32 raw private bytes."""
        raw = _decode_b64(setting, KEY_BYTES, "the signing key", InvalidSigningKey)
        return cls.from_private(Ed25519PrivateKey.from_private_bytes(raw))

    def private_base64(self) -> str:
        """The private key in the setting's spelling: only for the development key file."""
        raw = self.private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return _b64(raw)

    @property
    def public_base64(self) -> str:
        return _b64(self.public_key)


def checkpoint_statement(*, log_size: int, head_hash: bytes, key_id: str, signed_at: datetime) -> bytes:
    """The exact bytes a checkpoint's signature covers."""
    return canonical_json(
        {
            "head_hash": head_hash.hex(),
            "key_id": key_id,
            "log_size": log_size,
            "signed_at": canonical_time(signed_at),
        }
    ).encode()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement that the log held `log_size` events ending in `head_hash` at `signed_at`."""

    log_size: int
    head_hash: bytes
    signed_at: datetime
    key_id: str
    signature: bytes
    public_key: bytes

    def statement(self) -> bytes:
        return checkpoint_statement(
            log_size=self.log_size, head_hash=self.head_hash, key_id=self.key_id, signed_at=self.signed_at
        )

    def to_document(self) -> dict[str, Any]:
        """The JSON document an auditor keeps: the statement's fields, the signature and the key."""
        return {
            "log_size": self.log_size,
            "head_hash": self.head_hash.hex(),
            "signed_at": canonical_time(self.signed_at),
            "key_id": self.key_id,
            "algorithm": ALGORITHM,
            "signature": _b64(self.signature),
            "public_key": _b64(self.public_key),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_document(), indent=2)

    @classmethod
    def from_document(cls, document: Any) -> Checkpoint:
        """Read a document made by `to_document`; raises InvalidCheckpoint naming what is wrong."""
        if not isinstance(document, dict):
            raise InvalidCheckpoint("a checkpoint is a JSON object")
        unknown = sorted(str(k) for k in document if k not in _FIELDS)
        if unknown:
            raise InvalidCheckpoint(f"unknown fields: {', '.join(unknown)}")
        missing = sorted(_FIELDS - {"algorithm"} - document.keys())
        if missing:
            raise InvalidCheckpoint(f"missing fields: {', '.join(missing)}")
        if document.get("algorithm", ALGORITHM) != ALGORITHM:
            raise InvalidCheckpoint(f"the algorithm must be {ALGORITHM!r}")
        size = document["log_size"]
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_LOG_SIZE:
            raise InvalidCheckpoint("log_size must be a non-negative integer")
        head_hash = document["head_hash"]
        if not isinstance(head_hash, str) or not _HEX_HASH.match(head_hash):
            raise InvalidCheckpoint("head_hash must be 64 lowercase hex characters")
        key_id = document["key_id"]
        if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
            raise InvalidCheckpoint("key_id must be 16 lowercase hex characters")
        for name in ("signed_at", "signature", "public_key"):
            if not isinstance(document[name], str):
                raise InvalidCheckpoint(f"{name} must be a string")
        return cls(
            log_size=size,
            head_hash=bytes.fromhex(head_hash),
            signed_at=_parse_time(document["signed_at"]),
            key_id=key_id,
            signature=_decode_b64(document["signature"], SIGNATURE_BYTES, "the signature", InvalidCheckpoint),
            public_key=parse_public_key(document["public_key"]),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Checkpoint:
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            raise InvalidCheckpoint("not a JSON document") from None
        return cls.from_document(document)


def _parse_time(text: str) -> datetime:
    # Only the canonical spelling: any other would not give back the bytes that were signed.
    if not _CANONICAL_TIME.match(text):
        raise InvalidCheckpoint("signed_at must read YYYY-MM-DDTHH:MM:SS.ffffffZ")
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidCheckpoint("signed_at is not a valid time") from None


def sign_checkpoint(
    private_key: SigningKey, log_size: int, head_hash: bytes, signed_at: datetime
) -> Checkpoint:
    """Sign that the log holds `log_size` events and the last one's hash is `head_hash`."""
    if not 0 <= log_size <= MAX_LOG_SIZE:
        raise ValueError("log_size must be a non-negative 64-bit integer")
    if len(head_hash) != HASH_BYTES:
        raise ValueError(f"head_hash must be {HASH_BYTES} bytes")
    statement = checkpoint_statement(
        log_size=log_size, head_hash=head_hash, key_id=private_key.key_id, signed_at=signed_at
    )
    return Checkpoint(
        log_size=log_size,
        head_hash=head_hash,
        signed_at=signed_at.astimezone(UTC),
        key_id=private_key.key_id,
        signature=private_key.private_key.sign(statement),
        public_key=private_key.public_key,
    )


def verify_checkpoint_signature(checkpoint: Checkpoint, trusted_public_key: bytes | None) -> None:
    """Raise CheckpointRefused unless the trusted key signed exactly this statement.

    With `trusted_public_key` None the checkpoint's own key is used: that proves only that the
    document is consistent with itself, not who signed it.
    """
    if key_id_for(checkpoint.public_key) != checkpoint.key_id:
        raise CheckpointRefused(
            "foreign",
            f"foreign signature: the checkpoint names key {checkpoint.key_id}, but carries the public "
            f"key {key_id_for(checkpoint.public_key)}",
        )
    trusted = checkpoint.public_key if trusted_public_key is None else trusted_public_key
    trusted_id = key_id_for(trusted)
    if checkpoint.key_id != trusted_id:
        raise CheckpointRefused(
            "foreign",
            f"foreign signature: the checkpoint is signed by key {checkpoint.key_id}, "
            f"not by the trusted key {trusted_id}",
        )
    try:
        Ed25519PublicKey.from_public_bytes(trusted).verify(checkpoint.signature, checkpoint.statement())
    except (InvalidSignature, ValueError):
        raise CheckpointRefused(
            "bad_signature",
            f"bad signature: the statement is not what key {trusted_id} signed "
            "(it was changed after signing, or the signature is not genuine)",
        ) from None
