"""Envelope encryption: master keys wrap per-credential data keys, data keys seal app passwords.

AES-256-GCM throughout, with associated data that binds every ciphertext to its place: a wrapped
data key to its user and key id, a sealed secret to its user, key id and purpose. A ciphertext
copied into another user's event or row therefore fails to open instead of revealing anything.
Destroying a data key (crypto-shredding) makes every ciphertext under it unreadable for good,
which is how an immutable log can still forget a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from events.event_types import SealedSecret

KEY_BYTES = 32
NONCE_BYTES = 12
APP_PASSWORD_PURPOSE = "app-password"  # noqa: S105 (a label for associated data, not a password)


class InvalidKeyMaterial(ValueError):
    """A master key setting that cannot be used. The message never contains the key."""


class DecryptionFailed(Exception):
    """A ciphertext did not open: wrong key, wrong owner or purpose, or tampered bytes."""


@dataclass(frozen=True, slots=True)
class MasterKey:
    """A versioned key-encryption key. Its bytes never appear in a repr."""

    key_id: str
    key: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class MasterKeyRing:
    """The master keys in use, newest first: the newest wraps, any may unwrap."""

    keys: tuple[MasterKey, ...]

    @property
    def newest(self) -> MasterKey:
        return self.keys[0]

    def get(self, key_id: str) -> MasterKey:
        for key in self.keys:
            if key.key_id == key_id:
                return key
        raise DecryptionFailed(f"master key {key_id!r} is not configured")

    @classmethod
    def parse(cls, setting: str) -> MasterKeyRing:
        """`ID:BASE64KEY,ID:BASE64KEY…`, newest first, each key 32 bytes."""
        keys: list[MasterKey] = []
        for number, entry in enumerate((e.strip() for e in setting.split(",")), start=1):
            if not entry:
                continue
            key_id, sep, encoded = entry.partition(":")
            if not sep or not key_id or not key_id.replace("-", "").replace("_", "").isalnum():
                raise InvalidKeyMaterial(f"master key #{number}: expected ID:BASE64KEY with a plain ID")
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidKeyMaterial(f"master key {key_id!r}: not valid base64") from None
            if len(key) != KEY_BYTES:
                raise InvalidKeyMaterial(f"master key {key_id!r}: must be {KEY_BYTES} bytes, not {len(key)}")
            if any(k.key_id == key_id for k in keys):
                raise InvalidKeyMaterial(f"master key {key_id!r} is listed twice")
            keys.append(MasterKey(key_id, key))
        if not keys:
            raise InvalidKeyMaterial("no master key given")
        return cls(tuple(keys))


def generate_key() -> bytes:
    """256 random bits from the operating system."""
    return os.urandom(KEY_BYTES)


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key encrypted under a master key, as the user_keys table stores it."""

    master_key_id: str
    nonce: bytes
    ciphertext: bytes = field(repr=False)


def _data_key_context(user_id: str, key_id: str) -> bytes:
    return f"credledger/data-key/v1\x00{user_id}\x00{key_id}".encode()


def wrap_data_key(ring: MasterKeyRing, user_id: str, key_id: str, data_key: bytes) -> WrappedKey:
    """Encrypt a data key under the newest master key, bound to its user and id."""
    master = ring.newest
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(master.key).encrypt(nonce, data_key, _data_key_context(user_id, key_id))
    return WrappedKey(master.key_id, nonce, sealed)


def unwrap_data_key(ring: MasterKeyRing, user_id: str, key_id: str, wrapped: WrappedKey) -> bytes:
    """The data key, or DecryptionFailed (unknown master key, other user or id, tampering)."""
    master = ring.get(wrapped.master_key_id)
    try:
        return AESGCM(master.key).decrypt(
            wrapped.nonce, wrapped.ciphertext, _data_key_context(user_id, key_id)
        )
    except InvalidTag:
        raise DecryptionFailed(f"data key {key_id!r} does not open for this user") from None


def _secret_context(user_id: str, key_id: str, purpose: str) -> bytes:
    return f"credledger/secret/v1\x00{user_id}\x00{key_id}\x00{purpose}".encode()


def seal_secret(
    data_key: bytes, user_id: str, key_id: str, plaintext: str, purpose: str = APP_PASSWORD_PURPOSE
) -> SealedSecret:
    """Encrypt a secret under a data key, bound to its user, key id and purpose."""
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(data_key).encrypt(
        nonce, plaintext.encode(), _secret_context(user_id, key_id, purpose)
    )
    return SealedSecret(
        key_id=key_id,
        nonce=base64.b64encode(nonce).decode(),
        ciphertext=base64.b64encode(ciphertext).decode(),
    )


def open_secret(
    data_key: bytes, user_id: str, sealed: SealedSecret, purpose: str = APP_PASSWORD_PURPOSE
) -> str:
    """The plaintext of a sealed secret, or DecryptionFailed."""
    try:
        nonce = base64.b64decode(sealed.nonce, validate=True)
        ciphertext = base64.b64decode(sealed.ciphertext, validate=True)
        plaintext = AESGCM(data_key).decrypt(
            nonce, ciphertext, _secret_context(user_id, sealed.key_id, purpose)
        )
    except (InvalidTag, binascii.Error, ValueError):
        raise DecryptionFailed(f"secret under key {sealed.key_id!r} does not open for this user") from None
    return plaintext.decode()


def _fingerprint_key(master: MasterKey) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"credledger/fingerprint/v1"
    ).derive(master.key)


def fingerprint(ring: MasterKeyRing, user_id: str, secret: str) -> str:
    """`hmac-sha256:<master key id>:<hex>`: tells two provisionings apart without the secret.

    Keyed (not a plain hash) so that nobody without the master key can test a guess against it.
    """
    master = ring.newest
    mac = hmac.new(_fingerprint_key(master), f"{user_id}\x00{secret}".encode(), hashlib.sha256)
    return f"hmac-sha256:{master.key_id}:{mac.hexdigest()[:32]}"


def fingerprint_matches(ring: MasterKeyRing, user_id: str, secret: str, expected: str) -> bool:
    """Whether `secret` has fingerprint `expected`, compared in constant time.

    False when the fingerprint's master key is no longer configured.
    """
    scheme, _, rest = expected.partition(":")
    master_id, _, digest = rest.partition(":")
    if scheme != "hmac-sha256" or not digest:
        return False
    try:
        master = ring.get(master_id)
    except DecryptionFailed:
        return False
    mac = hmac.new(_fingerprint_key(master), f"{user_id}\x00{secret}".encode(), hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest()[:32], digest)
