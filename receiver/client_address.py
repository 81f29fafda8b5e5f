"""The caller's address, which rate limits count against: the peer, or what a trusted proxy says."""

from __future__ import annotations

import ipaddress

from aiohttp import web


def client_address(request: web.Request, trusted_proxies: frozenset[str]) -> str:
    """The peer address; behind a trusted proxy, the last X-Forwarded-For hop it did not add.

    Only proxies listed in CREDLEDGER_TRUSTED_PROXIES are believed: anyone else could send any
    X-Forwarded-For and spread their failed attempts over invented addresses.
    """
    peer = request.remote or "unknown"
    if peer not in trusted_proxies:
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if hop in trusted_proxies:
            continue
        try:
            return str(ipaddress.ip_address(hop))
        except ValueError:
            return peer
    return peer
