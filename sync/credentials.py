"""Opening a user's stored app password at the moment of use, and only while it is still active."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from events.crypto import DecryptionFailed, MasterKeyRing, open_secret
from events.database import Connection
from events.event_types import CredentialProvisioned
from events.user_keys import load_data_key, unwrap_stored
from projections.sync_bookkeeping import SyncCursor


@dataclass(frozen=True, slots=True)
class OpenCredential:
    """A usable credential: who to log in as, and the password (never shown in a repr)."""

    user_id: str
    login_name: str
    credential_position: int
    app_password: str = field(repr=False)


async def open_active_credential(
    conn: Connection, ring: MasterKeyRing, user_id: str
) -> OpenCredential | None:
    """The user's app password if their credential is active right now, else None.

    Reads the projection first, in the same call that decrypts: a revocation that committed before
    this read has already shredded the key, so there is nothing left to decrypt.
    """
    row = await conn.fetchrow(
        """
        SELECT s.login_name, s.credential_position, e.data::text AS data, e.schema_version
        FROM credential_state s JOIN events e ON e.position = s.credential_position
        WHERE s.user_id = $1 AND s.status = 'active'
        """,
        user_id,
    )
    if row is None:
        return None

    provisioned = CredentialProvisioned.from_data(
        CredentialProvisioned.upcast(json.loads(row["data"]), row["schema_version"])
    )
    data_key = await load_data_key(conn, ring, user_id, provisioned.secret.key_id)
    if data_key is None:
        return None
    try:
        password = open_secret(data_key.key, user_id, provisioned.secret)
    except DecryptionFailed:
        return None
    return OpenCredential(user_id, row["login_name"], row["credential_position"], password)


async def open_for_sync(
    conn: Connection, ring: MasterKeyRing, user_id: str, credential_position: int, *, lock_class: int
) -> tuple[OpenCredential, SyncCursor] | None:
    """Take the user's shared gate lock, then read the credential (if still the active one at
    `credential_position`) and the user's sync cursor: one round trip (see sync_gate_open in sql/).

    The lock is held on return whatever the answer; the caller's gate releases it.
    """
    row = await conn.fetchrow(
        "SELECT * FROM sync_gate_open($1, $2, $3)", lock_class, user_id, credential_position
    )
    if row is None or row["master_key_id"] is None:
        return None
    provisioned = CredentialProvisioned.from_data(
        CredentialProvisioned.upcast(json.loads(row["data"]), row["schema_version"])
    )
    try:
        data_key = unwrap_stored(
            ring, user_id, row["key_id"], row["master_key_id"], row["nonce"], row["wrapped_key"]
        )
        password = open_secret(data_key.key, user_id, provisioned.secret)
    except DecryptionFailed:
        return None
    credential = OpenCredential(user_id, row["login_name"], credential_position, password)
    return credential, SyncCursor(row["root_etag"], row["watermark"])
