"""Typed keys for the application's shared state (aiohttp's AppKey, not string keys)."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from events.crypto import MasterKeyRing
from events.writer import GroupCommitWriter
from receiver.rate_limits import Limits
from receiver.settings import Settings
from receiver.webhook_signatures import WebhookSecret
from sync.nextcloud_client import NextcloudClient
from sync.throttle import InstanceThrottle

SETTINGS = web.AppKey("settings", Settings)
DATABASE_URL = web.AppKey("database_url", str)
POOL = web.AppKey("pool", asyncpg.Pool)
WRITER = web.AppKey("writer", GroupCommitWriter)
MASTER_KEYS = web.AppKey("master_keys", MasterKeyRing)
# Absent when CREDLEDGER_NEXTCLOUD_URL is unset: read it with app.get(NEXTCLOUD).
NEXTCLOUD = web.AppKey("nextcloud", NextcloudClient)
THROTTLE = web.AppKey("nextcloud_throttle", InstanceThrottle)
WEBHOOK_SECRETS = web.AppKey("webhook_secrets", list[WebhookSecret])
RATE_LIMITS = web.AppKey("rate_limits", Limits)
