"""Parsing HTTP Basic credentials without trusting them: any malformed header is a clean 401."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field


class BadCredentials(ValueError):
    """The Authorization header is missing or not valid Basic credentials. Never holds them."""


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    """A login name and the password presented with it (the password never shows in a repr)."""

    login: str
    password: str = field(repr=False)


MAX_HEADER_CHARS = 1024


def parse_basic(header: str | None) -> BasicCredentials:
    """The credentials in an `Authorization: Basic …` header, decoded as UTF-8 (as Nextcloud does)."""
    if not header:
        raise BadCredentials("missing Authorization header")
    if len(header) > MAX_HEADER_CHARS:
        raise BadCredentials("Authorization header too long")
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise BadCredentials("expected HTTP Basic credentials")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise BadCredentials("malformed Basic credentials") from None
    login, colon, password = decoded.partition(":")
    if not colon or not login or not password:
        raise BadCredentials("malformed Basic credentials")
    if any(ord(c) < 32 or ord(c) == 127 for c in login):
        raise BadCredentials("malformed Basic credentials")
    return BasicCredentials(login, password)
