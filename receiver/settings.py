"""The service's configuration: one pydantic-settings class, the only reader of the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting, read from `CREDLEDGER_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="CREDLEDGER_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL. Unset: an embedded PostgreSQL under DATA_DIR, started and "
        "stopped with the command.",
    )
    data_dir: Path = Field(
        default=Path("./var"),
        description="Where the embedded PostgreSQL and development keys live.",
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port the HTTP server binds.")
    nextcloud_url: str | None = Field(
        default=None,
        description="Base URL of the Nextcloud instance, e.g. https://cloud.example.org.",
    )
    webhook_secrets: str | None = Field(
        default=None,
        description="Comma-separated Standard Webhooks secrets (whsec_…), newest first.",
    )
    master_keys: str | None = Field(
        default=None,
        description="Comma-separated ID:BASE64KEY AES-256 master keys, newest first. Unset in "
        "development: generated into DATA_DIR with mode 0600 and a warning.",
    )
    signing_key: str | None = Field(
        default=None,
        description="Ed25519 private key (base64 of 32 raw bytes) for checkpoints. Unset: "
        "generated into DATA_DIR like the master key.",
    )
    sync_interval_seconds: int = Field(
        default=300, ge=1, description="How often each user's files are synced."
    )
    sync_enabled: bool = Field(
        default=True,
        description="Run the sync scheduler in this process (false: a receiver-only replica).",
    )
    sync_concurrency: int = Field(default=16, ge=1, le=1024, description="How many users are synced at once.")
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-For is believed "
        "(rate limits count against the client address they report).",
    )
    log_format: Literal["json", "console"] | None = Field(
        default=None, description="json or console. Unset: console on a terminal, json otherwise."
    )

    def trusted_proxy_set(self) -> frozenset[str]:
        """TRUSTED_PROXIES as a set of addresses."""
        return frozenset(p.strip() for p in self.trusted_proxies.split(",") if p.strip())
