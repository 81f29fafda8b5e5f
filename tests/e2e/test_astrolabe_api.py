"""The app-password API as the Astrolabe app calls it, against the Nextcloud simulator."""

from __future__ import annotations

import base64
from typing import Any

import asyncpg
import pytest

from tests.e2e.conftest import Service

PATH = "/api/v1/users/{uid}/app-password"


def basic(login: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


async def call(
    service: Service, method: str, uid: str, login: str, password: str, body: Any = None
) -> tuple[int, Any]:
    response = await service.client.request(
        method, PATH.format(uid=uid), headers=basic(login, password), json=body
    )
    return response.status, await response.json()


async def event_count(owner: asyncpg.Connection) -> int:
    return int(await owner.fetchval("SELECT count(*) FROM events"))


@pytest.fixture
def alice(service: Service) -> str:
    """A Nextcloud user `alice` (login name `alice`) with one app password."""
    service.nextcloud.add_user("alice")
    return service.nextcloud.create_app_password("alice")


async def test_post_stores_the_password_and_says_so(
    service: Service, alice: str, owner: asyncpg.Connection
) -> None:
    """200, success, Astrolabe's message, and an active credential right away."""
    status, body = await call(service, "POST", "alice", "alice", alice, {"scopes": ["files"]})
    assert status == 200
    assert body["success"] is True
    assert body["message"] == "App password stored for alice"
    assert body["scopes"] == ["files"]
    state = await owner.fetchrow(
        "SELECT status, login_name, scopes::text FROM credential_state WHERE user_id = 'alice'"
    )
    assert state is not None
    assert tuple(state) == ("active", "alice", '["files"]')


async def test_post_without_a_body_uses_the_basic_user_as_login(service: Service, alice: str) -> None:
    """The body is optional."""
    response = await service.client.post(PATH.format(uid="alice"), headers=basic("alice", alice))
    assert response.status == 200


async def test_a_login_name_other_than_the_user_id_is_kept(
    service: Service, owner: asyncpg.Connection
) -> None:
    """LDAP-style: Basic and body carry the login name; the path carries ocs.data.id."""
    service.nextcloud.add_user("5f3a9c", login_name="Carol.Smith")
    password = service.nextcloud.create_app_password("5f3a9c")
    status, _ = await call(service, "POST", "5f3a9c", "Carol.Smith", password, {"username": "Carol.Smith"})
    assert status == 200
    assert (
        await owner.fetchval("SELECT login_name FROM credential_state WHERE user_id = '5f3a9c'")
        == "Carol.Smith"
    )


async def test_a_wrong_password_is_401_and_stores_nothing(
    service: Service, alice: str, owner: asyncpg.Connection
) -> None:
    """Nextcloud says 401; so do we, with Astrolabe's error shape."""
    status, body = await call(service, "POST", "alice", "alice", "Wrong-passw-ord00-00000-00000")
    assert status == 401
    assert body["success"] is False
    assert isinstance(body["error"], str)
    assert await event_count(owner) == 0


async def test_another_users_password_is_403(service: Service, alice: str, owner: asyncpg.Connection) -> None:
    """Valid credentials of bob for alice's path: Nextcloud's id differs."""
    service.nextcloud.add_user("bob")
    bobs = service.nextcloud.create_app_password("bob")
    status, body = await call(service, "POST", "alice", "bob", bobs, {"username": "bob"})
    assert status == 403
    assert body["code"] == "user_mismatch"
    assert await event_count(owner) == 0


async def test_nextcloud_failing_is_502(service: Service, alice: str) -> None:
    """A 5xx from Nextcloud is a 502 to Astrolabe."""
    service.nextcloud.fail_with(503)
    status, body = await call(service, "POST", "alice", "alice", alice)
    assert status == 502
    assert body["code"] == "nextcloud_unavailable"


async def test_nextcloud_answering_html_is_502(service: Service, alice: str) -> None:
    """Not JSON from Nextcloud is a 502."""
    service.nextcloud.answer_html()
    status, _ = await call(service, "POST", "alice", "alice", alice)
    assert status == 502


async def test_nextcloud_throttling_is_503_with_retry_after(service: Service, alice: str) -> None:
    """Nextcloud's 429 pauses us: 503 and when to come back."""
    service.nextcloud.throttle(retry_after=42)
    response = await service.client.post(PATH.format(uid="alice"), headers=basic("alice", alice))
    assert response.status == 503
    assert response.headers["Retry-After"] == "42"
    assert (await response.json())["code"] == "nextcloud_throttled"


async def test_while_throttled_nextcloud_is_not_asked_again(service: Service, alice: str) -> None:
    """After one 429, further requests are answered 503 without a call to Nextcloud."""
    service.nextcloud.throttle(retry_after=60)
    await call(service, "POST", "alice", "alice", alice)
    before = service.nextcloud.requests_by_kind["ocs"]
    status, _ = await call(service, "POST", "alice", "alice", alice)
    assert status == 503
    assert service.nextcloud.requests_by_kind["ocs"] == before


async def test_get_with_the_stored_password_reports_it_without_asking_nextcloud(
    service: Service, alice: str
) -> None:
    """The stored credential authenticates by fingerprint, in constant time, locally."""
    await call(service, "POST", "alice", "alice", alice)
    before = service.nextcloud.requests_by_kind["ocs"]
    status, body = await call(service, "GET", "alice", "alice", alice)
    assert (status, body) == (200, {"success": True, "user_id": "alice", "has_app_password": True})
    assert service.nextcloud.requests_by_kind["ocs"] == before


async def test_get_with_a_wrong_password_is_401_never_a_status(service: Service, alice: str) -> None:
    """The published advisory of the earlier server: a status answer needs valid credentials."""
    await call(service, "POST", "alice", "alice", alice)
    status, body = await call(service, "GET", "alice", "alice", "Wrong-passw-ord00-00000-00000")
    assert status == 401
    assert "has_app_password" not in body


async def test_get_before_provisioning_says_no_password(service: Service, alice: str) -> None:
    """Valid Nextcloud credentials, nothing stored yet."""
    status, body = await call(service, "GET", "alice", "alice", alice)
    assert (status, body["has_app_password"]) == (200, False)


async def test_delete_revokes_and_shreds(service: Service, alice: str, owner: asyncpg.Connection) -> None:
    """DELETE appends credential.revoked (user_request) and destroys the data key."""
    await call(service, "POST", "alice", "alice", alice)
    status, body = await call(service, "DELETE", "alice", "alice", alice)
    assert (status, body["message"]) == (200, "App password deleted for alice")
    row = await owner.fetchrow("SELECT status, reason FROM credential_state WHERE user_id = 'alice'")
    assert row is not None
    assert tuple(row) == ("revoked", "user_request")
    assert await owner.fetchval("SELECT count(*) FROM user_keys") == 0


async def test_delete_with_nothing_stored_says_so(
    service: Service, alice: str, owner: asyncpg.Connection
) -> None:
    """Astrolabe's other success message; nothing appended."""
    status, body = await call(service, "DELETE", "alice", "alice", alice)
    assert (status, body["message"]) == (200, "No app password found to delete")
    assert await event_count(owner) == 0


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, 401),
        ({"Authorization": "Bearer abc"}, 401),
        ({"Authorization": "Basic !!!notbase64"}, 401),
        ({"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}, 401),
    ],
    ids=["missing", "not-basic", "bad-base64", "no-colon"],
)
async def test_malformed_credentials_are_401(service: Service, headers: dict[str, str], code: int) -> None:
    """Every malformed Authorization header is a 401 with a JSON error."""
    response = await service.client.post(PATH.format(uid="alice"), headers=headers)
    assert response.status == code
    assert (await response.json())["success"] is False
    assert response.headers["WWW-Authenticate"].startswith("Basic")


async def test_a_malformed_password_is_400_without_asking_nextcloud(service: Service, alice: str) -> None:
    """Too short for any Nextcloud token: a format error, not a strike at Nextcloud."""
    status, body = await call(service, "POST", "alice", "alice", "short")
    assert (status, body["code"]) == (400, "invalid_app_password_format")
    assert service.nextcloud.requests_by_kind["ocs"] == 0


async def test_an_invalid_user_id_is_400(service: Service) -> None:
    """Characters Nextcloud never puts in a user id."""
    response = await service.client.post("/api/v1/users/a%2Fb%00/app-password", headers=basic("a", "x" * 29))
    assert response.status == 400


async def test_malformed_json_is_400(service: Service, alice: str) -> None:
    """A body that is not JSON."""
    response = await service.client.post(
        PATH.format(uid="alice"), headers=basic("alice", alice), data=b"{not json"
    )
    assert response.status == 400
    assert (await response.json())["code"] == "malformed_json"


async def test_repeated_failures_are_limited_and_stop_reaching_nextcloud(
    service: Service, alice: str
) -> None:
    """After the per-user limit: 429 with Retry-After, and Nextcloud is no longer asked."""
    wrong = "Wrong-passw-ord00-00000-00000"
    for _ in range(10):
        status, _ = await call(service, "POST", "alice", "alice", wrong)
        assert status == 401
    asked = service.nextcloud.requests_by_kind["ocs"]
    response = await service.client.post(PATH.format(uid="alice"), headers=basic("alice", alice))
    assert response.status == 429
    assert int(response.headers["Retry-After"]) > 0
    assert service.nextcloud.requests_by_kind["ocs"] == asked


async def test_posting_the_same_password_again_appends_nothing(
    service: Service, alice: str, owner: asyncpg.Connection
) -> None:
    """Astrolabe retrying the same provisioning does not grow the log."""
    await call(service, "POST", "alice", "alice", alice)
    status, body = await call(service, "POST", "alice", "alice", alice)
    assert status == 200
    assert body["message"] == "App password already stored for alice"
    assert await event_count(owner) == 1
