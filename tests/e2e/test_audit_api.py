"""The auditor and admin APIs over HTTP: bearer tokens by role, filters, paging, streaming, timelines."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from events.crypto import MasterKeyRing
from events.envelope import SYSTEM_STREAM
from events.event_types import TokenRevoked, UserDisabled, UserEnabled, to_new_event
from events.reading import iter_events
from events.writer import GroupCommitWriter
from projections.api_tokens import project_tokens
from projections.credential_store import project_credentials
from receiver.app_keys import POOL, WRITER
from receiver.bearer_tokens import issue_token, token_digest
from receiver.credentials import provision_credential, revoke_credential
from receiver.middleware import request_context
from receiver.routes import admin, audit
from receiver.routes.admin import CredentialOut
from receiver.routes.audit import ChainStatus, EventOut, EventPage, UserHistory
from tests.factories import new_event

PASSWORD = "Abcde-fghij-kmnop-qrstw-xyzAB"
EVENTS = "/api/v1/audit/events"
VERIFY = "/api/v1/audit/verify"
AUDIT_ROUTES = (EVENTS, "/api/v1/audit/users/alice/history", VERIFY)
ADMIN_ROUTE = "/api/v1/users/alice/credential"

Client = TestClient[web.Request, web.Application]


@dataclass
class Api:
    """The audit and admin routes served over HTTP, with a live token of each role."""

    client: Client
    writer: GroupCommitWriter
    auditor: dict[str, str]
    admin: dict[str, str]
    tokens: tuple[str, str]


@pytest.fixture
async def token_writer(pool: asyncpg.Pool) -> AsyncIterator[GroupCommitWriter]:
    """A writer whose hooks project credentials and tokens."""
    writer = GroupCommitWriter(pool, hooks=(project_credentials, project_tokens))
    await writer.start()
    yield writer
    await writer.close()


async def new_token(writer: GroupCommitWriter, role: str) -> str:
    token, created = issue_token(role, f"{role} for tests")
    await writer.append(to_new_event(created, stream=SYSTEM_STREAM, source="test"))
    return token


@pytest.fixture
async def api(pool: asyncpg.Pool, token_writer: GroupCommitWriter) -> AsyncIterator[Api]:
    """The routes with the service's middleware, over the test's database."""
    app = web.Application(middlewares=[request_context])
    app[POOL] = pool
    app[WRITER] = token_writer
    audit.setup(app)
    admin.setup(app)
    auditor, admin_token = await new_token(token_writer, "auditor"), await new_token(token_writer, "admin")
    async with TestClient(TestServer(app)) as client:
        yield Api(
            client,
            token_writer,
            {"Authorization": f"Bearer {auditor}"},
            {"Authorization": f"Bearer {admin_token}"},
            (auditor, admin_token),
        )


async def provision(api: Api, pool: asyncpg.Pool, keys: MasterKeyRing, user: str = "alice") -> int:
    appended = await provision_credential(
        pool,
        api.writer,
        keys,
        user_id=user,
        login_name=f"{user}@ldap",
        scopes=["files"],
        app_password=PASSWORD,
        source="astrolabe",
    )
    return appended.position


async def get_json(api: Api, path: str, **params: Any) -> Any:
    response = await api.client.get(path, params=params, headers=api.auditor)
    assert response.status == 200, await response.text()
    return await response.json()


async def positions(owner: asyncpg.Connection, where: str = "true", *args: Any) -> list[int]:
    rows = await owner.fetch(f"SELECT position FROM events WHERE {where} ORDER BY position", *args)
    return [row["position"] for row in rows]


@pytest.mark.parametrize("path", [*AUDIT_ROUTES, ADMIN_ROUTE])
async def test_without_a_token_every_route_is_401_with_a_bearer_challenge(api: Api, path: str) -> None:
    """No Authorization header: 401, the JSON error shape, and WWW-Authenticate: Bearer."""
    response = await api.client.get(path)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = await response.json()
    assert (body["success"], body["code"]) == (False, "unauthorized")


@pytest.mark.parametrize("path", AUDIT_ROUTES)
async def test_an_admin_token_is_forbidden_on_audit_routes(api: Api, path: str) -> None:
    """Roles do not nest: an admin token is 403 where an auditor token is needed."""
    response = await api.client.get(path, headers=api.admin)
    assert response.status == 403
    assert (await response.json())["code"] == "wrong_role"


async def test_an_auditor_token_is_forbidden_on_the_admin_route(api: Api) -> None:
    """An auditor token is 403 on the admin route."""
    response = await api.client.get(ADMIN_ROUTE, headers=api.auditor)
    assert response.status == 403


async def test_a_revoked_token_is_401_at_once(api: Api) -> None:
    """After token.revoked is acknowledged, the next request with the token is refused."""
    token_id = api.tokens[0].split("_")[2]
    await api.writer.append(to_new_event(TokenRevoked(token_id), stream=SYSTEM_STREAM, source="test"))
    response = await api.client.get(VERIFY, headers=api.auditor)
    assert response.status == 401
    assert (await response.json())["code"] == "invalid_token"


async def test_a_garbage_token_is_401_and_not_echoed(api: Api) -> None:
    """A malformed bearer token is refused without repeating it."""
    garbage = "cl_auditor_0123456789ab_" + "Q" * 44
    response = await api.client.get(EVENTS, headers={"Authorization": f"Bearer {garbage}"})
    assert response.status == 401
    assert garbage not in await response.text()


async def test_pages_follow_next_after_to_the_end(api: Api, owner: asyncpg.Connection) -> None:
    """Pages of `limit` events in position order, then an empty page with next_after null."""
    for _ in range(5):
        await api.writer.append(new_event())
    seen: list[int] = []
    after = 0
    while True:
        page = EventPage.model_validate(await get_json(api, EVENTS, after=after, limit=2))
        if page.next_after is None:
            assert page.events == []
            break
        assert 1 <= len(page.events) <= 2
        seen += [event.position for event in page.events]
        after = page.next_after
    assert seen == await positions(owner)


async def test_a_page_holds_the_envelope_with_hex_hashes(api: Api, owner: asyncpg.Connection) -> None:
    """Each event carries every envelope field; hashes are the stored ones, in hex."""
    appended = await api.writer.append(new_event(metadata={"request_id": "r1"}))
    page = EventPage.model_validate(await get_json(api, EVENTS, after=appended.position - 1))
    event = page.events[0]
    row = await owner.fetchrow("SELECT * FROM events WHERE position = $1", appended.position)
    assert row is not None
    assert (event.position, event.event_id, event.stream, event.type) == (
        row["position"],
        row["event_id"],
        row["stream"],
        row["type"],
    )
    assert (event.metadata, event.data) == ({"request_id": "r1"}, {"note": "made by a test"})
    assert (event.prev_hash, event.hash) == (bytes(row["prev_hash"]).hex(), appended.hash.hex())
    assert event.recorded_at == row["recorded_at"]


async def test_types_filter_repeated_or_comma_separated(api: Api, owner: asyncpg.Connection) -> None:
    """`type=a&type=b` and `type=a,b` select the same events, and only those types."""
    for type in (UserDisabled.TYPE, UserEnabled.TYPE, "user.deleted", UserDisabled.TYPE):
        await api.writer.append(new_event(type=type, data={}))
    repeated = await api.client.get(
        EVENTS, params=[("type", "user.disabled"), ("type", "user.enabled")], headers=api.auditor
    )
    commas = await get_json(api, EVENTS, type="user.disabled, user.enabled")
    assert (await repeated.json()) == commas
    wanted = await positions(owner, "type = ANY($1::text[])", ["user.disabled", "user.enabled"])
    assert [e["position"] for e in commas["events"]] == wanted
    assert len(wanted) == 3


async def test_user_filter_selects_one_stream(api: Api, owner: asyncpg.Connection) -> None:
    """user_id keeps only that user's events."""
    for user in ("alice", "bob", "alice", "carol"):
        await api.writer.append(new_event(stream=user))
    page = await get_json(api, EVENTS, user_id="alice")
    assert [e["position"] for e in page["events"]] == await positions(owner, "stream = 'alice'")
    assert {e["stream"] for e in page["events"]} == {"alice"}


async def test_time_filters_apply_to_recorded_at(api: Api) -> None:
    """`from` is inclusive, `to` exclusive, both on our recorded_at."""
    first = await api.writer.append(new_event(stream="early"))
    second = await api.writer.append(new_event(stream="late"))
    page = EventPage.model_validate(await get_json(api, EVENTS))
    recorded = {e.position: e.recorded_at for e in page.events}
    assert recorded[first.position] < recorded[second.position]
    since = await get_json(api, EVENTS, **{"from": recorded[second.position].isoformat()})
    until = await get_json(api, EVENTS, to=recorded[second.position].isoformat(), after=first.position - 1)
    assert [e["position"] for e in since["events"]] == [second.position]
    assert [e["position"] for e in until["events"]] == [first.position]


async def test_an_offset_with_an_unencoded_plus_still_reads(api: Api) -> None:
    """`from=…+02:00` written straight into a URL (the + arrives as a space) is understood."""
    await api.writer.append(new_event())
    response = await api.client.get(f"{EVENTS}?from=2000-01-01T00:00:00+02:00", headers=api.auditor)
    assert response.status == 200
    assert len((await response.json())["events"]) > 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"after": "-1"}, "after"),
        ({"after": str(2**63)}, "after"),
        ({"type": "user.exploded"}, "type"),
        ({"from": "2026-01-01T00:00:00"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"to": "0.5"}, "to"),
        ({"from": "1700000000"}, "from"),
        ({"user_id": "bad\x00id"}, "user_id"),
        ({"user_id": " padded"}, "user_id"),
        ({"usr_id": "alice"}, "(unknown parameter)"),
        ({"to": "0001-01-01T12:00:00+14:00"}, "to"),
        ({"from": "9999-12-31T23:00:00-14:00"}, "from"),
    ],
)
async def test_bad_parameters_are_422_naming_the_field(api: Api, params: dict[str, str], field: str) -> None:
    """Every malformed filter is a 422 with the JSON error shape and the field at fault."""
    response = await api.client.get(EVENTS, params=params, headers=api.auditor)
    assert response.status == 422
    body = await response.json()
    assert (body["success"], body["code"]) == (False, "invalid_query")
    assert field in [f["field"] for f in body["fields"]]


async def test_a_single_valued_parameter_given_twice_is_400(api: Api) -> None:
    """`limit=1&limit=2` is ambiguous and refused."""
    response = await api.client.get(EVENTS, params=[("limit", "1"), ("limit", "2")], headers=api.auditor)
    assert response.status == 400
    assert (await response.json())["code"] == "repeated_parameter"


async def test_the_far_past_and_future_are_valid_filters(api: Api) -> None:
    """Times near year 1 and 9999 are answered (with nothing), never a 500."""
    early = await get_json(api, EVENTS, to="0001-01-02T00:00:00+14:00")
    late = await get_json(api, EVENTS, **{"from": "9999-12-30T00:00:00-14:00"})
    assert early["events"] == late["events"] == []


async def test_ndjson_streams_every_match_past_one_cursor_page(api: Api, owner: asyncpg.Connection) -> None:
    """More events than the cursor's prefetch all arrive, one JSON object per line, in order."""
    await asyncio.gather(*(api.writer.append(new_event(stream=f"user{n % 7}")) for n in range(2600)))
    response = await api.client.get(EVENTS, headers={**api.auditor, "Accept": "application/x-ndjson"})
    assert response.status == 200
    assert response.content_type == "application/x-ndjson"
    lines = (await response.text()).splitlines()
    events = [EventOut.model_validate(json.loads(line)) for line in lines]
    assert [e.position for e in events] == await positions(owner)
    assert len(events) > 2600


async def test_ndjson_applies_the_filters(api: Api, owner: asyncpg.Connection) -> None:
    """The stream holds exactly what the filters select, ignoring the JSON page size."""
    for n in range(6):
        await api.writer.append(new_event(stream="alice" if n % 2 else "bob"))
    response = await api.client.get(
        EVENTS,
        params={"user_id": "alice", "limit": "1"},
        headers={**api.auditor, "Accept": "application/x-ndjson"},
    )
    lines = (await response.text()).splitlines()
    assert [json.loads(line)["position"] for line in lines] == await positions(owner, "stream = 'alice'")


async def test_a_token_digest_is_never_served(api: Api) -> None:
    """token.created events are listed with their digest withheld, as JSON and as NDJSON."""
    page = await api.client.get(EVENTS, params={"user_id": SYSTEM_STREAM}, headers=api.auditor)
    stream = await api.client.get(
        EVENTS, params={"user_id": SYSTEM_STREAM}, headers={**api.auditor, "Accept": "application/x-ndjson"}
    )
    served = await page.text() + await stream.text()
    created = [e for e in (await page.json())["events"] if e["type"] == "token.created"]
    assert [e["data"]["digest"] for e in created] == [audit.DIGEST_WITHHELD] * 2
    for token in api.tokens:
        assert token_digest(token) not in served
        assert token not in served


async def test_a_revoked_users_timeline_is_in_order_with_reasons(
    api: Api, pool: asyncpg.Pool, master_keys: MasterKeyRing, owner: asyncpg.Connection
) -> None:
    """Provisioned, disabled, revoked by an admin: in that order, with the revocation's reason and state."""
    await provision(api, pool, master_keys)
    await api.writer.append(to_new_event(UserDisabled(), stream="alice", source="nextcloud"))
    await revoke_credential(api.writer, user_id="alice", reason="admin", source="admin-script")
    history = UserHistory.model_validate(await get_json(api, "/api/v1/audit/users/alice/history"))
    assert [(e.type, e.reason, e.source, e.stream_version) for e in history.timeline] == [
        ("credential.provisioned", None, "astrolabe", 1),
        ("user.disabled", None, "nextcloud", 2),
        ("credential.revoked", "admin", "admin-script", 3),
    ]
    assert [e.position for e in history.timeline] == await positions(owner, "stream = 'alice'")
    assert history.state is not None
    assert (history.state.status, history.state.reason, history.state.login_name) == (
        "revoked",
        "admin",
        "alice@ldap",
    )


async def test_the_timeline_never_holds_the_ciphertext(
    api: Api, pool: asyncpg.Pool, master_keys: MasterKeyRing, owner: asyncpg.Connection
) -> None:
    """Neither the sealed secret nor its key id appears in the history answer."""
    position = await provision(api, pool, master_keys)
    secret = json.loads(await owner.fetchval("SELECT data::text FROM events WHERE position = $1", position))[
        "secret"
    ]
    response = await api.client.get("/api/v1/audit/users/alice/history", headers=api.auditor)
    text = await response.text()
    assert response.status == 200
    for value in (secret["ciphertext"], secret["nonce"], secret["key_id"], PASSWORD):
        assert value not in text


async def test_a_user_the_log_never_mentioned_has_no_history(api: Api) -> None:
    """404 with the JSON error shape."""
    response = await api.client.get("/api/v1/audit/users/nobody/history", headers=api.auditor)
    assert response.status == 404
    assert (await response.json())["code"] == "unknown_user"


@pytest.mark.parametrize("uid", ["%00", "system", "%20alice", "a" * 65])
async def test_a_user_id_nextcloud_would_not_allow_is_400(api: Api, uid: str) -> None:
    """Path user ids follow Nextcloud's rule; `system` is not a user."""
    response = await api.client.get(f"/api/v1/audit/users/{uid}/history", headers=api.auditor)
    assert response.status == 400
    assert (await response.json())["code"] == "invalid_user_id"


async def test_verify_reports_an_intact_log_with_its_head(api: Api, owner: asyncpg.Connection) -> None:
    """intact, the number checked, and the head position and hash as stored."""
    for _ in range(3):
        await api.writer.append(new_event())
    status = ChainStatus.model_validate(await get_json(api, VERIFY))
    head = await owner.fetchrow("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
    assert head is not None
    assert (status.intact, status.checked, status.bad_position, status.reason) == (
        True,
        head["position"],
        None,
        None,
    )
    assert (status.head_position, status.head_hash) == (head["position"], bytes(head["hash"]).hex())


async def test_the_admin_route_shows_the_projected_credential(
    api: Api, pool: asyncpg.Pool, master_keys: MasterKeyRing
) -> None:
    """Status, login name, scopes, positions and the sync bookkeeping of a fresh credential."""
    position = await provision(api, pool, master_keys)
    response = await api.client.get(ADMIN_ROUTE, headers=api.admin)
    assert response.status == 200
    credential = CredentialOut.model_validate(await response.json())
    assert (credential.status, credential.login_name, credential.scopes) == (
        "active",
        "alice@ldap",
        ["files"],
    )
    assert (credential.credential_position, credential.last_position) == (position, position)
    assert credential.sync.next_sync_at == credential.provisioned_at
    assert credential.sync.consecutive_failures == 0


async def test_the_admin_route_holds_no_secret_or_key_material(
    api: Api, pool: asyncpg.Pool, master_keys: MasterKeyRing, owner: asyncpg.Connection
) -> None:
    """No ciphertext, nonce, key id or password anywhere in the answer."""
    position = await provision(api, pool, master_keys)
    secret = json.loads(await owner.fetchval("SELECT data::text FROM events WHERE position = $1", position))[
        "secret"
    ]
    text = await (await api.client.get(ADMIN_ROUTE, headers=api.admin)).text()
    for value in (secret["ciphertext"], secret["nonce"], secret["key_id"], PASSWORD):
        assert value not in text
    assert "key_id" not in text


async def test_the_admin_route_is_404_for_a_user_without_credential(api: Api) -> None:
    """A user who never provisioned has no projected state."""
    await api.writer.append(new_event(stream="bob"))
    response = await api.client.get("/api/v1/users/bob/credential", headers=api.admin)
    assert response.status == 404
    assert (await response.json())["code"] == "no_credential"


async def test_times_are_served_as_the_canonical_form_spells_them(api: Api) -> None:
    """ISO-8601 in UTC with microseconds and Z: the very text the chain hashed, so auditors can re-hash."""
    await api.writer.append(new_event())
    event = (await get_json(api, EVENTS, limit=1))["events"][0]
    for name in ("recorded_at", "occurred_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", event[name]), event[name]


async def test_a_stream_that_fails_half_way_is_cut_not_finished(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the headers went out breaks the response: no truncated export looks whole."""
    first = await api.writer.append(new_event())

    async def failing(conn: Any, **filters: Any) -> AsyncIterator[Any]:
        async for event in iter_events(conn, **filters):
            yield event
        raise asyncpg.exceptions.ConnectionDoesNotExistError("the connection was closed in the middle")

    monkeypatch.setattr(audit, "iter_events", failing)
    response = await api.client.get(
        EVENTS,
        params={"after": first.position - 1},
        headers={**api.auditor, "Accept": "application/x-ndjson"},
    )
    assert response.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()
