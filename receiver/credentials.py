"""Provisioning and revoking credentials: the application steps between a request and the log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from events.crypto import MasterKeyRing, fingerprint, seal_secret
from events.envelope import Appended
from events.event_types import CredentialProvisioned, CredentialRevoked, RevocationReason, to_new_event
from events.user_keys import create_data_key
from events.writer import GroupCommitWriter


async def provision_credential(
    pool: asyncpg.Pool,
    writer: GroupCommitWriter,
    ring: MasterKeyRing,
    *,
    user_id: str,
    login_name: str,
    scopes: Sequence[str],
    app_password: str,
    source: str,
    metadata: Mapping[str, Any] | None = None,
) -> Appended:
    """Seal the app password under a fresh data key and append `credential.provisioned`.

    The plaintext lives only in this call's frame; what reaches the log is ciphertext bound to the
    user, and a keyed fingerprint.
    """
    async with pool.acquire() as conn:
        data_key = await create_data_key(conn, ring, user_id)
    event = CredentialProvisioned(
        login_name=login_name,
        scopes=tuple(scopes),
        fingerprint=fingerprint(ring, user_id, app_password),
        secret=seal_secret(data_key.key, user_id, data_key.key_id, app_password),
    )
    return await writer.append(to_new_event(event, stream=user_id, source=source, metadata=metadata))


async def revoke_credential(
    writer: GroupCommitWriter,
    *,
    user_id: str,
    reason: RevocationReason,
    source: str,
    metadata: Mapping[str, Any] | None = None,
) -> Appended:
    """Append `credential.revoked`; the projection hook shreds the data key in that transaction."""
    event = CredentialRevoked(reason=reason)
    return await writer.append(to_new_event(event, stream=user_id, source=source, metadata=metadata))
