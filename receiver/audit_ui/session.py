"""The audit page's session: the auditor token kept in a cookie, and the CSRF tokens that guard its forms.

The cookie holds the token itself, so every request is checked against the api_tokens projection
exactly as a bearer token is: revoking the token ends every page session at once, and no session
table is needed. It is HttpOnly (no script reads it), SameSite=Strict (no other site's page makes
the browser send it) and always Secure: browsers treat http://localhost and 127.0.0.1 as secure
origins, so a development service on the loopback still works, while a service reached over plain
HTTP anywhere else fails closed (the browser refuses the cookie) rather than send the token in clear.

Forms are protected twice. SameSite=Strict keeps the cookie off cross-site requests, and each POST
also carries a CSRF token: while signed in, an HMAC of the session's token (unguessable without the
token, and the same in every tab); on the sign-in form, a random nonce also set as a cookie of its
own (double submit), so that no other site can sign a browser in under a token of its choosing.
The Origin header is not relied on: a reverse proxy may rewrite Host or the scheme it forwards.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

import structlog
from aiohttp import web

from receiver.app_keys import POOL
from receiver.bearer_tokens import TokenIdentity, authenticate

SESSION_COOKIE = "credledger_audit"
SIGN_IN_COOKIE = "credledger_audit_sign_in"
COOKIE_PATH = "/audit"
SIGN_IN_PATH = "/audit/sign-in"
AUDITOR = "auditor"

_CSRF_CONTEXT = b"credledger audit page csrf v1"
_NONCE = re.compile(r"^[A-Za-z0-9_-]{43}$")
# A token is about 70 characters; anything far longer is not one and is not looked up.
_MAX_TOKEN_CHARS = 256


@dataclass(frozen=True, slots=True)
class AuditSession:
    """A signed-in auditor: who, the token behind the cookie (never in a repr), and the forms' CSRF token."""

    identity: TokenIdentity
    token: str = field(repr=False)
    csrf: str = field(repr=False)


def csrf_token(session_token: str) -> str:
    """The CSRF token of the session behind `session_token`; keyed, so it is never the stored digest."""
    return hmac.new(session_token.encode("utf-8"), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def same_secret(expected: str, presented: object) -> bool:
    """Constant-time equality of a CSRF value and what a form sent (missing or a file: False)."""
    if not isinstance(presented, str) or not presented:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8"))


async def identify(request: web.Request, token: str) -> TokenIdentity | None:
    """The identity behind `token` if it is a valid, unrevoked token (of any role), else None."""
    if not token or len(token) > _MAX_TOKEN_CHARS:
        return None
    async with request.app[POOL].acquire() as conn:
        return await authenticate(conn, f"Bearer {token}")


async def current_session(request: web.Request) -> AuditSession | None:
    """The auditor signed in by this request's cookie, or None (no cookie, a dead token, another role)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    identity = await identify(request, token)
    if identity is None or identity.role != AUDITOR:
        return None
    # As with bearer tokens, every log line of the request names the token that read the log.
    structlog.contextvars.bind_contextvars(caller=f"{identity.role}:{identity.token_id}")
    return AuditSession(identity, token, csrf_token(token))


def start_session(response: web.StreamResponse, token: str) -> None:
    """Keep `token` in the session cookie for this browser session, and drop the sign-in nonce."""
    response.set_cookie(
        SESSION_COOKIE, token, path=COOKIE_PATH, secure=True, httponly=True, samesite="Strict"
    )
    end_sign_in(response)


def end_session(response: web.StreamResponse) -> None:
    """Tell the browser to forget the session cookie."""
    response.del_cookie(SESSION_COOKIE, path=COOKIE_PATH, secure=True, httponly=True, samesite="Strict")


def sign_in_nonce(request: web.Request) -> str:
    """The browser's current sign-in nonce if it sent a well-formed one, else a fresh one.

    Reused while it lasts, so that sign-in forms open in several tabs all stay valid.
    """
    offered = request.cookies.get(SIGN_IN_COOKIE, "")
    return offered if _NONCE.match(offered) else secrets.token_urlsafe(32)


def offer_sign_in(response: web.StreamResponse, nonce: str) -> None:
    """Set the nonce cookie that the sign-in form's hidden field must repeat."""
    response.set_cookie(
        SIGN_IN_COOKIE, nonce, path=SIGN_IN_PATH, secure=True, httponly=True, samesite="Strict"
    )


def end_sign_in(response: web.StreamResponse) -> None:
    response.del_cookie(SIGN_IN_COOKIE, path=SIGN_IN_PATH, secure=True, httponly=True, samesite="Strict")


def sign_in_nonce_matches(request: web.Request, presented: object) -> bool:
    """Whether the form repeated the nonce this browser holds in its sign-in cookie."""
    held = request.cookies.get(SIGN_IN_COOKIE, "")
    return bool(_NONCE.match(held)) and same_secret(held, presented)
