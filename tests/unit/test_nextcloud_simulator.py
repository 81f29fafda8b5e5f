"""The simulated Nextcloud answers as shared/reference/nextcloud.md (and Nextcloud's sources) say."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

import aiohttp
import pytest

from sync.nextcloud_simulator import (
    SETTINGS_ALPHABET,
    NextcloudSimulator,
    login_flow_app_password,
    running_simulator,
    settings_app_password,
)

ALICE = "alice"
ALICE_LOGIN = "alice.l@ldap.example"
OCS_HEADERS = {"OCS-APIRequest": "true"}
SEARCH_HEADERS = {"Content-Type": "text/xml; charset=utf-8"}
D = "{DAV:}"
OC = "{http://owncloud.org/ns}"
JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)


class Nextcloud(NamedTuple):
    """A running simulator, its control object, an HTTP session and alice's app password."""

    url: str
    control: NextcloudSimulator
    http: aiohttp.ClientSession
    password: str

    async def call(
        self,
        method: str,
        path: str,
        *,
        login: str = ALICE_LOGIN,
        password: str | None = None,
        headers: dict[str, str] | None = None,
        body: str | None = None,
    ) -> tuple[int, dict[str, str], str]:
        """One request with Basic auth: alice's login name and app password unless told otherwise."""
        secret = self.password if password is None else password
        token = base64.b64encode(f"{login}:{secret}".encode()).decode()
        all_headers = {"Authorization": f"Basic {token}", **(headers or {})}
        async with self.http.request(method, self.url + path, headers=all_headers, data=body) as response:
            return response.status, dict(response.headers), await response.text()


@pytest.fixture
async def nextcloud() -> AsyncIterator[Nextcloud]:
    """A simulator with alice, whose login name differs from her user id (as with LDAP)."""
    async with (
        running_simulator() as (url, control),
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        control.add_user(ALICE, login_name=ALICE_LOGIN, display_name="Alice L.", email="alice@example.org")
        yield Nextcloud(url, control, http, control.create_app_password(ALICE))


def search_body(where: str, *, scope: str = "/files/alice", limit: str = "", order: str = "") -> str:
    return (
        '<?xml version="1.0"?><d:searchrequest xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
        "<d:basicsearch><d:select><d:prop><d:getetag/><d:getlastmodified/><d:getcontentlength/>"
        "<oc:fileid/></d:prop></d:select>"
        f"<d:from><d:scope><d:href>{scope}</d:href><d:depth>infinity</d:depth></d:scope></d:from>"
        f"{where}{order}{limit}</d:basicsearch></d:searchrequest>"
    )


def modified_after(literal: str) -> str:
    comparison = f"<d:gt><d:prop><d:getlastmodified/></d:prop><d:literal>{literal}</d:literal></d:gt>"
    return f"<d:where>{comparison}</d:where>"


def hrefs(body: str) -> list[str]:
    return [element.text or "" for element in ET.fromstring(body).iter(f"{D}href")]


def found_props(body: str) -> list[dict[str, str]]:
    """Per response, the properties under a 200 propstat, name -> text."""
    result = []
    for response in ET.fromstring(body).iter(f"{D}response"):
        props: dict[str, str] = {}
        for propstat in response.iter(f"{D}propstat"):
            if " 200 " in (propstat.findtext(f"{D}status") or ""):
                props |= {child.tag: child.text or "" for child in propstat.iterfind(f"{D}prop/*")}
        result.append(props)
    return result


def ocs_json(body: str) -> Any:
    return json.loads(body)["ocs"]


# App password formats.


def test_settings_passwords_are_five_groups_of_five() -> None:
    """The settings page's format: 5 groups of 5 characters from Nextcloud's alphabet, joined by '-'."""
    group = f"[{re.escape(SETTINGS_ALPHABET)}]{{5}}"
    assert re.fullmatch(f"{group}(-{group}){{4}}", settings_app_password())


def test_login_flow_passwords_are_72_alphanumerics() -> None:
    """Login Flow v2's format: 72 characters of [A-Za-z0-9]."""
    assert re.fullmatch(r"[A-Za-z0-9]{72}", login_flow_app_password())


# OCS cloud/user.


async def test_ocs_v2_answers_the_current_user(nextcloud: Nextcloud) -> None:
    """A valid login name and app password get 200 and the OCS document with the user's data."""
    status, _, body = await nextcloud.call("GET", "/ocs/v2.php/cloud/user?format=json", headers=OCS_HEADERS)
    ocs = ocs_json(body)
    assert status == 200
    assert ocs["meta"] == {"status": "ok", "statuscode": 200, "message": "OK"}
    assert (ocs["data"]["id"], ocs["data"]["displayname"], ocs["data"]["email"]) == (
        ALICE,
        "Alice L.",
        "alice@example.org",
    )


async def test_ocs_login_name_is_case_insensitive(nextcloud: Nextcloud) -> None:
    """Nextcloud compares a token's login name case-insensitively."""
    status, _, _ = await nextcloud.call(
        "GET", "/ocs/v2.php/cloud/user?format=json", login=ALICE_LOGIN.upper(), headers=OCS_HEADERS
    )
    assert status == 200


async def test_ocs_refuses_the_user_id_in_place_of_the_login_name(nextcloud: Nextcloud) -> None:
    """An app password is bound to the login name: the user id does not log in with it."""
    status, _, _ = await nextcloud.call(
        "GET", "/ocs/v2.php/cloud/user?format=json", login=ALICE, headers=OCS_HEADERS
    )
    assert status == 401


async def test_ocs_wrong_password_is_401_with_997(nextcloud: Nextcloud) -> None:
    """A wrong token: 401, the Basic challenge, and OCS status 997 in the body."""
    status, headers, body = await nextcloud.call(
        "GET", "/ocs/v2.php/cloud/user?format=json", password="x" * 29, headers=OCS_HEADERS
    )
    assert (status, headers["WWW-Authenticate"]) == (401, 'Basic realm="Authorisation Required"')
    assert ocs_json(body)["meta"]["statuscode"] == 997
    assert ocs_json(body)["meta"]["status"] == "failure"


@pytest.mark.parametrize("change", ["revoke", "wipe", "disable", "delete"])
async def test_ocs_dead_tokens_answer_401(nextcloud: Nextcloud, change: str) -> None:
    """Revoked and wiped tokens, and those of disabled or deleted users, answer 401."""
    control = nextcloud.control
    actions = {
        "revoke": lambda: control.revoke_app_password(nextcloud.password),
        "wipe": lambda: control.wipe_app_password(nextcloud.password),
        "disable": lambda: control.disable_user(ALICE),
        "delete": lambda: control.delete_user(ALICE),
    }
    actions[change]()
    status, _, _ = await nextcloud.call("GET", "/ocs/v2.php/cloud/user?format=json", headers=OCS_HEADERS)
    assert status == 401


async def test_ocs_without_the_api_request_header_is_401(nextcloud: Nextcloud) -> None:
    """Valid credentials without `OCS-APIRequest: true` fail the CSRF check: 401 with 997."""
    status, _, body = await nextcloud.call("GET", "/ocs/v2.php/cloud/user?format=json")
    assert (status, ocs_json(body)["meta"]["statuscode"]) == (401, 997)


async def test_ocs_reports_enabled_only_to_admins(nextcloud: Nextcloud) -> None:
    """`enabled` is in the data only when the caller is an admin, as Nextcloud does."""
    nextcloud.control.user(ALICE).is_admin = True
    _, _, body = await nextcloud.call("GET", "/ocs/v2.php/cloud/user?format=json", headers=OCS_HEADERS)
    assert ocs_json(body)["data"]["enabled"] is True


async def test_ocs_leaves_enabled_out_for_ordinary_users(nextcloud: Nextcloud) -> None:
    """An ordinary user looking themselves up gets no `enabled` field."""
    _, _, body = await nextcloud.call("GET", "/ocs/v2.php/cloud/user?format=json", headers=OCS_HEADERS)
    assert "enabled" not in ocs_json(body)["data"]


async def test_ocs_without_format_answers_xml(nextcloud: Nextcloud) -> None:
    """Without `format=json` or a JSON Accept header, OCS answers XML."""
    _, headers, body = await nextcloud.call("GET", "/ocs/v2.php/cloud/user", headers=OCS_HEADERS)
    assert headers["Content-Type"].startswith("application/xml")
    assert ET.fromstring(body).findtext("data/id") == ALICE


async def test_ocs_v1_says_ok_with_100(nextcloud: Nextcloud) -> None:
    """v1 spells success as statuscode 100."""
    _, _, body = await nextcloud.call("GET", "/ocs/v1.php/cloud/user?format=json", headers=OCS_HEADERS)
    assert ocs_json(body)["meta"]["statuscode"] == 100


async def test_ocs_v1_answers_200_when_throttled(nextcloud: Nextcloud) -> None:
    """v1's trap: a throttled call is HTTP 200 with the 429 only in the body."""
    nextcloud.control.throttle(retry_after=60)
    status, _, body = await nextcloud.call("GET", "/ocs/v1.php/cloud/user?format=json", headers=OCS_HEADERS)
    assert (status, ocs_json(body)["meta"]["statuscode"]) == (200, 429)


# Brute-force protection.


async def test_failed_logins_are_counted_per_address(nextcloud: Nextcloud) -> None:
    """Each failed Basic login is a strike against the caller's address."""
    for _ in range(3):
        await nextcloud.call(
            "GET", "/ocs/v2.php/cloud/user?format=json", password="y" * 29, headers=OCS_HEADERS
        )
    assert nextcloud.control.failed_logins("127.0.0.1") == 3


async def test_a_successful_login_forgets_that_login_names_strikes(nextcloud: Nextcloud) -> None:
    """Nextcloud resets the delay for the login name that just logged in."""
    await nextcloud.call("GET", "/ocs/v2.php/cloud/user?format=json", password="y" * 29, headers=OCS_HEADERS)
    await nextcloud.call("GET", "/ocs/v2.php/cloud/user?format=json", headers=OCS_HEADERS)
    assert nextcloud.control.failed_logins("127.0.0.1") == 0


async def test_throttle_answers_429_with_retry_after(nextcloud: Nextcloud) -> None:
    """Switched on, the throttle answers every request 429 with Retry-After."""
    nextcloud.control.throttle(retry_after=42)
    status, headers, body = await nextcloud.call(
        "GET", "/ocs/v2.php/cloud/user?format=json", headers=OCS_HEADERS
    )
    assert (status, headers["Retry-After"], ocs_json(body)["meta"]["statuscode"]) == (429, "42", 429)


async def test_throttle_covers_webdav_too(nextcloud: Nextcloud) -> None:
    """The throttle is per address, so WebDAV calls get 429 as well."""
    nextcloud.control.throttle(retry_after=5)
    status, _, _ = await nextcloud.call("PROPFIND", "/remote.php/dav/files/alice/", headers={"Depth": "0"})
    assert status == 429


async def test_auto_throttle_blocks_even_valid_credentials() -> None:
    """After N failures from an address every request from it answers 429."""
    async with (
        running_simulator(NextcloudSimulator(auto_throttle_after=2)) as (url, control),
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        control.add_user(ALICE, login_name=ALICE_LOGIN)
        nextcloud = Nextcloud(url, control, http, control.create_app_password(ALICE))
        for _ in range(2):
            await nextcloud.call("GET", "/ocs/v2.php/cloud/user", password="z" * 29, headers=OCS_HEADERS)
        status, _, _ = await nextcloud.call("GET", "/ocs/v2.php/cloud/user", headers=OCS_HEADERS)
    assert status == 429


async def test_auto_throttle_is_off_by_default(nextcloud: Nextcloud) -> None:
    """Without `auto_throttle_after` failures never turn into 429."""
    for _ in range(5):
        status, _, _ = await nextcloud.call(
            "GET", "/ocs/v2.php/cloud/user", password="z" * 29, headers=OCS_HEADERS
        )
    assert status == 401


# Fault modes.


async def test_fail_with_answers_that_status(nextcloud: Nextcloud) -> None:
    """`fail_with(503)` makes every request answer 503."""
    nextcloud.control.fail_with(503)
    status, _, _ = await nextcloud.call("GET", "/ocs/v2.php/cloud/user?format=json", headers=OCS_HEADERS)
    assert status == 503


async def test_answer_html_gives_200_html(nextcloud: Nextcloud) -> None:
    """`answer_html()` answers 200 with an HTML page instead of OCS JSON."""
    nextcloud.control.answer_html()
    status, headers, _ = await nextcloud.call(
        "GET", "/ocs/v2.php/cloud/user?format=json", headers=OCS_HEADERS
    )
    assert (status, headers["Content-Type"].split(";")[0]) == (200, "text/html")


async def test_slow_mode_does_not_answer_within_a_short_timeout(nextcloud: Nextcloud) -> None:
    """In slow mode no answer comes before the configured delay."""
    nextcloud.control.slow(30)
    with pytest.raises(TimeoutError):
        async with nextcloud.http.get(
            nextcloud.url + "/ocs/v2.php/cloud/user", timeout=aiohttp.ClientTimeout(total=0.2)
        ):
            pass


async def test_healthy_turns_the_fault_modes_off(nextcloud: Nextcloud) -> None:
    """`healthy()` undoes fail_with, answer_html, slow and throttle."""
    control = nextcloud.control
    control.fail_with(500)
    control.answer_html()
    control.throttle(1)
    control.healthy()
    status, _, _ = await nextcloud.call("GET", "/ocs/v2.php/cloud/user?format=json", headers=OCS_HEADERS)
    assert status == 200


# Holds and counters.


async def test_a_held_request_waits_for_release(nextcloud: Nextcloud) -> None:
    """A request for a held user stays open until the test releases the user."""
    nextcloud.control.hold(ALICE)
    call = asyncio.create_task(
        nextcloud.call("GET", "/ocs/v2.php/cloud/user?format=json", headers=OCS_HEADERS)
    )
    await nextcloud.control.wait_until_held(ALICE)
    assert not call.done()
    nextcloud.control.release(ALICE)
    assert (await call)[0] == 200


async def test_a_held_request_is_judged_on_release(nextcloud: Nextcloud) -> None:
    """Credentials are checked after the gate: a token wiped while held answers 401."""
    nextcloud.control.hold(ALICE)
    call = asyncio.create_task(
        nextcloud.call("GET", "/ocs/v2.php/cloud/user?format=json", headers=OCS_HEADERS)
    )
    await nextcloud.control.wait_until_held(ALICE)
    nextcloud.control.wipe_app_password(nextcloud.password)
    nextcloud.control.release(ALICE)
    assert (await call)[0] == 401


async def test_concurrent_requests_are_counted_per_user(nextcloud: Nextcloud) -> None:
    """Two held requests for one user make a maximum concurrency of two."""
    nextcloud.control.hold(ALICE)
    calls = [
        asyncio.create_task(nextcloud.call("GET", "/ocs/v2.php/cloud/user", headers=OCS_HEADERS))
        for _ in range(2)
    ]
    await nextcloud.control.wait_until_held(ALICE, count=2)
    nextcloud.control.release(ALICE)
    await asyncio.gather(*calls)
    assert (
        nextcloud.control.max_concurrent_requests(ALICE),
        nextcloud.control.concurrent_requests(ALICE),
    ) == (2, 0)


async def test_requests_are_counted_per_user_and_credential(nextcloud: Nextcloud) -> None:
    """The counter keyed by (user, app password) sees each request made with that password."""
    other = nextcloud.control.create_app_password(ALICE, style="login_flow")
    await nextcloud.call("GET", "/ocs/v2.php/cloud/user", headers=OCS_HEADERS)
    await nextcloud.call("GET", "/ocs/v2.php/cloud/user", headers=OCS_HEADERS)
    await nextcloud.call("GET", "/ocs/v2.php/cloud/user", password=other, headers=OCS_HEADERS)
    control = nextcloud.control
    assert (control.request_count(ALICE, nextcloud.password), control.request_count(ALICE, other)) == (2, 1)


async def test_requests_are_counted_per_kind(nextcloud: Nextcloud) -> None:
    """OCS, PROPFIND and SEARCH requests are counted separately."""
    await nextcloud.call("GET", "/ocs/v2.php/cloud/user", headers=OCS_HEADERS)
    await nextcloud.call("PROPFIND", "/remote.php/dav/files/alice/", headers={"Depth": "0"})
    await nextcloud.call(
        "SEARCH", "/remote.php/dav/", headers=SEARCH_HEADERS, body=search_body(modified_after("0"))
    )
    assert dict(nextcloud.control.requests_by_kind) == {"ocs": 1, "propfind": 1, "search": 1}


# Files and their etags.


def test_a_file_change_changes_the_root_etag() -> None:
    """Adding or changing a file gives the root folder a new etag."""
    control = NextcloudSimulator()
    control.add_user(ALICE)
    before = control.root_etag(ALICE)
    control.put_file(ALICE, "notes/today.md", size=3)
    assert control.root_etag(ALICE) != before


def test_a_change_keeps_the_file_id_and_renews_the_etag() -> None:
    """Changing a file keeps its file id and gives it a new etag and mtime."""
    control = NextcloudSimulator()
    control.add_user(ALICE)
    first = control.put_file(ALICE, "a.txt", size=1, modified=JAN)
    first_etag = first.etag
    second = control.put_file(ALICE, "a.txt", size=2, modified=FEB)
    assert (second.file_id, second.modified) == (first.file_id, FEB)
    assert second.etag != first_etag


def test_a_deletion_changes_the_root_etag() -> None:
    """Deleting a file gives the root folder a new etag."""
    control = NextcloudSimulator()
    control.add_user(ALICE)
    control.put_file(ALICE, "a.txt")
    before = control.root_etag(ALICE)
    control.delete_file(ALICE, "a.txt")
    assert control.root_etag(ALICE) != before


def test_folders_take_the_greatest_mtime_below_them() -> None:
    """A folder's mtime becomes the latest change below it, never earlier."""
    control = NextcloudSimulator()
    control.add_user(ALICE)
    control.put_file(ALICE, "docs/new.txt", modified=FEB)
    control.put_file(ALICE, "docs/old.txt", modified=JAN)
    folder = control.storage(ALICE).node("docs")
    assert folder is not None
    assert folder.modified == FEB


# PROPFIND and REPORT.


async def test_propfind_depth_0_returns_the_root_etag(nextcloud: Nextcloud) -> None:
    """PROPFIND with Depth 0 answers 207 with the root folder's quoted etag."""
    status, _, body = await nextcloud.call("PROPFIND", "/remote.php/dav/files/alice/", headers={"Depth": "0"})
    assert status == 207
    assert found_props(body)[0][f"{D}getetag"] == f'"{nextcloud.control.root_etag(ALICE)}"'


async def test_propfind_depth_1_lists_the_children(nextcloud: Nextcloud) -> None:
    """Depth 1 adds the root's direct children, folders with a trailing slash."""
    nextcloud.control.put_file(ALICE, "a b.txt")
    nextcloud.control.put_file(ALICE, "docs/c.txt")
    _, _, body = await nextcloud.call("PROPFIND", "/remote.php/dav/files/alice/", headers={"Depth": "1"})
    assert sorted(hrefs(body)) == [
        "/remote.php/dav/files/alice/",
        "/remote.php/dav/files/alice/a%20b.txt",
        "/remote.php/dav/files/alice/docs/",
    ]


async def test_propfind_finds_a_uid_with_a_space_and_an_at(nextcloud: Nextcloud) -> None:
    """A percent-encoded uid with a space and an @ reaches that user's root."""
    nextcloud.control.add_user("ann marie@example.org", login_name="amarie")
    password = nextcloud.control.create_app_password("ann marie@example.org")
    status, _, body = await nextcloud.call(
        "PROPFIND",
        "/remote.php/dav/files/ann%20marie%40example.org/",
        login="amarie",
        password=password,
        headers={"Depth": "0"},
    )
    assert (status, hrefs(body)) == (207, ["/remote.php/dav/files/ann%20marie@example.org/"])


async def test_propfind_with_bad_credentials_is_401(nextcloud: Nextcloud) -> None:
    """WebDAV refuses a wrong token with 401 and Sabre's NotAuthenticated body."""
    status, headers, body = await nextcloud.call(
        "PROPFIND", "/remote.php/dav/files/alice/", password="w" * 29, headers={"Depth": "0"}
    )
    assert (status, "WWW-Authenticate" in headers) == (401, True)
    assert "NotAuthenticated" in body


async def test_propfind_on_another_users_root_has_no_etag(nextcloud: Nextcloud) -> None:
    """Another user's home is an empty collection: 207, but the etag comes back under 404."""
    nextcloud.control.add_user("bob")
    body = '<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>'
    status, _, answer = await nextcloud.call(
        "PROPFIND", "/remote.php/dav/files/bob/", headers={"Depth": "0"}, body=body
    )
    assert (status, found_props(answer)) == (207, [{}])


async def test_propfind_on_an_unknown_uid_is_404(nextcloud: Nextcloud) -> None:
    """A uid that names no user is 404."""
    status, _, _ = await nextcloud.call("PROPFIND", "/remote.php/dav/files/nobody/", headers={"Depth": "0"})
    assert status == 404


async def test_report_on_files_is_415(nextcloud: Nextcloud) -> None:
    """The sync-collection REPORT is not supported on files."""
    body = (
        '<d:sync-collection xmlns:d="DAV:"><d:sync-token/><d:sync-level>1</d:sync-level></d:sync-collection>'
    )
    status, _, _ = await nextcloud.call("REPORT", "/remote.php/dav/files/alice/", body=body)
    assert status == 415


# SEARCH.


async def test_search_returns_only_what_changed_after_the_watermark(nextcloud: Nextcloud) -> None:
    """`d:gt` on getlastmodified leaves out files (and folders) not modified after the literal."""
    nextcloud.control.put_file(ALICE, "old/a.txt", modified=JAN)
    nextcloud.control.put_file(ALICE, "new.txt", modified=MAR)
    body = search_body(modified_after("2026-02-01T00:00:00+00:00"))
    status, _, answer = await nextcloud.call("SEARCH", "/remote.php/dav", headers=SEARCH_HEADERS, body=body)
    assert (status, hrefs(answer)) == (207, ["/remote.php/dav/files/alice/new.txt"])


async def test_search_reports_etag_mtime_length_and_fileid(nextcloud: Nextcloud) -> None:
    """Each file comes with its quoted etag, an RFC 1123 mtime, its length and its file id."""
    file = nextcloud.control.put_file(ALICE, "x.txt", size=12, modified=FEB)
    _, _, answer = await nextcloud.call(
        "SEARCH", "/remote.php/dav", headers=SEARCH_HEADERS, body=search_body(modified_after("0"))
    )
    assert found_props(answer) == [
        {
            f"{D}getetag": f'"{file.etag}"',
            f"{D}getlastmodified": "Sun, 01 Feb 2026 00:00:00 GMT",
            f"{D}getcontentlength": "12",
            f"{OC}fileid": str(file.file_id),
        }
    ]


async def test_search_takes_unix_seconds_as_a_date(nextcloud: Nextcloud) -> None:
    """A numeric literal is Unix seconds."""
    nextcloud.control.put_file(ALICE, "jan.txt", modified=JAN)
    nextcloud.control.put_file(ALICE, "mar.txt", modified=MAR)
    body = search_body(modified_after(str(int(FEB.timestamp()))))
    _, _, answer = await nextcloud.call("SEARCH", "/remote.php/dav", headers=SEARCH_HEADERS, body=body)
    assert hrefs(answer) == ["/remote.php/dav/files/alice/mar.txt"]


async def test_search_reads_an_http_date_literal_as_zero(nextcloud: Nextcloud) -> None:
    """Nextcloud's trap: a date that is neither Unix seconds nor ATOM counts as 0, matching everything."""
    nextcloud.control.put_file(ALICE, "jan.txt", modified=JAN)
    body = search_body(modified_after("Sun, 01 Feb 2026 00:00:00 GMT"))
    _, _, answer = await nextcloud.call("SEARCH", "/remote.php/dav", headers=SEARCH_HEADERS, body=body)
    assert hrefs(answer) == ["/remote.php/dav/files/alice/jan.txt"]


async def test_search_caps_results_at_100_by_default(nextcloud: Nextcloud) -> None:
    """Without `d:nresults` Nextcloud returns at most 100 results."""
    for number in range(105):
        nextcloud.control.put_file(ALICE, f"f{number}.txt", modified=JAN)
    _, _, answer = await nextcloud.call(
        "SEARCH", "/remote.php/dav", headers=SEARCH_HEADERS, body=search_body(modified_after("0"))
    )
    assert len(hrefs(answer)) == 100


async def test_search_pages_with_nresults_and_firstresult(nextcloud: Nextcloud) -> None:
    """`d:nresults` and SearchDAV's `firstresult` select a page of the ordered results."""
    for number, month in enumerate([JAN, FEB, MAR]):
        nextcloud.control.put_file(ALICE, f"f{number}.txt", modified=month)
    order = "<d:orderby><d:order><d:prop><d:getlastmodified/></d:prop><d:descending/></d:order></d:orderby>"
    limit = (
        '<d:limit><d:nresults>1</d:nresults><s:firstresult xmlns:s="https://github.com/icewind1991/SearchDAV/ns">'
        "1</s:firstresult></d:limit>"
    )
    body = search_body(modified_after("0"), order=order, limit=limit)
    _, _, answer = await nextcloud.call("SEARCH", "/remote.php/dav", headers=SEARCH_HEADERS, body=body)
    assert hrefs(answer) == ["/remote.php/dav/files/alice/f1.txt"]


async def test_search_without_where_is_400(nextcloud: Nextcloud) -> None:
    """SearchDAV refuses a basicsearch without `d:where`."""
    status, _, answer = await nextcloud.call(
        "SEARCH", "/remote.php/dav", headers=SEARCH_HEADERS, body=search_body("")
    )
    assert (status, answer) == (400, "Parse error: Missing {DAV:}where from {DAV:}basicsearch")


async def test_search_in_another_users_files_fails(nextcloud: Nextcloud) -> None:
    """Another user's home is no directory to search: Nextcloud fails with 500."""
    nextcloud.control.add_user("bob")
    body = search_body(modified_after("0"), scope="/files/bob")
    status, _, _ = await nextcloud.call("SEARCH", "/remote.php/dav", headers=SEARCH_HEADERS, body=body)
    assert status == 500


async def test_search_without_an_xml_content_type_is_501(nextcloud: Nextcloud) -> None:
    """SearchDAV takes only XML bodies; Sabre has no other SEARCH handler."""
    status, _, _ = await nextcloud.call("SEARCH", "/remote.php/dav", body=search_body(modified_after("0")))
    assert status == 501


async def test_search_refuses_a_doctype(nextcloud: Nextcloud) -> None:
    """A body with a DTD is refused before parsing, so entity expansion cannot happen."""
    body = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    status, _, _ = await nextcloud.call("SEARCH", "/remote.php/dav", headers=SEARCH_HEADERS, body=body)
    assert status == 400


async def test_running_simulator_serves_on_loopback() -> None:
    """The runner binds 127.0.0.1 on a free port and hands out its base URL."""
    async with running_simulator() as (url, _):
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
