"""How the audit page answers: HTML with strict headers, redirects after forms, the sign-in form."""

from __future__ import annotations

from aiohttp import web
from pydantic import RootModel

from events.database import Connection
from events.reading import head
from receiver.audit_ui import layout, panels
from receiver.audit_ui.session import (
    SESSION_COOKIE,
    AuditSession,
    end_session,
    offer_sign_in,
    sign_in_nonce,
)
from receiver.audit_ui.state import AUDIT_PAGE
from receiver.audit_ui.style import CONTENT_SECURITY_POLICY

HTML = "text/html"
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # What the log says about users is not for shared caches, nor for the browser's history.
    "Cache-Control": "no-store",
}


class HtmlPage(RootModel[str]):
    """An HTML page for a person's browser (the audit page answers JSON only for a 503)."""


def page(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type=HTML, charset="utf-8", headers=PAGE_HEADERS)


def see_other(location: str) -> web.Response:
    """303 to `location`: after a form, the browser asks for the next page with a GET."""
    return web.Response(
        text=layout.redirect_page(location),
        status=303,
        content_type=HTML,
        charset="utf-8",
        headers={**PAGE_HEADERS, "Location": location},
    )


def viewer(session: AuditSession) -> layout.Viewer:
    return layout.Viewer(session.identity.name, session.identity.token_id, session.csrf)


def sign_in_answer(
    request: web.Request, *, status: int, error: str | None = None, note: str | None = None
) -> web.Response:
    """The sign-in form with its nonce cookie; a session cookie that no longer works is dropped."""
    nonce = sign_in_nonce(request)
    response = page(layout.sign_in_page(nonce=nonce, error=error, note=note), status)
    offer_sign_in(response, nonce)
    if SESSION_COOKIE in request.cookies:
        end_session(response)
    return response


def needs_sign_in(request: web.Request) -> web.Response:
    """401 for a page that needs a session: the sign-in form, saying why it is shown."""
    if SESSION_COOKIE in request.cookies:
        note = "Your session has ended (the token was revoked, or is not an auditor token): sign in again."
    else:
        note = "Sign in to read the audit log."
    return sign_in_answer(request, status=401, note=note)


async def side_panels(request: web.Request, conn: Connection) -> str:
    """The chain and checkpoint panels, as every signed-in page shows them."""
    state = request.app[AUDIT_PAGE]
    last = await head(conn)
    latest = state.latest
    chain = panels.ChainView(
        latest.report if latest else None, latest.checked_at if latest else None, last[0] if last else 0
    )
    reader = state.checkpoint_reader
    checkpoint = await reader(conn) if reader is not None else None
    return panels.chain_panel(chain) + panels.checkpoint_panel(checkpoint, available=reader is not None)
