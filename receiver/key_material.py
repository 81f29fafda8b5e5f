"""Master keys and the checkpoint signing key: from settings, or generated for development.

In production both come from the environment (or mounted secret files). When unset, a key is
generated once into CREDLEDGER_DATA_DIR with mode 0600 and every start warns about it: good for
`make run` and the demo, never for data anyone cares about.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import structlog
from aiohttp import web

from events.checkpoints import SigningKey
from events.crypto import MasterKeyRing, generate_key
from receiver.settings import Settings

log = structlog.get_logger(__name__)

DEV_MASTER_KEY_FILE = "master-keys"
DEV_SIGNING_KEY_FILE = "signing-key"

# The checkpoint signing key in the application's state (set by create_app, read by the audit routes).
SIGNING_KEY = web.AppKey("signing_key", SigningKey)


def _read_or_create(path: Path, create: bytes) -> str:
    """The file's text; created with `create` and mode 0600 if it does not exist yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting together cannot both write a different key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(create)
    return create.decode("ascii").strip()


def load_master_keys(settings: Settings) -> MasterKeyRing:
    """CREDLEDGER_MASTER_KEYS, or a development key kept in DATA_DIR (with a warning)."""
    if settings.master_keys:
        return MasterKeyRing.parse(settings.master_keys)
    path = settings.data_dir / DEV_MASTER_KEY_FILE
    text = _read_or_create(path, b"dev1:" + base64.b64encode(generate_key()) + b"\n")
    log.warning(
        "master_key.development",
        message="CREDLEDGER_MASTER_KEYS is unset: using a generated development key; "
        "set it before storing real credentials",
        path=str(path),
    )
    return MasterKeyRing.parse(text)


def load_signing_key(settings: Settings) -> SigningKey:
    """CREDLEDGER_SIGNING_KEY, or a development key kept in DATA_DIR (with a warning)."""
    if settings.signing_key:
        return SigningKey.from_base64(settings.signing_key)
    path = settings.data_dir / DEV_SIGNING_KEY_FILE
    text = _read_or_create(path, SigningKey.generate().private_base64().encode("ascii") + b"\n")
    key = SigningKey.from_base64(text)
    log.warning(
        "signing_key.development",
        message="CREDLEDGER_SIGNING_KEY is unset: checkpoints are signed with a generated development "
        "key; set it before anyone relies on a checkpoint",
        path=str(path),
        key_id=key.key_id,
    )
    return key
