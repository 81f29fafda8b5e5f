"""The events list's filters, read from the query string as a form sends them (empty means none)."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from events.envelope import SYSTEM_STREAM
from events.event_types import CATALOGUE
from receiver.audit_ui.log_views import EventFilters
from receiver.identifiers import valid_user_id

MAX_POSITION = 2**63 - 1
_NAMES = ("type", "user_id", "after")

# Documented as the catalogue's names, plus the empty "every type" a form sends.
EventTypeFilter = Annotated[str, WithJsonSchema({"type": "string", "enum": ["", *sorted(CATALOGUE)]})]


class EventsPageQuery(BaseModel):
    """The events list's query: empty fields (as a form sends them) mean no filter."""

    model_config = ConfigDict(extra="ignore")

    type: EventTypeFilter = Field(default="", description="only this event type (empty: every type)")
    user_id: str = Field(
        default="", max_length=64, description="only this user's events, or `system` (empty: everyone)"
    )
    after: int = Field(default=0, ge=0, le=MAX_POSITION, description="only events after this position")


def parse_filters(request: web.Request) -> EventFilters | str:
    """The validated filters, or what is wrong with them in a sentence (which never echoes a value)."""
    raw = {name: request.query.getall(name) for name in _NAMES if name in request.query}
    if any(len(values) > 1 for values in raw.values()):
        return "Each filter may be given once."
    try:
        query = EventsPageQuery.model_validate({name: values[0].strip() for name, values in raw.items()})
    except ValidationError as error:
        return "Not a valid filter: " + "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in error.errors())
    if query.type and query.type not in CATALOGUE:
        return "Not a valid filter: type: not an event type of the catalogue."
    if query.user_id and query.user_id != SYSTEM_STREAM and not valid_user_id(query.user_id):
        return "Not a valid filter: user_id: not a Nextcloud user id (or `system`)."
    return EventFilters(query.type, query.user_id, query.after)
