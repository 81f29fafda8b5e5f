"""The auditor's checkpoint routes: the latest signed checkpoint, and the public key to check it with.

The checkpoint needs an auditor token, like the rest of the audit API. The public key does not: it
is no secret, and whoever is handed a checkpoint should be able to fetch the key to compare with the
one they keep. Serving the key proves nothing by itself (a service rewriting its log could serve
another key too); an auditor fetches it once, keeps it, and checks later checkpoints against that.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from events.checkpoint_store import latest_checkpoint
from events.checkpoints import ALGORITHM
from receiver.app_keys import POOL
from receiver.bearer_tokens import require_role
from receiver.errors import ApiError
from receiver.key_material import SIGNING_KEY
from receiver.routing import Answer, RouteSpec, register

AUDITOR = "auditor"
CHECKPOINT_PATH = "/api/v1/audit/checkpoint"
PUBLIC_KEY_PATH = "/api/v1/audit/public-key"


class CheckpointOut(BaseModel):
    """A signed checkpoint, as the JSON document an auditor keeps (see docs/auditing.md).

    The signature covers the canonical JSON of `{"head_hash", "key_id", "log_size", "signed_at"}`.
    """

    log_size: int = Field(ge=0, description="the position of the log's head when it was signed")
    head_hash: str = Field(description="the hash of the event at `log_size`, in lowercase hex")
    signed_at: str = Field(description="when it was signed, as YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC)")
    key_id: str = Field(description="the first 16 hex characters of SHA-256 over the raw public key")
    algorithm: Literal["ed25519"]
    signature: str = Field(description="the Ed25519 signature, base64")
    public_key: str = Field(description="the signer's public key, base64: compare it with the key you keep")


class PublicKeyOut(BaseModel):
    """The key checkpoints are signed with now: fetch it once, keep it, check checkpoints against it."""

    key_id: str = Field(description="the first 16 hex characters of SHA-256 over the raw public key")
    algorithm: Literal["ed25519"]
    public_key: str = Field(description="base64 of the 32 raw bytes of the Ed25519 public key")


async def serve_checkpoint(request: web.Request) -> web.Response:
    """The latest stored checkpoint (over the longest log), as an auditor keeps it."""
    await require_role(request, AUDITOR)
    async with request.app[POOL].acquire() as conn:
        latest = await latest_checkpoint(conn)
    if latest is None:
        raise ApiError(404, "no_checkpoint", "no checkpoint has been signed yet")
    return web.json_response(CheckpointOut.model_validate(latest.to_document()).model_dump())


async def serve_public_key(request: web.Request) -> web.Response:
    """The public half of the signing key, with its id."""
    key = request.app[SIGNING_KEY]
    answer = PublicKeyOut(key_id=key.key_id, algorithm=ALGORITHM, public_key=key.public_base64)
    return web.json_response(answer.model_dump())


ROUTES = [
    RouteSpec(
        "GET",
        CHECKPOINT_PATH,
        serve_checkpoint,
        "The latest signed checkpoint: the log's size and head hash, signed with Ed25519",
        "audit",
        answers=[
            Answer(200, "the checkpoint, as the JSON document an auditor keeps", CheckpointOut),
            Answer(404, "no checkpoint has been signed yet"),
            Answer(401, "no bearer token, or one that is invalid or revoked"),
            Answer(403, "a valid token without the auditor role"),
            Answer(503, "the database is unavailable (see Retry-After)"),
        ],
        security=("bearerAuth",),
    ),
    RouteSpec(
        "GET",
        PUBLIC_KEY_PATH,
        serve_public_key,
        "The public key checkpoints are signed with (no token: it is no secret)",
        "audit",
        answers=[Answer(200, "the key's id, algorithm and public half", PublicKeyOut)],
    ),
]


def setup(app: web.Application) -> None:
    register(app, ROUTES)
