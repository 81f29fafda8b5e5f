"""The Nextcloud client against the simulator: each answer becomes a result or one typed error."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sync.nextcloud_client import (
    InvalidCredentials,
    NextcloudClient,
    NextcloudError,
    NextcloudUnavailable,
    NextcloudUser,
    RemoteFile,
    Throttled,
    parse_retry_after,
    plausible_app_password,
)
from sync.nextcloud_simulator import (
    NextcloudSimulator,
    login_flow_app_password,
    running_simulator,
    settings_app_password,
)

UID = "ann marie@example.org"
LOGIN = "amarie"
JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)


class Nextcloud(NamedTuple):
    """A running simulator, clients for it (normal and with 0.2 s timeouts) and Ann Marie's app password."""

    url: str
    control: NextcloudSimulator
    client: NextcloudClient
    impatient: NextcloudClient
    password: str


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A session as the service must make it: no cookie jar shared between users."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


@pytest.fixture
async def nextcloud(http: aiohttp.ClientSession) -> AsyncIterator[Nextcloud]:
    """A simulator with a uid holding a space and an @, and a login name that differs from it."""
    async with running_simulator() as (url, control):
        control.add_user(UID, login_name=LOGIN, display_name="Ann Marie", email="ann@example.org")
        client = NextcloudClient(http, url)
        impatient = NextcloudClient(http, url, validation_timeout=0.2, dav_timeout=0.2)
        yield Nextcloud(url, control, client, impatient, control.create_app_password(UID))


def refused_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# fetch_user.


async def test_fetch_user_returns_the_user_id_not_the_login_name(nextcloud: Nextcloud) -> None:
    """The user comes from ocs.data: its id, display name and email, though the login name differs."""
    user = await nextcloud.client.fetch_user(LOGIN, nextcloud.password)
    assert user == NextcloudUser(UID, "Ann Marie", "ann@example.org", enabled=True)


async def test_fetch_user_uses_ocs_v2_only(nextcloud: Nextcloud) -> None:
    """Validation goes to OCS v2 (whose status codes mean something), never to v1."""
    await nextcloud.client.fetch_user(LOGIN, nextcloud.password)
    assert (nextcloud.control.requests_by_kind["ocs"], nextcloud.control.requests_by_kind["ocs_v1"]) == (1, 0)


async def test_fetch_user_accepts_a_login_flow_password(nextcloud: Nextcloud) -> None:
    """A 72-character Login Flow v2 app password validates too."""
    password = nextcloud.control.create_app_password(UID, style="login_flow")
    assert (await nextcloud.client.fetch_user(LOGIN, password)).user_id == UID


async def test_fetch_user_with_a_wrong_password_is_invalid_credentials(nextcloud: Nextcloud) -> None:
    """A 401 is InvalidCredentials."""
    with pytest.raises(InvalidCredentials):
        await nextcloud.client.fetch_user(LOGIN, settings_app_password())


async def test_fetch_user_of_a_disabled_user_is_invalid_credentials(nextcloud: Nextcloud) -> None:
    """A disabled user's token answers 401: InvalidCredentials."""
    nextcloud.control.disable_user(UID)
    with pytest.raises(InvalidCredentials):
        await nextcloud.client.fetch_user(LOGIN, nextcloud.password)


async def test_fetch_user_throttled_carries_retry_after(nextcloud: Nextcloud) -> None:
    """A 429 is Throttled with Retry-After in seconds."""
    nextcloud.control.throttle(retry_after=42)
    with pytest.raises(Throttled) as caught:
        await nextcloud.client.fetch_user(LOGIN, nextcloud.password)
    assert caught.value.retry_after == 42.0


async def test_fetch_user_on_503_is_unavailable(nextcloud: Nextcloud) -> None:
    """A 5xx is NextcloudUnavailable."""
    nextcloud.control.fail_with(503)
    with pytest.raises(NextcloudUnavailable):
        await nextcloud.client.fetch_user(LOGIN, nextcloud.password)


async def test_fetch_user_on_html_is_unavailable(nextcloud: Nextcloud) -> None:
    """A 200 that is not JSON is NextcloudUnavailable."""
    nextcloud.control.answer_html()
    with pytest.raises(NextcloudUnavailable, match="not JSON"):
        await nextcloud.client.fetch_user(LOGIN, nextcloud.password)


async def test_fetch_user_beyond_the_timeout_is_unavailable(nextcloud: Nextcloud) -> None:
    """No answer within the validation timeout is NextcloudUnavailable."""
    nextcloud.control.slow(30)
    with pytest.raises(NextcloudUnavailable, match="no answer within"):
        await nextcloud.impatient.fetch_user(LOGIN, nextcloud.password)


async def test_fetch_user_with_connection_refused_is_unavailable(http: aiohttp.ClientSession) -> None:
    """A refused connection is NextcloudUnavailable."""
    client = NextcloudClient(http, f"http://127.0.0.1:{refused_port()}")
    with pytest.raises(NextcloudUnavailable):
        await client.fetch_user(LOGIN, settings_app_password())


async def test_fetch_user_on_json_that_is_not_ocs_is_unavailable(http: aiohttp.ClientSession) -> None:
    """JSON without the OCS shape is NextcloudUnavailable."""

    async def not_ocs(request: web.Request) -> web.Response:
        return web.json_response({"user": "ann"})

    app = web.Application()
    app.router.add_get("/ocs/v2.php/cloud/user", not_ocs)
    async with TestServer(app, host="127.0.0.1") as server:
        client = NextcloudClient(http, str(server.make_url("/")))
        with pytest.raises(NextcloudUnavailable, match="not an OCS document"):
            await client.fetch_user(LOGIN, settings_app_password())


async def test_fetch_user_under_a_path_prefix(http: aiohttp.ClientSession) -> None:
    """A Nextcloud installed below a path (https://host/nextcloud) is called below that path."""
    seen: list[str] = []

    async def user(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"ocs": {"meta": {"statuscode": 200}, "data": {"id": "ann"}}})

    app = web.Application()
    app.router.add_get("/nextcloud/ocs/v2.php/cloud/user", user)
    async with TestServer(app, host="127.0.0.1") as server:
        client = NextcloudClient(http, str(server.make_url("/nextcloud/")))
        await client.fetch_user(LOGIN, settings_app_password())
    assert seen == ["/nextcloud/ocs/v2.php/cloud/user"]


async def test_a_redirect_is_unavailable_not_followed(http: aiohttp.ClientSession) -> None:
    """A redirect (which would drop or leak the credentials) is NextcloudUnavailable."""

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("https://elsewhere.example/ocs/v2.php/cloud/user")

    app = web.Application()
    app.router.add_get("/ocs/v2.php/cloud/user", moved)
    async with TestServer(app, host="127.0.0.1") as server:
        client = NextcloudClient(http, str(server.make_url("/")))
        with pytest.raises(NextcloudUnavailable, match="redirected"):
            await client.fetch_user(LOGIN, settings_app_password())


# Retry-After and the password format.


def test_retry_after_reads_an_http_date() -> None:
    """Retry-After given as an HTTP date is the seconds until then."""
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 12:01:30 GMT", now=now) == 90.0


def test_retry_after_that_cannot_be_read_is_none() -> None:
    """An unreadable Retry-After is None, not an error."""
    assert parse_retry_after("soon") is None


@pytest.mark.parametrize("value", [settings_app_password(), login_flow_app_password(), "a" * 22, "a" * 256])
def test_plausible_app_passwords(value: str) -> None:
    """Both of Nextcloud's formats, and anything of 22 to 256 printable characters, are plausible."""
    assert plausible_app_password(value)


@pytest.mark.parametrize(
    "value", ["a" * 21, "a" * 257, "a" * 11 + " " + "a" * 11, "a" * 22 + "\x00", "a" * 22 + "\u200b"]
)
def test_implausible_app_passwords(value: str) -> None:
    """Too short, too long, or with whitespace or control characters: not an app password."""
    assert not plausible_app_password(value)


# WebDAV.


async def test_root_etag_is_the_root_folders_etag(nextcloud: Nextcloud) -> None:
    """PROPFIND Depth 0 on a uid with a space and an @ yields the root's etag as sent."""
    etag = await nextcloud.client.root_etag(UID, LOGIN, nextcloud.password)
    assert etag == f'"{nextcloud.control.root_etag(UID)}"'


async def test_root_etag_stays_equal_when_nothing_changes(nextcloud: Nextcloud) -> None:
    """Two calls with no change in between give the same etag."""
    first = await nextcloud.client.root_etag(UID, LOGIN, nextcloud.password)
    assert await nextcloud.client.root_etag(UID, LOGIN, nextcloud.password) == first


async def test_root_etag_changes_with_a_file(nextcloud: Nextcloud) -> None:
    """A changed file below the root changes the root's etag."""
    first = await nextcloud.client.root_etag(UID, LOGIN, nextcloud.password)
    nextcloud.control.put_file(UID, "deep/down/file.txt", size=1)
    assert await nextcloud.client.root_etag(UID, LOGIN, nextcloud.password) != first


async def test_root_etag_of_another_user_is_unavailable(nextcloud: Nextcloud) -> None:
    """Nextcloud shows another user's root without an etag: NextcloudUnavailable, not a bogus etag."""
    nextcloud.control.add_user("bob")
    with pytest.raises(NextcloudUnavailable, match="no etag"):
        await nextcloud.client.root_etag("bob", LOGIN, nextcloud.password)


async def test_root_etag_with_a_revoked_password_is_invalid_credentials(nextcloud: Nextcloud) -> None:
    """WebDAV's 401 is InvalidCredentials too."""
    nextcloud.control.revoke_app_password(nextcloud.password)
    with pytest.raises(InvalidCredentials):
        await nextcloud.client.root_etag(UID, LOGIN, nextcloud.password)


async def test_changed_files_returns_only_files_after_the_watermark(nextcloud: Nextcloud) -> None:
    """SEARCH with `d:gt` on getlastmodified returns only files modified after `since`."""
    nextcloud.control.put_file(UID, "old.txt", modified=JAN)
    nextcloud.control.put_file(UID, "new.txt", modified=MAR)
    files = await nextcloud.client.changed_files(UID, LOGIN, nextcloud.password, since=FEB)
    assert [file.path for file in files] == ["new.txt"]


async def test_changed_files_without_a_watermark_returns_every_file(nextcloud: Nextcloud) -> None:
    """With `since=None` every file comes back, oldest first, and no folder."""
    nextcloud.control.put_file(UID, "b/two.txt", modified=FEB)
    nextcloud.control.put_file(UID, "a/one.txt", modified=JAN)
    files = await nextcloud.client.changed_files(UID, LOGIN, nextcloud.password, since=None)
    assert [file.path for file in files] == ["a/one.txt", "b/two.txt"]


async def test_changed_files_describes_each_file(nextcloud: Nextcloud) -> None:
    """Each RemoteFile has the decoded relative path, file id, etag, size and mtime."""
    stored = nextcloud.control.put_file(UID, "My Docs/l'été @home.txt", size=7, modified=FEB)
    files = await nextcloud.client.changed_files(UID, LOGIN, nextcloud.password, since=JAN)
    assert files == [RemoteFile("My Docs/l'été @home.txt", stored.file_id, f'"{stored.etag}"', 7, FEB)]


async def test_changed_files_pages_through_many_results(http: aiohttp.ClientSession) -> None:
    """Results beyond one page, many of them in the same second, all come back exactly once."""
    async with running_simulator() as (url, control):
        control.add_user(UID, login_name=LOGIN)
        password = control.create_app_password(UID)
        for number in range(7):
            control.put_file(UID, f"same/{number}.txt", modified=JAN)
        for number in range(3):
            control.put_file(UID, f"later/{number}.txt", modified=FEB + timedelta(seconds=number))
        client = NextcloudClient(http, url, search_page_size=2)
        files = await client.changed_files(UID, LOGIN, password, since=None)
    assert sorted(file.path for file in files) == sorted(
        [f"same/{number}.txt" for number in range(7)] + [f"later/{number}.txt" for number in range(3)]
    )


async def test_changed_files_stops_when_paging_makes_no_progress(http: aiohttp.ClientSession) -> None:
    """A server that ignores `firstresult` and repeats one full page is NextcloudUnavailable, not a loop."""
    page = (
        '<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
        + "".join(
            f"<d:response><d:href>/remote.php/dav/files/ann/{name}</d:href><d:propstat><d:prop>"
            f'<d:getetag>"e{name}"</d:getetag><d:getlastmodified>Thu, 01 Jan 2026 00:00:00 GMT'
            f"</d:getlastmodified><d:getcontentlength>1</d:getcontentlength><d:resourcetype/>"
            f"<oc:fileid>{number}</oc:fileid></d:prop><d:status>HTTP/1.1 200 OK</d:status>"
            "</d:propstat></d:response>"
            for number, name in enumerate(["a", "b"])
        )
        + "</d:multistatus>"
    )

    async def same_page(request: web.Request) -> web.Response:
        return web.Response(status=207, text=page, content_type="application/xml")

    app = web.Application()
    app.router.add_route("SEARCH", "/remote.php/dav/", same_page)
    async with TestServer(app, host="127.0.0.1") as server:
        client = NextcloudClient(http, str(server.make_url("/")), search_page_size=2)
        with pytest.raises(NextcloudUnavailable, match="no progress"):
            await client.changed_files("ann", "ann", settings_app_password(), since=None)


async def test_changed_files_throttled_is_throttled(nextcloud: Nextcloud) -> None:
    """A 429 on SEARCH is Throttled."""
    nextcloud.control.throttle(retry_after=7)
    with pytest.raises(Throttled):
        await nextcloud.client.changed_files(UID, LOGIN, nextcloud.password, since=None)


async def test_changed_files_on_503_is_unavailable(nextcloud: Nextcloud) -> None:
    """A 5xx on SEARCH is NextcloudUnavailable."""
    nextcloud.control.fail_with(503)
    with pytest.raises(NextcloudUnavailable):
        await nextcloud.client.changed_files(UID, LOGIN, nextcloud.password, since=None)


async def test_changed_files_refuses_a_naive_watermark(nextcloud: Nextcloud) -> None:
    """A watermark without a time zone is ambiguous and refused."""
    with pytest.raises(ValueError, match="timezone"):
        await nextcloud.client.changed_files(UID, LOGIN, nextcloud.password, since=datetime(2026, 1, 1))


# Secrets.

Failing = Callable[[Nextcloud], Awaitable[object]]
SCENARIOS: dict[str, Callable[[Nextcloud], None]] = {
    "401": lambda nextcloud: nextcloud.control.revoke_app_password(nextcloud.password),
    "429": lambda nextcloud: nextcloud.control.throttle(retry_after=3),
    "503": lambda nextcloud: nextcloud.control.fail_with(503),
    "html": lambda nextcloud: nextcloud.control.answer_html(),
    "timeout": lambda nextcloud: nextcloud.control.slow(30),
}
CALLS: dict[str, Failing] = {
    "fetch_user": lambda nextcloud: nextcloud.impatient.fetch_user(LOGIN, nextcloud.password),
    "root_etag": lambda nextcloud: nextcloud.impatient.root_etag(UID, LOGIN, nextcloud.password),
    "changed_files": lambda nextcloud: nextcloud.impatient.changed_files(
        UID, LOGIN, nextcloud.password, None
    ),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("call", CALLS)
async def test_errors_never_show_the_password(nextcloud: Nextcloud, scenario: str, call: str) -> None:
    """No error's message or repr holds the app password, and none chains another exception."""
    SCENARIOS[scenario](nextcloud)
    with pytest.raises(NextcloudError) as caught:
        await CALLS[call](nextcloud)
    error = caught.value
    assert nextcloud.password not in str(error)
    assert nextcloud.password not in repr(error)
    assert (error.__cause__, error.__context__) == (None, None)


async def test_a_refused_connection_error_never_shows_the_password(http: aiohttp.ClientSession) -> None:
    """The connection error's description carries no password and no chained exception."""
    password = settings_app_password()
    client = NextcloudClient(http, f"http://127.0.0.1:{refused_port()}")
    with pytest.raises(NextcloudUnavailable) as caught:
        await client.fetch_user(LOGIN, password)
    assert password not in repr(caught.value)
    assert (caught.value.__cause__, caught.value.__context__) == (None, None)


async def test_an_unencodable_password_error_never_shows_it(nextcloud: Nextcloud) -> None:
    """A password Basic auth cannot encode fails with a ValueError that neither shows nor chains it."""
    with pytest.raises(ValueError, match="UTF-8") as caught:
        await nextcloud.client.fetch_user(LOGIN, "secret\udc80secret-secret-secret")
    assert "secret" not in repr(caught.value)
    assert caught.value.__context__ is None


async def test_the_client_refuses_a_session_with_a_cookie_jar() -> None:
    """A shared cookie jar would carry one user's Nextcloud session into another's calls: refused."""
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="DummyCookieJar"):
            NextcloudClient(session, "https://cloud.example.org")


async def test_the_client_repr_shows_only_the_url(http: aiohttp.ClientSession) -> None:
    """The client's repr names the instance and nothing else."""
    assert (
        repr(NextcloudClient(http, "https://cloud.example.org/"))
        == "NextcloudClient('https://cloud.example.org')"
    )
