"""The audit page over HTTP: sign-in with the auditor token, the cookie, CSRF, timelines, events, escaping."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookies import SimpleCookie

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from events.checkpoints import SigningKey, sign_checkpoint
from events.crypto import MasterKeyRing
from events.envelope import SYSTEM_STREAM
from events.event_types import TokenRevoked, UserDisabled, to_new_event
from events.writer import GroupCommitWriter
from receiver.app_keys import POOL
from receiver.audit_ui.checkpoint import read_latest_checkpoint
from receiver.audit_ui.session import SESSION_COOKIE, SIGN_IN_COOKIE
from receiver.bearer_tokens import issue_token, token_digest
from receiver.credentials import provision_credential, revoke_credential
from receiver.middleware import request_context
from receiver.routes import audit_page, operations
from tests.e2e.processes import free_port
from tests.factories import new_event

PASSWORD = "Abcde-fghij-kmnop-qrstw-xyzAB"
_NONCE = re.compile(r'name="nonce" value="([^"]+)"')
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_ROW = re.compile(r'<tr class="tone-(\w+)" data-position="(\d+)" data-type="([^"]+)"')

Client = TestClient[web.Request, web.Application]


@dataclass
class Page:
    """The audit page served over HTTP to a client that keeps cookies as a browser does."""

    client: Client
    writer: GroupCommitWriter
    auditor: str
    admin: str


async def new_token(writer: GroupCommitWriter, role: str) -> str:
    token, created = issue_token(role, f"{role} for tests")
    await writer.append(to_new_event(created, stream=SYSTEM_STREAM, source="test"))
    return token


def build_app(pool: asyncpg.Pool, **setup: object) -> web.Application:
    app = web.Application(middlewares=[request_context])
    app[POOL] = pool
    audit_page.setup(app, **setup)  # type: ignore[arg-type]
    operations.setup(app)
    return app


async def serve(app: web.Application) -> Client:
    port = free_port()
    # Browsers treat the loopback as a secure origin and so send Secure cookies to it over HTTP;
    # aiohttp's jar is told the same, or it would withhold the session cookie.
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=f"http://127.0.0.1:{port}")
    client = TestClient(TestServer(app, host="127.0.0.1", port=port), cookie_jar=jar)
    await client.start_server()
    return client


@pytest.fixture
async def audit(pool: asyncpg.Pool, writer: GroupCommitWriter) -> AsyncIterator[Page]:
    """The page's routes with the service's middleware, over the test's database."""
    client = await serve(build_app(pool))
    try:
        yield Page(client, writer, await new_token(writer, "auditor"), await new_token(writer, "admin"))
    finally:
        await client.close()


async def sign_in(page: Page, token: str) -> aiohttp.ClientResponse:
    """Open the form (which sets the nonce cookie), then post it with `token`."""
    form = await (await page.client.get("/audit")).text()
    match = _NONCE.search(form)
    assert match is not None
    return await page.client.post(
        "/audit/sign-in", data={"token": token, "nonce": match.group(1)}, allow_redirects=False
    )


def session_cookie(page: Page) -> str | None:
    cookies = {cookie.key: cookie.value for cookie in page.client.session.cookie_jar}
    return cookies.get(SESSION_COOKIE) or None


async def signed_in(page: Page) -> str:
    """Sign in as the auditor; the home page, whose forms carry the CSRF token."""
    response = await sign_in(page, page.auditor)
    assert response.status == 303
    return await (await page.client.get("/audit")).text()


async def revoked_alice(page: Page, pool: asyncpg.Pool, keys: MasterKeyRing) -> list[int]:
    provisioned = await provision_credential(
        pool,
        page.writer,
        keys,
        user_id="alice",
        login_name="alice@ldap",
        scopes=["files"],
        app_password=PASSWORD,
        source="astrolabe",
    )
    disabled = await page.writer.append(to_new_event(UserDisabled(), stream="alice", source="nextcloud"))
    revoked = await revoke_credential(page.writer, user_id="alice", reason="admin", source="admin-script")
    return [provisioned.position, disabled.position, revoked.position]


async def test_the_sign_in_form_is_shown_before_signing_in(audit: Page) -> None:
    """GET /audit: 200, a password field for the token, and the form's nonce set as a cookie."""
    response = await audit.client.get("/audit")
    body = await response.text()
    assert response.status == 200
    assert response.content_type == "text/html"
    assert 'name="token" type="password"' in body
    assert SIGN_IN_COOKIE in response.cookies


async def test_a_wrong_token_cannot_sign_in(audit: Page) -> None:
    """401, the form again with an error, and no session cookie."""
    wrong = audit.auditor[:-4] + "AAAA"
    response = await sign_in(audit, wrong)
    assert response.status == 401
    assert "That token is not valid" in await response.text()
    assert SESSION_COOKIE not in response.cookies
    assert session_cookie(audit) is None


async def test_an_admin_token_cannot_sign_in(audit: Page) -> None:
    """Roles do not nest: 403 and no session cookie."""
    response = await sign_in(audit, audit.admin)
    assert response.status == 403
    assert "needs an auditor token" in await response.text()
    assert session_cookie(audit) is None


async def test_the_right_token_sets_an_httponly_strict_secure_cookie(audit: Page) -> None:
    """303 to /audit with the token in an HttpOnly, Secure, SameSite=Strict cookie scoped to /audit."""
    response = await sign_in(audit, audit.auditor)
    assert response.status == 303
    assert response.headers["Location"] == "/audit"
    cookie = SimpleCookie(response.headers.getall("Set-Cookie")[0])[SESSION_COOKIE]
    assert cookie.value == audit.auditor
    assert (cookie["httponly"], cookie["secure"], cookie["samesite"], cookie["path"]) == (
        True,
        True,
        "Strict",
        "/audit",
    )


async def test_a_sign_in_without_the_forms_nonce_is_refused(audit: Page) -> None:
    """A post that did not come from our form (no nonce cookie to match) is 403, however good the token."""
    response = await audit.client.post(
        "/audit/sign-in", data={"token": audit.auditor, "nonce": "x" * 43}, allow_redirects=False
    )
    assert response.status == 403
    assert session_cookie(audit) is None


async def test_pages_need_a_session(audit: Page) -> None:
    """Without the cookie, a user's page is 401 with the sign-in form and nothing of the log."""
    await audit.writer.append(new_event(stream="alice"))
    response = await audit.client.get("/audit/users/alice")
    body = await response.text()
    assert response.status == 401
    assert 'name="token"' in body
    assert "user.disabled" not in body


async def test_signing_in_opens_the_search(audit: Page) -> None:
    """Signed in, /audit offers the user search and names the token that signed in."""
    body = await signed_in(audit)
    assert 'action="/audit/search"' in body
    assert audit.auditor.split("_")[2] in body


async def test_a_revoked_token_ends_the_session(audit: Page) -> None:
    """After token.revoked, the next page is the sign-in form (401) and the cookie is cleared."""
    await signed_in(audit)
    token_id = audit.auditor.split("_")[2]
    await audit.writer.append(to_new_event(TokenRevoked(token_id), stream=SYSTEM_STREAM, source="test"))
    response = await audit.client.get("/audit/events")
    assert response.status == 401
    assert "Your session has ended" in await response.text()
    assert session_cookie(audit) is None


async def test_the_search_leads_to_the_users_timeline(audit: Page) -> None:
    """The search box's GET answers 303 to the user's page, the id percent-encoded."""
    await signed_in(audit)
    response = await audit.client.get("/audit/search", params={"user_id": "o'brien"}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/audit/users/o%27brien"


async def test_the_timeline_of_a_revoked_user_is_in_order(
    audit: Page, pool: asyncpg.Pool, master_keys: MasterKeyRing
) -> None:
    """Provisioned (green), disabled (amber), revoked (grey), oldest first, and the state is revoked."""
    positions = await revoked_alice(audit, pool, master_keys)
    await signed_in(audit)
    response = await audit.client.get("/audit/users/alice")
    body = await response.text()
    assert response.status == 200
    assert [(tone, int(position), type) for tone, position, type in _ROW.findall(body)] == [
        ("ok", positions[0], "credential.provisioned"),
        ("warn", positions[1], "user.disabled"),
        ("ended", positions[2], "credential.revoked"),
    ]
    assert '<span class="badge tone-ended">revoked</span>' in body
    assert "alice@ldap" in body


async def test_a_user_the_log_never_mentioned_is_404(audit: Page) -> None:
    """404 with a sentence saying so, and the search box to try another."""
    await signed_in(audit)
    response = await audit.client.get("/audit/users/nobody")
    assert response.status == 404
    assert "The log holds no event about this user." in await response.text()


async def test_no_page_shows_the_ciphertext_or_a_token(
    audit: Page, pool: asyncpg.Pool, master_keys: MasterKeyRing, owner: asyncpg.Connection
) -> None:
    """Home, timeline, events (the system stream's too) and verify: no sealed secret, token or digest."""
    positions = await revoked_alice(audit, pool, master_keys)
    data = json.loads(await owner.fetchval("SELECT data::text FROM events WHERE position = $1", positions[0]))
    await signed_in(audit)
    pages = ["/audit", "/audit/users/alice", "/audit/events", "/audit/events?user_id=system", "/audit/verify"]
    text = ""
    for path in pages:
        response = await audit.client.get(path)
        assert response.status == 200, path
        text += await response.text()
    secret = data["secret"]
    for value in (secret["ciphertext"], secret["nonce"], data["fingerprint"], PASSWORD):
        assert value not in text
    for token in (audit.auditor, audit.admin):
        assert token not in text
        assert token_digest(token) not in text


async def test_a_user_id_with_markup_characters_is_escaped(audit: Page) -> None:
    """A valid id with an apostrophe appears only escaped (in text) or percent-encoded (in links)."""
    await audit.writer.append(new_event(stream="o'brien"))
    await signed_in(audit)
    for path in ("/audit/users/o'brien", "/audit/events?user_id=o'brien"):
        body = await (await audit.client.get(path)).text()
        assert "o&#x27;brien" in body
        assert "o'brien" not in body


async def test_a_hostile_user_id_in_the_path_is_400_and_escaped(audit: Page) -> None:
    """An id that is markup is refused with 400, and shown only as text."""
    await signed_in(audit)
    hostile = '<img src=x onerror="alert(1)">'
    for response in (
        await audit.client.get(f"/audit/users/{hostile}"),
        await audit.client.get("/audit/search", params={"user_id": hostile}),
    ):
        body = await response.text()
        assert response.status == 400
        assert "<img" not in body
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in body


async def test_pages_forbid_scripts_and_framing(audit: Page) -> None:
    """Every page carries a CSP without script sources, no-store, and nosniff."""
    response = await audit.client.get("/audit")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_sign_out_without_the_csrf_token_is_refused(audit: Page) -> None:
    """A sign-out post without the session's CSRF token is 403 and the session stays."""
    await signed_in(audit)
    response = await audit.client.post("/audit/sign-out", data={"csrf": "forged"}, allow_redirects=False)
    assert response.status == 403
    assert session_cookie(audit) == audit.auditor


async def test_sign_out_with_the_csrf_token_clears_the_cookie(audit: Page) -> None:
    """The header's sign-out form ends the session: the next page is the sign-in form."""
    home = await signed_in(audit)
    match = _CSRF.search(home)
    assert match is not None
    response = await audit.client.post(
        "/audit/sign-out", data={"csrf": match.group(1)}, allow_redirects=False
    )
    assert response.status == 303
    assert session_cookie(audit) is None
    assert (await audit.client.get("/audit/events")).status == 401


async def test_the_events_list_pages_by_position(audit: Page, owner: asyncpg.Connection) -> None:
    """50 events a page in position order; the next link continues after the last one shown."""
    for n in range(60):
        await audit.writer.append(new_event(stream=f"user{n % 3}"))
    await signed_in(audit)
    everything = [
        row["position"] for row in await owner.fetch("SELECT position FROM events ORDER BY position")
    ]
    seen: list[int] = []
    path: str | None = "/audit/events"
    while path is not None:
        body = await (await audit.client.get(path)).text()
        seen += [int(position) for _, position, _ in _ROW.findall(body)]
        link = re.search(r'<a id="next" href="([^"]+)"', body)
        path = link.group(1).replace("&amp;", "&") if link else None
    assert seen == everything
    assert len(everything) > 50


async def test_the_events_list_filters_by_type_and_user(audit: Page) -> None:
    """type and user_id select only matching events."""
    for stream, type in [("alice", "user.disabled"), ("bob", "user.disabled"), ("alice", "user.enabled")]:
        await audit.writer.append(new_event(stream=stream, type=type, data={}))
    await signed_in(audit)
    body = await (await audit.client.get("/audit/events?type=user.disabled&user_id=alice")).text()
    assert [type for _, _, type in _ROW.findall(body)] == ["user.disabled"]
    assert 'href="/audit/users/alice"' in body


@pytest.mark.parametrize(
    "query", ["type=user.exploded", "after=-1", "after=many", "user_id=%00", "after=1&after=2"]
)
async def test_a_bad_filter_is_400(audit: Page, query: str) -> None:
    """Every malformed filter is a 400 page saying so."""
    await signed_in(audit)
    response = await audit.client.get(f"/audit/events?{query}")
    assert response.status == 400
    assert "filter" in await response.text()


async def test_verify_shows_an_intact_chain_and_later_pages_remember_it(audit: Page) -> None:
    """GET /audit/verify runs the check; the home page then shows its outcome instead of 'not verified'."""
    for _ in range(3):
        await audit.writer.append(new_event())
    home = await signed_in(audit)
    assert "not verified yet" in home
    verified = await (await audit.client.get("/audit/verify")).text()
    assert '<span class="badge tone-ok">intact</span>' in verified
    assert '<span class="badge tone-ok">intact</span>' in await (await audit.client.get("/audit")).text()


async def test_without_a_checkpoint_reader_the_panel_says_not_available(audit: Page) -> None:
    """A service that signs no checkpoints says so rather than showing nothing."""
    home = await signed_in(audit)
    assert "not available yet" in home


async def test_the_latest_checkpoint_is_shown_with_whether_the_log_holds_it(
    pool: asyncpg.Pool, writer: GroupCommitWriter, owner: asyncpg.Connection
) -> None:
    """With the checkpoint reader wired in: size, head hash, key, and the head still in the log."""
    for _ in range(4):
        last = await writer.append(new_event())
    key = SigningKey.generate()
    checkpoint = sign_checkpoint(key, last.position, last.hash, datetime.now(UTC))
    await owner.execute(
        "INSERT INTO checkpoints (log_size, head_hash, signed_at, key_id, signature, public_key) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        checkpoint.log_size,
        checkpoint.head_hash,
        checkpoint.signed_at,
        checkpoint.key_id,
        checkpoint.signature,
        checkpoint.public_key,
    )
    client = await serve(build_app(pool, checkpoint_reader=read_latest_checkpoint))
    try:
        page = Page(client, writer, await new_token(writer, "auditor"), "")
        home = await signed_in(page)
    finally:
        await client.close()
    assert "the log still holds this head" in home
    assert last.hash.hex() in home
    assert key.key_id in home


async def test_the_page_is_in_the_openapi_document_as_html(audit: Page) -> None:
    """Every /audit route is documented, its pages as text/html."""
    document = await (await audit.client.get("/openapi.json")).json()
    paths = {path for path in document["paths"] if path.startswith("/audit")}
    assert paths == {
        "/audit",
        "/audit/sign-in",
        "/audit/sign-out",
        "/audit/search",
        "/audit/users/{uid}",
        "/audit/events",
        "/audit/verify",
    }
    user_page = document["paths"]["/audit/users/{uid}"]["get"]["responses"]
    assert set(user_page["200"]["content"]) == {"text/html"}
