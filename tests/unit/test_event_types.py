"""The catalogue: every type round-trips through its data, and versions are guarded."""

from __future__ import annotations

import pytest

from events.canonical import canonical_json
from events.event_types import (
    CATALOGUE,
    CredentialInvalidated,
    CredentialProvisioned,
    CredentialRevoked,
    DomainEvent,
    KeysRotated,
    SealedSecret,
    SyncFailed,
    SyncRecovered,
    TokenCreated,
    TokenRevoked,
    UnknownEventType,
    UserDeleted,
    UserDisabled,
    UserEnabled,
    decode,
    to_new_event,
)

EXAMPLES: list[DomainEvent] = [
    CredentialProvisioned(
        "alice@ldap", ("files",), "hmac-sha256:k1:00", SealedSecret("dk1", "bm9uY2U=", "Y3Q=")
    ),
    CredentialRevoked("user_request"),
    CredentialInvalidated(credential_position=7),
    UserDisabled(),
    UserEnabled(),
    UserDeleted(),
    SyncFailed("timeout"),
    SyncFailed("throttled", retry_after_seconds=30),
    SyncRecovered(3),
    KeysRotated("k2", 10),
    TokenCreated("t1", "audit team", "auditor", "ab" * 32),
    TokenRevoked("t1"),
]


def test_the_catalogue_holds_every_type_of_the_design() -> None:
    """The names DESIGN.md fixes, no more and no fewer."""
    assert set(CATALOGUE) == {
        "credential.provisioned",
        "credential.revoked",
        "credential.invalidated",
        "user.disabled",
        "user.enabled",
        "user.deleted",
        "sync.failed",
        "sync.recovered",
        "keys.rotated",
        "token.created",
        "token.revoked",
    }


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: type(e).__name__)
def test_each_type_round_trips_through_its_data(event: DomainEvent) -> None:
    """decode(type, version, to_data()) gives the same event back, and the data is storable."""
    canonical_json(event.to_data())
    assert decode(event.TYPE, event.SCHEMA_VERSION, event.to_data()) == event


def test_an_unknown_type_is_refused() -> None:
    """Only catalogue types decode."""
    with pytest.raises(UnknownEventType):
        decode("credential.stolen", 1, {})


def test_data_from_a_newer_release_is_refused() -> None:
    """An old reader must not misread a newer schema silently."""
    with pytest.raises(ValueError, match="newer"):
        decode("credential.revoked", 99, {"reason": "admin"})


def test_an_unknown_revocation_reason_is_refused() -> None:
    """Reasons are the four of the design."""
    with pytest.raises(ValueError, match="reason"):
        CredentialRevoked.from_data({"reason": "bored"})


def test_a_new_event_carries_type_version_and_data() -> None:
    """to_new_event fills the envelope from the typed event."""
    new = to_new_event(UserDisabled(), stream="alice", source="test")
    assert (new.type, new.schema_version, new.data, new.stream) == ("user.disabled", 1, {}, "alice")


def test_a_sealed_secret_repr_hides_the_ciphertext() -> None:
    """Even ciphertext stays out of log lines by accident."""
    assert "Y3Q=" not in repr(SealedSecret("dk1", "bm9uY2U=", "Y3Q="))
