"""The audit page's views of the log: a user's credential and timeline, and the filtered events list."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from events.envelope import SYSTEM_STREAM, RecordedEvent
from events.event_types import CATALOGUE
from projections.credential_state import CredentialState
from receiver.audit_ui.layout import (
    Viewer,
    badge,
    error_box,
    esc,
    events_url,
    layout,
    search_box,
    user_url,
    when,
)
from receiver.commands.history_format import event_reason

# How each event reads at a glance: a credential handed over is green, one withdrawn or a user gone
# is grey, anything Nextcloud refused is red, pauses are amber, the rest informational.
EVENT_TONES = {
    "credential.provisioned": "ok",
    "credential.revoked": "ended",
    "credential.invalidated": "bad",
    "user.disabled": "warn",
    "user.enabled": "info",
    "user.deleted": "ended",
    "sync.failed": "warn",
    "sync.recovered": "ok",
    "keys.rotated": "info",
    "token.created": "info",
    "token.revoked": "ended",
}
STATE_TONES = {"active": "ok", "suspended": "warn", "revoked": "ended", "deleted": "ended", "invalid": "bad"}


def _state_panel(state: CredentialState | None, events: int) -> str:
    if state is None:
        return (
            '<section class="card" id="state"><h2>Credential now</h2>'
            f"<p>No credential was ever provisioned for this user; the log holds {events} "
            "events about them.</p></section>"
        )
    rows = [
        ("Status", badge(state.status, STATE_TONES.get(state.status, "info"))),
        ("Login name", esc(state.login_name or "-")),
        ("Scopes", esc(", ".join(state.scopes) or "-")),
        ("Provisioned", when(state.provisioned_at)),
        ("Revoked", when(state.revoked_at)),
        ("Reason", esc(state.reason or "-")),
        ("Disabled in Nextcloud", "yes" if state.user_disabled else "no"),
        ("Credential position", esc(state.credential_position or "-")),
        ("Last position", esc(state.last_position)),
    ]
    items = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    return f'<section class="card" id="state"><h2>Credential now</h2><dl>{items}</dl></section>'


def _event_row(event: RecordedEvent, *, with_stream: bool) -> str:
    tone = EVENT_TONES.get(event.type, "info")
    stream = ""
    if with_stream:
        link = (
            esc(event.stream)
            if event.stream == SYSTEM_STREAM
            else f'<a href="{esc(user_url(event.stream))}">{esc(event.stream)}</a>'
        )
        stream = f"<td>{link}</td>"
    return (
        f'<tr class="tone-{esc(tone)}" data-position="{event.position}" data-type="{esc(event.type)}">'
        f"<td>{event.position}</td><td>{when(event.recorded_at)}</td>{stream}"
        f"<td>{badge(event.type, tone)}</td><td>{esc(event_reason(event) or '-')}</td>"
        f"<td>{esc(event.source)}</td>"
        f'<td class="mono" title="{esc(event.hash.hex())}">{esc(event.hash.hex()[:12])}…</td></tr>'
    )


def _events_table(events: Iterable[RecordedEvent], *, css_id: str, with_stream: bool) -> str:
    stream = "<th>User</th>" if with_stream else ""
    rows = "".join(_event_row(event, with_stream=with_stream) for event in events)
    return (
        f'<table id="{esc(css_id)}"><thead><tr><th>Position</th><th>Recorded (UTC)</th>{stream}'
        f"<th>Event</th><th>Reason</th><th>Source</th><th>Hash</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def user_page(
    viewer: Viewer, user_id: str, events: Sequence[RecordedEvent], state: CredentialState | None, panels: str
) -> str:
    """One user's timeline in log order, their credential now, and the chain and checkpoint panels."""
    body = (
        f'<section class="card">{search_box(user_id)}</section>'
        f'<h1>Timeline of <span id="user">{esc(user_id)}</span></h1>'
        f'<div class="grid">{_state_panel(state, len(events))}{panels}</div>'
        '<section class="card"><h2>Events, oldest first</h2>'
        f"{_events_table(events, css_id='timeline', with_stream=False)}"
        f'<p class="note"><a href="{esc(events_url(user_id=user_id))}">The same events with filters</a>'
        "</p></section>"
    )
    return layout(f"Timeline of {user_id}", body, viewer=viewer)


@dataclass(frozen=True, slots=True)
class EventFilters:
    """The events list's filters: one type, one user (or `system`), and the position cursor."""

    type: str = ""
    user_id: str = ""
    after: int = 0


def _filter_form(filters: EventFilters) -> str:
    options = [("", "every type")] + [(name, name) for name in sorted(CATALOGUE)]
    select = "".join(
        f'<option value="{esc(value)}"{" selected" if value == filters.type else ""}>{esc(label)}</option>'
        for value, label in options
    )
    return (
        '<form class="filters" method="get" action="/audit/events">'
        f'<div><label for="type">Type</label><select id="type" name="type">{select}</select></div>'
        '<div><label for="user_id">User id</label>'
        f'<input id="user_id" name="user_id" value="{esc(filters.user_id)}" maxlength="64" '
        'autocomplete="off"></div><button type="submit">Filter</button></form>'
    )


def events_page(
    viewer: Viewer,
    filters: EventFilters,
    events: Sequence[RecordedEvent],
    next_after: int | None,
    error: str | None = None,
) -> str:
    """A page of events by position, with the filter form and links to the first and next pages."""
    pager = []
    if filters.after > 0:
        pager.append(
            f'<a href="{esc(events_url(type=filters.type, user_id=filters.user_id))}">First page</a>'
        )
    if next_after is not None:
        pager.append(
            f'<a id="next" href="'
            f'{esc(events_url(type=filters.type, user_id=filters.user_id, after=next_after))}">Next page</a>'
        )
    listing = (
        _events_table(events, css_id="events", with_stream=True)
        if events
        else '<p class="note">No event matches.</p>'
    )
    body = (
        f'<section class="card"><h1>Events</h1>{_filter_form(filters)}</section>{error_box(error)}'
        f'<section class="card">{listing}<div class="pager">{"".join(pager)}</div></section>'
    )
    return layout("Events", body, viewer=viewer)
