"""The audit page's readings of the log: a user's timeline, the events list, the chain verified now."""

from __future__ import annotations

import structlog
from aiohttp import web

from events.reading import read_page
from projections.queries import get_state, history
from receiver.app_keys import POOL
from receiver.audit_ui import layout, log_views, panels
from receiver.audit_ui.filters import parse_filters
from receiver.audit_ui.log_views import EventFilters
from receiver.audit_ui.responses import needs_sign_in, page, see_other, side_panels, viewer
from receiver.audit_ui.session import AuditSession, current_session
from receiver.audit_ui.state import AUDIT_PAGE
from receiver.identifiers import valid_user_id

PAGE_SIZE = 50


def bad_user_id(session: AuditSession, user_id: str) -> web.Response:
    """400: the id (shown escaped) cannot be a Nextcloud user id."""
    message = f"{user_id!r} is not a Nextcloud user id (letters, digits, space and _ . @ - ', at most 64)."
    return page(layout.message_page("Not a user id", message, viewer=viewer(session), search=user_id), 400)


async def audit_search(request: web.Request) -> web.Response:
    """The search box's target: on to the user's timeline."""
    session = await current_session(request)
    if session is None:
        return needs_sign_in(request)
    user_id = request.query.get("user_id", "").strip()
    if not valid_user_id(user_id):
        return bad_user_id(session, user_id)
    return see_other(layout.user_url(user_id))


async def audit_user_page(request: web.Request) -> web.Response:
    """One user's credential timeline in order, their projected credential, the chain and checkpoint."""
    session = await current_session(request)
    if session is None:
        return needs_sign_in(request)
    user_id = request.match_info["uid"]
    if not valid_user_id(user_id):
        return bad_user_id(session, user_id)
    structlog.contextvars.bind_contextvars(user_id=user_id)
    async with request.app[POOL].acquire() as conn:
        # One snapshot, so that the timeline and the projected state agree.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            events = await history(conn, user_id)
            record = await get_state(conn, user_id)
        side = await side_panels(request, conn)
    if not events:
        message = "The log holds no event about this user."
        return page(layout.message_page("Unknown user", message, viewer=viewer(session), search=user_id), 404)
    state = record.state if record is not None else None
    return page(log_views.user_page(viewer(session), user_id, events, state, side))


async def audit_events_page(request: web.Request) -> web.Response:
    """A page of events by position, filtered by type and user; `after` is the cursor."""
    session = await current_session(request)
    if session is None:
        return needs_sign_in(request)
    filters = parse_filters(request)
    if isinstance(filters, str):
        return page(log_views.events_page(viewer(session), EventFilters(), [], None, error=filters), 400)
    async with request.app[POOL].acquire() as conn:
        # One more than a page, to know whether a next page exists without counting.
        events = await read_page(
            conn,
            after=filters.after,
            limit=PAGE_SIZE + 1,
            stream=filters.user_id or None,
            types=[filters.type] if filters.type else None,
        )
    shown = events[:PAGE_SIZE]
    next_after = shown[-1].position if len(events) > PAGE_SIZE else None
    return page(log_views.events_page(viewer(session), filters, shown, next_after))


async def audit_verify_page(request: web.Request) -> web.Response:
    """Recompute the whole chain now and show the outcome (which the other pages then show too)."""
    session = await current_session(request)
    if session is None:
        return needs_sign_in(request)
    await request.app[AUDIT_PAGE].verify(request.app[POOL])
    async with request.app[POOL].acquire() as conn:
        side = await side_panels(request, conn)
    return page(panels.verify_page(viewer(session), side))
