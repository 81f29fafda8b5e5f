"""The catalogue of event types: frozen dataclasses, their wire names, versions and upcasters.

The log stores `type`, `schema_version` and `data`; this module turns `data` into a typed event and
back. When a type's data changes shape, bump its SCHEMA_VERSION and teach its `upcast` to lift
older data, so that every event ever written still reads (the log is never rewritten).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self

from events.envelope import NewEvent

RevocationReason = Literal["user_request", "admin", "user_deleted", "token_invalidated"]
REVOCATION_REASONS: tuple[RevocationReason, ...] = (
    "user_request",
    "admin",
    "user_deleted",
    "token_invalidated",
)


class UnknownEventType(ValueError):
    """A type name the catalogue does not know."""


@dataclass(frozen=True, slots=True)
class SealedSecret:
    """An app password encrypted under a user's data key (AES-256-GCM), as the log holds it."""

    key_id: str
    nonce: str
    ciphertext: str

    def __repr__(self) -> str:
        return f"SealedSecret(key_id={self.key_id!r}, …)"


class DomainEvent:
    """Base of every event type: its wire name, its version, and how its data maps to fields."""

    TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1

    def to_data(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        raise NotImplementedError

    @classmethod
    def upcast(cls, data: Mapping[str, Any], schema_version: int) -> Mapping[str, Any]:
        """Lift data written by an older schema version to the current one (identity so far)."""
        if schema_version > cls.SCHEMA_VERSION:
            raise ValueError(f"{cls.TYPE} version {schema_version} is newer than this release knows")
        return data


@dataclass(frozen=True, slots=True)
class CredentialProvisioned(DomainEvent):
    """A user handed over an app password (validated against Nextcloud) for background work."""

    TYPE: ClassVar[str] = "credential.provisioned"
    login_name: str
    scopes: tuple[str, ...]
    fingerprint: str
    secret: SealedSecret

    def to_data(self) -> dict[str, Any]:
        return {
            "login_name": self.login_name,
            "scopes": list(self.scopes),
            "fingerprint": self.fingerprint,
            "secret": {
                "key_id": self.secret.key_id,
                "nonce": self.secret.nonce,
                "ciphertext": self.secret.ciphertext,
            },
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        secret = data["secret"]
        return cls(
            login_name=data["login_name"],
            scopes=tuple(data.get("scopes", ())),
            fingerprint=data["fingerprint"],
            secret=SealedSecret(secret["key_id"], secret["nonce"], secret["ciphertext"]),
        )


@dataclass(frozen=True, slots=True)
class CredentialRevoked(DomainEvent):
    """The credential was withdrawn: by the user, an admin, the user's deletion, or Nextcloud."""

    TYPE: ClassVar[str] = "credential.revoked"
    reason: RevocationReason

    def to_data(self) -> dict[str, Any]:
        return {"reason": self.reason}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        reason = data["reason"]
        if reason not in REVOCATION_REASONS:
            raise ValueError(f"unknown revocation reason {reason!r}")
        return cls(reason=reason)


@dataclass(frozen=True, slots=True)
class CredentialInvalidated(DomainEvent):
    """Nextcloud answered 401 to the stored credential: it is never tried again."""

    TYPE: ClassVar[str] = "credential.invalidated"
    # Which credential failed: a newer one provisioned meanwhile must not be invalidated by it.
    credential_position: int
    detail: str = "nextcloud answered 401"

    def to_data(self) -> dict[str, Any]:
        return {"credential_position": self.credential_position, "detail": self.detail}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            credential_position=int(data["credential_position"]),
            detail=data.get("detail", "nextcloud answered 401"),
        )


@dataclass(frozen=True, slots=True)
class _NoData(DomainEvent):
    def to_data(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls()


@dataclass(frozen=True, slots=True)
class UserDisabled(_NoData):
    """The user was disabled in Nextcloud: sync pauses, the credential is kept."""

    TYPE: ClassVar[str] = "user.disabled"


@dataclass(frozen=True, slots=True)
class UserEnabled(_NoData):
    """The user was enabled again in Nextcloud: a suspended credential becomes active."""

    TYPE: ClassVar[str] = "user.enabled"


@dataclass(frozen=True, slots=True)
class UserDeleted(_NoData):
    """The user was deleted in Nextcloud: the credential is revoked and its key destroyed."""

    TYPE: ClassVar[str] = "user.deleted"


@dataclass(frozen=True, slots=True)
class SyncFailed(DomainEvent):
    """Sync for a user (or, in the system stream, for the whole instance) started failing."""

    TYPE: ClassVar[str] = "sync.failed"
    error: str
    retry_after_seconds: int | None = None

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"error": self.error}
        if self.retry_after_seconds is not None:
            data["retry_after_seconds"] = self.retry_after_seconds
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(error=data["error"], retry_after_seconds=data.get("retry_after_seconds"))


@dataclass(frozen=True, slots=True)
class SyncRecovered(DomainEvent):
    """Sync succeeded again after failures."""

    TYPE: ClassVar[str] = "sync.recovered"
    failures: int

    def to_data(self) -> dict[str, Any]:
        return {"failures": self.failures}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(failures=int(data["failures"]))


@dataclass(frozen=True, slots=True)
class KeysRotated(DomainEvent):
    """Every data key was rewrapped under the newest master key (the log itself is untouched)."""

    TYPE: ClassVar[str] = "keys.rotated"
    master_key_id: str
    rewrapped: int

    def to_data(self) -> dict[str, Any]:
        return {"master_key_id": self.master_key_id, "rewrapped": self.rewrapped}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(master_key_id=data["master_key_id"], rewrapped=int(data["rewrapped"]))


@dataclass(frozen=True, slots=True)
class TokenCreated(DomainEvent):
    """An auditor or admin bearer token was issued; only its SHA-256 is kept."""

    TYPE: ClassVar[str] = "token.created"
    token_id: str
    name: str
    role: Literal["auditor", "admin"]
    digest: str

    def to_data(self) -> dict[str, Any]:
        return {"token_id": self.token_id, "name": self.name, "role": self.role, "digest": self.digest}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(token_id=data["token_id"], name=data["name"], role=data["role"], digest=data["digest"])


@dataclass(frozen=True, slots=True)
class TokenRevoked(DomainEvent):
    """A bearer token was withdrawn."""

    TYPE: ClassVar[str] = "token.revoked"
    token_id: str

    def to_data(self) -> dict[str, Any]:
        return {"token_id": self.token_id}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(token_id=data["token_id"])


CATALOGUE: dict[str, type[DomainEvent]] = {
    cls.TYPE: cls
    for cls in (
        CredentialProvisioned,
        CredentialRevoked,
        CredentialInvalidated,
        UserDisabled,
        UserEnabled,
        UserDeleted,
        SyncFailed,
        SyncRecovered,
        KeysRotated,
        TokenCreated,
        TokenRevoked,
    )
}


def decode(type_name: str, schema_version: int, data: Mapping[str, Any]) -> DomainEvent:
    """The typed event for a stored (type, schema_version, data), upcast to the current version."""
    cls = CATALOGUE.get(type_name)
    if cls is None:
        raise UnknownEventType(type_name)
    return cls.from_data(cls.upcast(data, schema_version))


def to_new_event(
    event: DomainEvent,
    *,
    stream: str,
    source: str,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> NewEvent:
    """The envelope for appending a typed event (a fresh id and the current time unless given)."""
    return NewEvent(
        event_id=event_id or uuid.uuid4().hex,
        source=source,
        stream=stream,
        type=event.TYPE,
        data=event.to_data(),
        occurred_at=occurred_at or datetime.now(UTC),
        metadata=dict(metadata or {}),
        schema_version=event.SCHEMA_VERSION,
    )
