"""Invariant 10 as a property: generated malformed input at every route never gives a 500 nor appends."""

from __future__ import annotations

import base64
from urllib.parse import quote

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver.routing import ROUTE_SPECS
from tests.e2e.conftest import Service

printable = st.text(
    st.characters(min_codepoint=32, max_codepoint=0x2FFF, blacklist_categories=["Cs"]), max_size=80
)
header_values = st.one_of(
    printable.map(lambda t: t.replace("\r", "").replace("\n", "")),
    st.binary(max_size=60).map(lambda b: "Basic " + base64.b64encode(b).decode()),
    st.tuples(printable, printable).map(
        lambda p: "Basic " + base64.b64encode(f"{p[0]}:{p[1]}".encode()).decode()
    ),
    st.sampled_from(["Bearer ", "Bearer cl_auditor_x_y", "v1,AAAA", "v1,", "", "Basic", "Basic =="]),
)


def sendable(value: str) -> str:
    """What an HTTP client can put in a header at all: Latin-1, without control characters."""
    text = value.encode("latin-1", "replace").decode("latin-1")
    return "".join(c for c in text if not (ord(c) < 32 or 127 <= ord(c) < 160))


headers = st.dictionaries(
    st.sampled_from(
        ["Authorization", "webhook-id", "webhook-timestamp", "webhook-signature", "Content-Type", "Accept"]
    ),
    header_values.map(sendable),
    max_size=6,
)
bodies = st.one_of(
    st.binary(max_size=300),
    printable.map(str.encode),
    st.sampled_from([b"{}", b"[]", b"null", b'{"type": "user.deleted"}', b'{"username": 5, "scopes": "x"}']),
)
path_values = st.one_of(printable, st.sampled_from(["system", "..", "%00", "a" * 300, "alice"]))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_no_route_answers_500_or_appends_for_generated_input(
    data: st.DataObject, service: Service, owner: asyncpg.Connection
) -> None:
    """Any route, hostile path values, headers and bodies: a 2xx, 4xx or 503, and nothing stored."""
    specs = service.client.app[ROUTE_SPECS]
    spec = data.draw(st.sampled_from(specs))
    path = spec.path
    for name in ("uid",):
        if "{" + name + "}" in path:
            path = path.replace("{" + name + "}", quote(data.draw(path_values), safe=""))
    response = await service.client.request(
        spec.method, path, headers=data.draw(headers), data=data.draw(bodies)
    )
    assert response.status < 500 or response.status == 503, (spec.method, path, response.status)
    if response.status >= 400:
        if response.content_type == "text/html":
            # Only the audit page answers a browser in HTML; every API error has the JSON shape.
            assert spec.path == "/audit" or spec.path.startswith("/audit/"), spec.path
        else:
            assert (await response.json())["success"] is False
    assert await owner.fetchval("SELECT count(*) FROM events") == 0
