"""The typed application key under which the simulator's handlers find the control object."""

from __future__ import annotations

from aiohttp import web

from sync.nextcloud_simulator.control import NextcloudSimulator

SIMULATOR = web.AppKey("nextcloud_simulator", NextcloudSimulator)
