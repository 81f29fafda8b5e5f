"""The audit page's frame: escaping, the page layout, the sign-in form, the search box, short messages.

Plain Python string building, no template engine and no script: each fragment takes typed values
and passes every one of them through `esc` (html.escape, quotes included), so a user id, a reason
or a source from the log can never become markup.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from receiver.audit_ui.style import STYLE


def esc(value: object) -> str:
    """`value` as text safe inside an element or a quoted attribute."""
    return html.escape(str(value), quote=True)


def user_url(user_id: str) -> str:
    """The page of one user's timeline (the id percent-encoded as one path segment)."""
    return "/audit/users/" + quote(user_id, safe="")


def events_url(**params: str | int) -> str:
    """The events list with the non-empty `params` as its query."""
    query = urlencode({name: value for name, value in params.items() if value not in ("", None)})
    return "/audit/events" + (f"?{query}" if query else "")


def when(moment: datetime | None) -> str:
    """A time in UTC to the second, with the exact instant in its datetime attribute."""
    if moment is None:
        return "-"
    utc = moment.astimezone(UTC)
    return f'<time datetime="{esc(utc.isoformat())}">{esc(utc.strftime("%Y-%m-%d %H:%M:%S"))}</time>'


def badge(text: str, tone: str) -> str:
    return f'<span class="badge tone-{esc(tone)}">{esc(text)}</span>'


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is signed in, as the header shows them, and the CSRF token their forms carry."""

    name: str
    token_id: str
    csrf: str


def layout(title: str, body: str, *, viewer: Viewer | None) -> str:
    """A whole page: the header (with navigation and sign-out when signed in), `body`, the footer."""
    nav = ""
    if viewer is not None:
        nav = (
            '<nav><a href="/audit">Find a user</a><a href="/audit/events">Events</a>'
            '<a href="/audit/verify">Verify the chain</a></nav>'
            '<form method="post" action="/audit/sign-out">'
            f'<input type="hidden" name="csrf" value="{esc(viewer.csrf)}">'
            f'<span class="who">{esc(viewer.name)} ({esc(viewer.token_id)})</span>'
            '<button type="submit">Sign out</button></form>'
        )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{esc(title)} · credledger audit</title><style>{STYLE}</style></head><body>"
        f'<header class="bar"><a class="brand" href="/audit">credledger audit</a>{nav}</header>'
        f"<main>{body}</main>"
        "<footer>A read-only view of the credential log. Times are UTC. Secrets are never shown: "
        "app passwords exist in the log only as ciphertext, and this page does not display event data."
        "</footer></body></html>"
    )


def error_box(message: str | None) -> str:
    return f'<p class="error" role="alert">{esc(message)}</p>' if message else ""


def sign_in_page(*, nonce: str, error: str | None = None, note: str | None = None) -> str:
    """The sign-in form: the auditor token, and the nonce that proves the form is ours."""
    body = (
        '<section class="card narrow"><h1>Sign in</h1>'
        "<p>Paste an auditor token, as printed by <code>credledger tokens create --role auditor</code>. "
        "It is kept in an HttpOnly cookie for this browser session only.</p>"
        f"{error_box(error)}"
        + (f'<p class="note">{esc(note)}</p>' if note else "")
        + '<form method="post" action="/audit/sign-in">'
        f'<input type="hidden" name="nonce" value="{esc(nonce)}">'
        '<p><label for="token">Auditor token</label>'
        '<input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required></p>'
        '<button type="submit">Sign in</button></form></section>'
    )
    return layout("Sign in", body, viewer=None)


def search_box(value: str = "") -> str:
    return (
        '<form class="search" method="get" action="/audit/search" role="search"><div>'
        '<label for="user_id">Nextcloud user id</label>'
        f'<input id="user_id" name="user_id" value="{esc(value)}" maxlength="64" autocomplete="off" required>'
        '</div><button type="submit">Show timeline</button></form>'
    )


def message_page(title: str, message: str, *, viewer: Viewer | None, search: str | None = None) -> str:
    """A short page saying what went wrong (a bad user id, a user the log never mentioned)."""
    box = f'<section class="card">{search_box(search)}</section>' if search is not None and viewer else ""
    body = f'{box}<section class="card"><h1>{esc(title)}</h1>{error_box(message)}</section>'
    return layout(title, body, viewer=viewer)


def redirect_page(location: str) -> str:
    """The body of a 303: a link, for clients that do not follow redirects."""
    return layout("Redirect", f'<p><a href="{esc(location)}">Continue</a></p>', viewer=None)
