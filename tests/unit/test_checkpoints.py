"""Signed checkpoints without a database: the statement, signing, refusing, the JSON document, the key."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from events.checkpoint_proof import judge
from events.checkpoints import (
    Checkpoint,
    CheckpointRefused,
    InvalidCheckpoint,
    InvalidSigningKey,
    SigningKey,
    key_id_for,
    parse_public_key_document,
    sign_checkpoint,
    verify_checkpoint_signature,
)
from events.verify import ChainReport
from receiver.key_material import DEV_SIGNING_KEY_FILE, load_signing_key
from receiver.settings import Settings
from tests.secret_watch import watch

HEAD = hashlib.sha256(b"the head").digest()
SIGNED_AT = datetime(2026, 12, 4, 10, 30, 0, 123456, tzinfo=UTC)


@pytest.fixture
def key() -> SigningKey:
    """A fresh signing key whose private half is watched for leaks."""
    key = SigningKey.generate()
    watch(key.private_base64())
    return key


@pytest.fixture
def signed(key: SigningKey) -> Checkpoint:
    return sign_checkpoint(key, 42, HEAD, SIGNED_AT)


def test_a_signed_checkpoint_verifies_against_its_key(key: SigningKey, signed: Checkpoint) -> None:
    """Round trip: signed with the key, checked against the same key's public half."""
    verify_checkpoint_signature(signed, key.public_key)


def test_the_signature_covers_the_canonical_statement(key: SigningKey, signed: Checkpoint) -> None:
    """Any Ed25519 implementation can check it over the documented bytes."""
    statement = (
        '{"head_hash":"' + HEAD.hex() + '","key_id":"' + key.key_id + '","log_size":42,'
        '"signed_at":"2026-12-04T10:30:00.123456Z"}'
    ).encode()
    assert signed.statement() == statement
    Ed25519PublicKey.from_public_bytes(key.public_key).verify(signed.signature, statement)


def test_the_key_id_is_the_start_of_the_public_keys_sha256(key: SigningKey) -> None:
    """16 hex characters of SHA-256 over the 32 raw public bytes."""
    assert key.key_id == hashlib.sha256(key.public_key).hexdigest()[:16]
    assert key_id_for(key.public_key) == key.key_id


def test_signing_in_another_timezone_signs_the_same_utc_time(key: SigningKey) -> None:
    """The statement always spells the time in UTC."""
    local = SIGNED_AT.astimezone(timezone(timedelta(hours=2)))
    assert (
        sign_checkpoint(key, 42, HEAD, local).statement()
        == sign_checkpoint(key, 42, HEAD, SIGNED_AT).statement()
    )


@pytest.mark.parametrize(
    "change",
    [
        {"log_size": 41},
        {"head_hash": bytes(32)},
        {"signed_at": SIGNED_AT + timedelta(microseconds=1)},
    ],
    ids=["size", "head", "time"],
)
def test_a_changed_statement_is_refused_as_a_bad_signature(
    key: SigningKey, signed: Checkpoint, change: dict[str, Any]
) -> None:
    """Changing any signed field after signing breaks the signature."""
    tampered = dataclasses.replace(signed, **change)
    with pytest.raises(CheckpointRefused, match="bad signature") as refused:
        verify_checkpoint_signature(tampered, key.public_key)
    assert refused.value.kind == "bad_signature"


def test_a_checkpoint_by_another_key_is_refused_as_foreign(signed: Checkpoint) -> None:
    """Validly signed, but not by the key the auditor trusts."""
    trusted = SigningKey.generate()
    with pytest.raises(CheckpointRefused, match="foreign signature") as refused:
        verify_checkpoint_signature(signed, trusted.public_key)
    assert refused.value.kind == "foreign"
    assert trusted.key_id in refused.value.reason


def test_a_foreign_signature_under_the_trusted_key_id_is_refused(key: SigningKey, signed: Checkpoint) -> None:
    """Relabelling another key's checkpoint with the trusted key and id does not make it verify."""
    forger = SigningKey.generate()
    forged = dataclasses.replace(
        sign_checkpoint(forger, 42, HEAD, SIGNED_AT), key_id=key.key_id, public_key=key.public_key
    )
    with pytest.raises(CheckpointRefused, match="bad signature"):
        verify_checkpoint_signature(forged, key.public_key)


def test_a_key_id_that_does_not_belong_to_the_key_is_refused(key: SigningKey, signed: Checkpoint) -> None:
    """The id is derived from the key: a document naming another id is refused even without a trusted key."""
    relabelled = dataclasses.replace(signed, key_id="0" * 16)
    with pytest.raises(CheckpointRefused, match="foreign"):
        verify_checkpoint_signature(relabelled, None)


def test_without_a_trusted_key_the_documents_own_key_is_used(signed: Checkpoint) -> None:
    """Self-consistency is all that can be checked then: it passes for an untouched document."""
    verify_checkpoint_signature(signed, None)


def test_the_json_document_round_trips(signed: Checkpoint) -> None:
    """to_json then from_json gives the same checkpoint, and it still verifies."""
    again = Checkpoint.from_json(signed.to_json())
    assert again == signed
    verify_checkpoint_signature(again, signed.public_key)


def test_the_json_document_holds_the_statement_signature_and_key(key: SigningKey, signed: Checkpoint) -> None:
    """Hex head hash, canonical time, base64 signature and public key."""
    document = json.loads(signed.to_json())
    assert document == {
        "log_size": 42,
        "head_hash": HEAD.hex(),
        "signed_at": "2026-12-04T10:30:00.123456Z",
        "key_id": key.key_id,
        "algorithm": "ed25519",
        "signature": base64.b64encode(signed.signature).decode(),
        "public_key": key.public_base64,
    }


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"log_size": "42"}, "log_size"),
        ({"log_size": True}, "log_size"),
        ({"log_size": -1}, "log_size"),
        ({"head_hash": HEAD.hex().upper()}, "head_hash"),
        ({"signed_at": "2026-12-04T10:30:00Z"}, "signed_at"),
        ({"signed_at": "2026-12-04T10:30:00.123456+00:00"}, "signed_at"),
        ({"signature": "not base64!"}, "signature is not valid base64"),
        ({"public_key": base64.b64encode(b"short").decode()}, "must be 32 bytes"),
        ({"algorithm": "rsa"}, "algorithm"),
        ({"note": "trust me"}, "unknown fields: note"),
    ],
    ids=[
        "size-text",
        "size-bool",
        "size-negative",
        "hash-upper",
        "time-short",
        "time-offset",
        "sig",
        "key",
        "algo",
        "extra",
    ],
)
def test_a_malformed_document_is_refused_naming_the_field(
    signed: Checkpoint, change: dict[str, Any], problem: str
) -> None:
    """Only the exact shape `to_json` writes is read."""
    document = {**signed.to_document(), **change}
    with pytest.raises(InvalidCheckpoint, match=problem):
        Checkpoint.from_json(json.dumps(document))


def test_a_document_missing_a_field_is_refused(signed: Checkpoint) -> None:
    """The missing fields are named."""
    document = signed.to_document()
    del document["signature"]
    with pytest.raises(InvalidCheckpoint, match="missing fields: signature"):
        Checkpoint.from_document(document)


@given(st.text(max_size=300) | st.binary(max_size=300))
def test_reading_any_text_gives_a_checkpoint_or_invalid_checkpoint(text: str | bytes) -> None:
    """Nothing an auditor's file holds makes reading fail in any other way."""
    with contextlib.suppress(InvalidCheckpoint):
        Checkpoint.from_json(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=70),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3)
    ),
    max_leaves=8,
)


@given(st.dictionaries(st.sampled_from([*sorted(Checkpoint.__dataclass_fields__), "algorithm"]), json_values))
def test_reading_any_object_of_the_right_keys_gives_a_checkpoint_or_invalid_checkpoint(
    document: dict[str, Any],
) -> None:
    """Wrong types and values in the known fields are refused cleanly, never crash the reader."""
    with contextlib.suppress(InvalidCheckpoint):
        Checkpoint.from_document(document)


def test_a_kept_public_key_reads_as_base64_or_as_the_served_document(key: SigningKey) -> None:
    """Both ways an auditor keeps the key give the same 32 bytes."""
    served = json.dumps({"key_id": key.key_id, "algorithm": "ed25519", "public_key": key.public_base64})
    assert parse_public_key_document(key.public_base64 + "\n") == key.public_key
    assert parse_public_key_document(served) == key.public_key


def test_a_public_key_document_with_another_keys_id_is_refused(key: SigningKey) -> None:
    """A key_id that does not belong to the key means the document was edited."""
    document = json.dumps({"key_id": "0" * 16, "algorithm": "ed25519", "public_key": key.public_base64})
    with pytest.raises(InvalidCheckpoint, match="key_id does not belong"):
        parse_public_key_document(document)


@given(st.text(max_size=200))
def test_reading_any_kept_key_gives_32_bytes_or_invalid_checkpoint(text: str) -> None:
    """Whatever the key file holds, reading it never fails in another way."""
    with contextlib.suppress(InvalidCheckpoint):
        assert len(parse_public_key_document(text)) == 32


def test_the_private_key_is_never_in_a_repr(key: SigningKey, signed: Checkpoint) -> None:
    """Neither the key's repr nor a checkpoint's shows the private half."""
    secret = key.private_base64()
    raw = base64.b64decode(secret)
    for text in (repr(key), str(key), repr(signed), signed.to_json()):
        assert secret not in text
        assert raw.hex() not in text


def test_the_signing_key_setting_round_trips(key: SigningKey) -> None:
    """CREDLEDGER_SIGNING_KEY's spelling gives back the same key."""
    again = SigningKey.from_base64(key.private_base64())
    assert (again.public_key, again.key_id) == (key.public_key, key.key_id)


@pytest.mark.parametrize(
    "setting", ["not base64!", base64.b64encode(b"x" * 31).decode()], ids=["text", "short"]
)
def test_a_malformed_signing_key_is_refused_without_echoing_it(setting: str) -> None:
    """The error says what is wrong, never what was given."""
    with pytest.raises(InvalidSigningKey) as refused:
        SigningKey.from_base64(setting)
    assert setting not in str(refused.value)


def test_the_development_signing_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    """Unset: generated into DATA_DIR, private to its owner, and the same key on the next load."""
    settings = Settings(data_dir=tmp_path, signing_key=None)
    first = load_signing_key(settings)
    watch(first.private_base64())
    path = tmp_path / DEV_SIGNING_KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_signing_key(settings).public_key == first.public_key


def test_the_configured_signing_key_is_used(tmp_path: Path, key: SigningKey) -> None:
    """Set: that key, and no development file."""
    loaded = load_signing_key(Settings(data_dir=tmp_path, signing_key=key.private_base64()))
    assert loaded.key_id == key.key_id
    assert not (tmp_path / DEV_SIGNING_KEY_FILE).exists()


def _report(intact: bool, head: int, bad: int | None = None) -> ChainReport:
    return ChainReport(intact, head, head, HEAD, bad, None if intact else "broken")


@pytest.mark.parametrize(
    ("report", "hash_at_size", "status"),
    [
        (_report(True, 50), HEAD, "intact"),
        (_report(True, 42), HEAD, "intact"),
        (_report(False, 29, bad=30), HEAD, "tampered_before"),
        (_report(True, 40), None, "truncated"),
        (_report(True, 50), bytes(32), "head_differs"),
        (_report(False, 44, bad=45), HEAD, "tampered_after"),
    ],
    ids=["grown", "same", "before", "truncated", "rewritten", "after"],
)
def test_the_verdict_against_a_checkpoint_at_42(
    signed: Checkpoint, report: ChainReport, hash_at_size: bytes | None, status: str
) -> None:
    """Each way the log can stand against a checkpoint gets its own verdict."""
    proof = judge(signed, report, hash_at_size)
    assert proof.status == status
    assert proof.holds == (status == "intact")
