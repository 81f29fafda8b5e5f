"""Typed keys for the application's shared state (aiohttp's AppKey, not string keys)."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from events.crypto import MasterKeyRing
from events.writer import GroupCommitWriter
from receiver.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
DATABASE_URL = web.AppKey("database_url", str)
POOL = web.AppKey("pool", asyncpg.Pool)
WRITER = web.AppKey("writer", GroupCommitWriter)
MASTER_KEYS = web.AppKey("master_keys", MasterKeyRing)
