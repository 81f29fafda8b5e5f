"""The read-only audit page at /audit: sign in with an auditor token, read timelines, events, the chain.

Server-rendered HTML (receiver.audit_ui), no script. The session is the auditor token in a cookie;
receiver.audit_ui.session says how it is kept and how the forms are guarded against CSRF.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from receiver.app_keys import POOL
from receiver.audit_ui import panels
from receiver.audit_ui.filters import EventsPageQuery
from receiver.audit_ui.layout import message_page
from receiver.audit_ui.responses import (
    HTML,
    HtmlPage,
    page,
    see_other,
    side_panels,
    sign_in_answer,
    viewer,
)
from receiver.audit_ui.session import (
    AUDITOR,
    SESSION_COOKIE,
    current_session,
    end_session,
    identify,
    same_secret,
    sign_in_nonce_matches,
    start_session,
)
from receiver.audit_ui.state import AUDIT_PAGE, AuditPageState, CheckpointReader
from receiver.routes.audit_page_log import (
    audit_events_page,
    audit_search,
    audit_user_page,
    audit_verify_page,
)
from receiver.routing import Answer, RouteSpec, register

log = structlog.get_logger(__name__)


async def audit_home(request: web.Request) -> web.Response:
    """The sign-in form, or once signed in: the user search, the chain and the latest checkpoint."""
    session = await current_session(request)
    if session is None:
        note = "Your session has ended: sign in again." if SESSION_COOKIE in request.cookies else None
        return sign_in_answer(request, status=200, note=note)
    async with request.app[POOL].acquire() as conn:
        side = await side_panels(request, conn)
    return page(panels.home_page(viewer(session), side))


async def _form(request: web.Request) -> dict[str, str]:
    """The posted form's text fields; a body that is not a form reads as an empty one."""
    try:
        posted = await request.post()
    except (ValueError, UnicodeDecodeError):
        return {}
    return {name: value for name, value in posted.items() if isinstance(value, str)}


async def audit_sign_in(request: web.Request) -> web.Response:
    """Check the token as require_role(auditor) does; on success keep it in the session cookie."""
    form = await _form(request)
    if not sign_in_nonce_matches(request, form.get("nonce")):
        log.info("audit_page.sign_in_refused", reason="nonce")
        return sign_in_answer(
            request,
            status=403,
            error="This sign-in form has expired or was not sent from this page: please try again. "
            "(The page must be served over HTTPS, or from localhost, for the browser to keep its cookies.)",
        )
    token = form.get("token", "").strip()
    identity = await identify(request, token)
    if identity is None:
        log.info("audit_page.sign_in_refused", reason="invalid")
        return sign_in_answer(request, status=401, error="That token is not valid, or it was revoked.")
    if identity.role != AUDITOR:
        log.info("audit_page.sign_in_refused", reason="role", role=identity.role)
        return sign_in_answer(
            request,
            status=403,
            error=f"That is an {identity.role} token: the audit page needs an auditor token.",
        )
    log.info("audit_page.signed_in", caller=f"{identity.role}:{identity.token_id}")
    response = see_other("/audit")
    start_session(response, token)
    return response


async def audit_sign_out(request: web.Request) -> web.Response:
    """Forget the session cookie; a live session must prove the form is its own (CSRF token)."""
    session = await current_session(request)
    if session is not None:
        form = await _form(request)
        if not same_secret(session.csrf, form.get("csrf")):
            log.info("audit_page.sign_out_refused", reason="csrf")
            message = "The sign-out form was not sent from this page."
            return page(message_page("Not signed out", message, viewer=viewer(session)), 403)
        log.info("audit_page.signed_out")
    response = see_other("/audit")
    end_session(response)
    return response


def _html(status: int, description: str) -> Answer:
    return Answer(status, description, HtmlPage, HTML)


_PAGE = _html(200, "the page")
_BAD_USER_ID = _html(400, "not a Nextcloud user id")
_SIGN_IN_NEEDED = _html(401, "not signed in, or the session's token was revoked: the sign-in form")
_UNAVAILABLE = Answer(503, "the database is unavailable (see Retry-After)")
TAG = "audit page"

ROUTES = [
    RouteSpec(
        "GET",
        "/audit",
        audit_home,
        "The audit page: the sign-in form, or the user search with the chain and checkpoint status",
        TAG,
        answers=[_PAGE, _UNAVAILABLE],
    ),
    RouteSpec(
        "POST",
        "/audit/sign-in",
        audit_sign_in,
        "Sign in with an auditor token (form fields `token` and `nonce`); sets the session cookie",
        TAG,
        answers=[
            _html(303, "signed in: on to /audit, with the HttpOnly session cookie set"),
            _html(401, "the token is not valid or was revoked: the form again, with the error"),
            _html(403, "not an auditor token, or the form's nonce does not match its cookie"),
            _UNAVAILABLE,
        ],
    ),
    RouteSpec(
        "POST",
        "/audit/sign-out",
        audit_sign_out,
        "Sign out (form field `csrf`): the session cookie is cleared",
        TAG,
        answers=[
            _html(303, "signed out: on to /audit"),
            _html(403, "the form's CSRF token does not belong to this session"),
            _UNAVAILABLE,
        ],
    ),
    RouteSpec(
        "GET",
        "/audit/search",
        audit_search,
        "The user search (query `user_id`): on to that user's timeline",
        TAG,
        answers=[_html(303, "on to /audit/users/{uid}"), _BAD_USER_ID, _SIGN_IN_NEEDED, _UNAVAILABLE],
    ),
    RouteSpec(
        "GET",
        "/audit/users/{uid}",
        audit_user_page,
        "One user's credential timeline in order, their projected credential, the chain and checkpoint",
        TAG,
        answers=[
            _PAGE,
            _BAD_USER_ID,
            _SIGN_IN_NEEDED,
            _html(404, "the log holds no event about this user"),
            _UNAVAILABLE,
        ],
    ),
    RouteSpec(
        "GET",
        "/audit/events",
        audit_events_page,
        "Events by position, filtered by type and user, a page at a time (`after` is the cursor)",
        TAG,
        answers=[_PAGE, _html(400, "a filter is not valid"), _SIGN_IN_NEEDED, _UNAVAILABLE],
        query=EventsPageQuery,
    ),
    RouteSpec(
        "GET",
        "/audit/verify",
        audit_verify_page,
        "Recompute the hash chain from position 1 now and show whether it holds",
        TAG,
        answers=[_PAGE, _SIGN_IN_NEEDED, _UNAVAILABLE],
    ),
]


def setup(app: web.Application, *, checkpoint_reader: CheckpointReader | None = None) -> None:
    """Register the page; `checkpoint_reader` reads the latest signed checkpoint (None: not offered)."""
    app[AUDIT_PAGE] = AuditPageState(checkpoint_reader)
    register(app, ROUTES)
