"""Envelope encryption: what opens, what does not, and what never shows."""

from __future__ import annotations

import base64

import pytest

from events.crypto import (
    DecryptionFailed,
    InvalidKeyMaterial,
    MasterKey,
    MasterKeyRing,
    fingerprint,
    fingerprint_matches,
    generate_key,
    open_secret,
    seal_secret,
    unwrap_data_key,
    wrap_data_key,
)
from events.event_types import SealedSecret

PASSWORD = "Abcde-fghij-kmnop-qrstw-xyzAB"


def ring(*ids: str) -> MasterKeyRing:
    return MasterKeyRing(tuple(MasterKey(i, generate_key()) for i in ids))


def test_a_sealed_secret_opens_for_its_user() -> None:
    """Round trip under the same data key, user and key id."""
    key = generate_key()
    sealed = seal_secret(key, "alice", "dk1", PASSWORD)
    assert open_secret(key, "alice", sealed) == PASSWORD


def test_a_secret_moved_to_another_user_does_not_open() -> None:
    """The user id is associated data: a copied ciphertext fails for anyone else."""
    key = generate_key()
    sealed = seal_secret(key, "alice", "dk1", PASSWORD)
    with pytest.raises(DecryptionFailed):
        open_secret(key, "mallory", sealed)


def test_a_secret_relabelled_with_another_key_id_does_not_open() -> None:
    """The key id is associated data too."""
    key = generate_key()
    sealed = seal_secret(key, "alice", "dk1", PASSWORD)
    with pytest.raises(DecryptionFailed):
        open_secret(key, "alice", SealedSecret("dk2", sealed.nonce, sealed.ciphertext))


def test_a_secret_sealed_for_another_purpose_does_not_open() -> None:
    """Purpose binds a ciphertext to what it is for."""
    key = generate_key()
    sealed = seal_secret(key, "alice", "dk1", PASSWORD, purpose="something-else")
    with pytest.raises(DecryptionFailed):
        open_secret(key, "alice", sealed)


def test_a_tampered_ciphertext_does_not_open() -> None:
    """GCM authenticates: one flipped bit is a failure, not garbage."""
    key = generate_key()
    sealed = seal_secret(key, "alice", "dk1", PASSWORD)
    raw = bytearray(base64.b64decode(sealed.ciphertext))
    raw[0] ^= 1
    forged = SealedSecret(sealed.key_id, sealed.nonce, base64.b64encode(bytes(raw)).decode())
    with pytest.raises(DecryptionFailed):
        open_secret(key, "alice", forged)


def test_the_ciphertext_does_not_contain_the_plaintext() -> None:
    """Nothing of the password is visible in what the log stores."""
    sealed = seal_secret(generate_key(), "alice", "dk1", PASSWORD)
    assert PASSWORD not in repr(sealed)
    assert PASSWORD.encode() not in base64.b64decode(sealed.ciphertext)


def test_a_wrapped_data_key_unwraps_for_its_user_and_id_only() -> None:
    """Wrapping binds the data key to its user and key id."""
    keys = ring("k1")
    data_key = generate_key()
    wrapped = wrap_data_key(keys, "alice", "dk1", data_key)
    assert unwrap_data_key(keys, "alice", "dk1", wrapped) == data_key
    with pytest.raises(DecryptionFailed):
        unwrap_data_key(keys, "bob", "dk1", wrapped)


def test_the_newest_master_key_wraps_and_older_ones_still_unwrap() -> None:
    """After adding a key in front, old wraps open and new wraps use the new key."""
    old = ring("k1")
    wrapped_old = wrap_data_key(old, "alice", "dk1", b"x" * 32)
    both = MasterKeyRing((MasterKey("k2", generate_key()), old.keys[0]))
    assert unwrap_data_key(both, "alice", "dk1", wrapped_old) == b"x" * 32
    assert wrap_data_key(both, "alice", "dk2", b"y" * 32).master_key_id == "k2"


def test_an_unknown_master_key_is_a_decryption_failure() -> None:
    """A wrap made by a key that is no longer configured cannot be opened."""
    wrapped = wrap_data_key(ring("gone"), "alice", "dk1", generate_key())
    with pytest.raises(DecryptionFailed, match="not configured"):
        unwrap_data_key(ring("k1"), "alice", "dk1", wrapped)


def test_the_setting_parses_newest_first() -> None:
    """`ID:BASE64,ID:BASE64` keeps its order."""
    a, b = base64.b64encode(b"a" * 32).decode(), base64.b64encode(b"b" * 32).decode()
    parsed = MasterKeyRing.parse(f"k2:{a}, k1:{b}")
    assert [k.key_id for k in parsed.keys] == ["k2", "k1"]
    assert parsed.newest.key == b"a" * 32


@pytest.mark.parametrize(
    "setting",
    ["", "nocolon", ":QUJD", "k1:not base64!", "k1:" + base64.b64encode(b"short").decode(), "k 1:QUJD"],
)
def test_bad_settings_are_refused_without_echoing_the_key(setting: str) -> None:
    """Each malformed entry is an error whose message holds no key material."""
    with pytest.raises(InvalidKeyMaterial) as raised:
        MasterKeyRing.parse(setting)
    secret_part = setting.partition(":")[2]
    if secret_part:
        assert secret_part not in str(raised.value)


def test_a_key_id_listed_twice_is_refused() -> None:
    """Two keys under one id would make unwrapping ambiguous."""
    key = base64.b64encode(b"a" * 32).decode()
    with pytest.raises(InvalidKeyMaterial, match="twice"):
        MasterKeyRing.parse(f"k1:{key},k1:{key}")


def test_key_bytes_never_appear_in_a_repr() -> None:
    """Printing a ring by accident shows ids, not keys."""
    keys = ring("k1")
    assert repr(keys.newest.key) not in repr(keys)


def test_fingerprints_tell_passwords_apart_and_match_their_own() -> None:
    """Same password, same fingerprint; another password or user, another one."""
    keys = ring("k1")
    first = fingerprint(keys, "alice", PASSWORD)
    assert first == fingerprint(keys, "alice", PASSWORD)
    assert first != fingerprint(keys, "alice", PASSWORD + "x")
    assert first != fingerprint(keys, "bob", PASSWORD)
    assert fingerprint_matches(keys, "alice", PASSWORD, first)
    assert not fingerprint_matches(keys, "alice", "wrong-password-123456789", first)
    assert PASSWORD not in first
