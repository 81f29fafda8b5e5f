"""The one place that speaks to Nextcloud: validating an app password (OCS) and reading files (WebDAV).

Every failure is a `NextcloudError`: `InvalidCredentials` (401: never retry that credential),
`Throttled` (429: pause every call to the instance, its throttle is per IP) or `NextcloudUnavailable`
(anything else that is not a usable answer). No message, repr or exception chain carries an app
password or an Authorization header: foreign exceptions are described in words and never chained.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import SimpleNamespace
from typing import Any, NoReturn, TypeGuard
from urllib.parse import quote, unquote, urlsplit
from xml.sax.saxutils import escape

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

VALIDATION_TIMEOUT = 10.0
DAV_TIMEOUT = 30.0
SEARCH_PAGE_SIZE = 500
_MAX_BODY = 64 * 1024 * 1024
_DAV = "{DAV:}"
_OC = "{http://owncloud.org/ns}"
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_ROOT_PROPFIND = '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>'


class NextcloudError(Exception):
    """Nextcloud gave no usable answer."""


class InvalidCredentials(NextcloudError):
    """Nextcloud answered 401: the app password is wrong, revoked, wiped, expired, or its user disabled."""


class Throttled(NextcloudError):
    """Nextcloud answered 429: its brute-force protection blocks this server's address."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NextcloudUnavailable(NextcloudError):
    """No connection, a timeout, a 5xx, a redirect, or an answer that is not what Nextcloud sends."""


@dataclass(frozen=True)
class NextcloudUser:
    """Who an app password belongs to; `user_id` is `ocs.data.id`, not the login name."""

    user_id: str
    display_name: str
    email: str | None
    enabled: bool


@dataclass(frozen=True)
class RemoteFile:
    """A file below a user's root; `path` is relative to it, decoded, without a leading slash."""

    path: str
    file_id: int
    etag: str
    size: int
    last_modified: datetime


def plausible_app_password(value: str) -> bool:
    """Nextcloud's own bounds: 22 to 256 characters, no whitespace, no control or format characters."""
    if not 22 <= len(value) <= 256:
        return False
    return not any(ch.isspace() or unicodedata.category(ch) in {"Cc", "Cf", "Cs"} for ch in value)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: delay-seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


def _basic_authorization(login_name: str, app_password: str) -> str:
    # UTF-8, as PHP hands the raw bytes to Nextcloud; aiohttp's BasicAuth defaults to latin-1.
    if ":" in login_name:
        raise ValueError("a login name with ':' cannot be sent with HTTP Basic")
    credentials: bytes | None
    try:
        credentials = f"{login_name}:{app_password}".encode()
    except UnicodeEncodeError:
        credentials = None
    if credentials is None:
        # Raised out here: a UnicodeEncodeError as context would hold the whole string, password included.
        raise ValueError("the login name or app password is not encodable as UTF-8")
    return "Basic " + base64.b64encode(credentials).decode("ascii")


def _describe(error: BaseException, secret: str) -> str:
    """A foreign exception in words, with the secret masked should it ever appear in them."""
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text.replace(secret, "***") if secret else text


def _atom(moment: datetime) -> str:
    # Nextcloud reads a date literal as Unix seconds or ATOM and silently turns anything else into 0
    # (every file). Its mtimes are whole seconds, so `> floor(since)` is exactly `> since`.
    if moment.tzinfo is None:
        raise ValueError("`since` must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _search_body(uid: str, operator: str, bound: datetime, offset: int, page_size: int) -> str:
    # The scope href carries the uid unencoded: Nextcloud uids cannot hold '%', so this reads the
    # same whether or not the server percent-decodes it.
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<d:searchrequest xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"'
        ' xmlns:s="https://github.com/icewind1991/SearchDAV/ns"><d:basicsearch>'
        "<d:select><d:prop><d:getetag/><d:getlastmodified/><d:getcontentlength/><d:resourcetype/>"
        "<oc:fileid/></d:prop></d:select>"
        f"<d:from><d:scope><d:href>{escape('/files/' + uid)}</d:href><d:depth>infinity</d:depth>"
        "</d:scope></d:from>"
        f"<d:where><d:{operator}><d:prop><d:getlastmodified/></d:prop>"
        f"<d:literal>{_atom(bound)}</d:literal></d:{operator}></d:where>"
        "<d:orderby><d:order><d:prop><d:getlastmodified/></d:prop><d:ascending/></d:order></d:orderby>"
        f"<d:limit><d:nresults>{page_size}</d:nresults><s:firstresult>{offset}</s:firstresult></d:limit>"
        "</d:basicsearch></d:searchrequest>"
    )


@dataclass(frozen=True)
class _DavResource:
    path: str
    props: dict[str, ET.Element]

    def text(self, name: str) -> str | None:
        element = self.props.get(name)
        return None if element is None else (element.text or "").strip()

    @property
    def is_collection(self) -> bool:
        kind = self.props.get(f"{_DAV}resourcetype")
        return kind is not None and kind.find(f"{_DAV}collection") is not None


def _parse_multistatus(body: bytes, what: str) -> list[_DavResource]:
    """Each `d:response`: its decoded href path and the properties found (under a 200 propstat)."""
    if _DTD.search(body):
        raise NextcloudUnavailable(f"{what}: the answer declares a DTD")
    try:
        root = ET.fromstring(body)  # noqa: S314 -- DTDs are refused above, so no entity can expand
    except ET.ParseError:
        raise NextcloudUnavailable(f"{what}: the answer is not XML") from None
    if root.tag != f"{_DAV}multistatus":
        raise NextcloudUnavailable(f"{what}: the answer is not a WebDAV multistatus")
    resources = []
    for response in root.iterfind(f"{_DAV}response"):
        href = response.findtext(f"{_DAV}href", "").strip()
        props: dict[str, ET.Element] = {}
        for propstat in response.iterfind(f"{_DAV}propstat"):
            status = propstat.findtext(f"{_DAV}status", "").split()
            if len(status) > 1 and status[1] == "200":
                props.update((child.tag, child) for child in propstat.iterfind(f"{_DAV}prop/*"))
        resources.append(_DavResource(unquote(urlsplit(href).path), props))
    return resources


# Awaited once a request's headers are on the wire: the moment a call has started, for callers
# that must know a request began before something else (a revocation) may complete.
OnSent = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class _SentNotice:
    on_sent: OnSent


async def _headers_sent(
    session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestHeadersSentParams
) -> None:
    notice = context.trace_request_ctx
    if isinstance(notice, _SentNotice):
        await notice.on_sent()


def new_session() -> aiohttp.ClientSession:
    """The session a NextcloudClient needs: no cookie jar, and the hook that reports sent requests."""
    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(_headers_sent)
    return aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), trace_configs=[trace])


class NextcloudClient:
    """Calls one Nextcloud instance on users' behalf through a caller-owned `aiohttp.ClientSession`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        validation_timeout: float = VALIDATION_TIMEOUT,
        dav_timeout: float = DAV_TIMEOUT,
        search_page_size: int = SEARCH_PAGE_SIZE,
    ) -> None:
        # A shared cookie jar would carry one user's Nextcloud session into another user's calls.
        if not isinstance(session.cookie_jar, aiohttp.DummyCookieJar):
            raise ValueError("the session must be created with cookie_jar=aiohttp.DummyCookieJar()")
        if session.auth is not None:
            raise ValueError("the session must not carry default credentials")
        base = URL(base_url.rstrip("/"))
        if base.scheme not in {"http", "https"} or not base.host or base.user or base.password:
            raise ValueError("the Nextcloud URL must be http(s)://host[/path] without credentials")
        self._session = session
        self._base = base
        self._validation_timeout = validation_timeout
        self._dav_timeout = dav_timeout
        self._page_size = search_page_size

    def __repr__(self) -> str:
        return f"NextcloudClient({str(self._base)!r})"

    async def fetch_user(self, login_name: str, app_password: str) -> NextcloudUser:
        """Validate an app password with OCS v2 `cloud/user` and say whose it is."""
        what = "OCS cloud/user"
        url = self._url("/ocs/v2.php/cloud/user").with_query(format="json")
        headers = {"OCS-APIRequest": "true", "Accept": "application/json"}
        answer = await self._call(
            "GET", url, login_name, app_password, what, self._validation_timeout, headers
        )
        self._check_status(answer, what, expected=200)
        return _parse_user(answer.body, what)

    async def root_etag(
        self, uid: str, login_name: str, app_password: str, *, on_sent: OnSent | None = None
    ) -> str:
        """The etag of the user's root folder, verbatim (quotes included): it changes when anything does."""
        what = f"PROPFIND of {uid!r}'s root"
        url = self._files_url(uid)
        headers = {"Depth": "0", "Content-Type": "application/xml; charset=utf-8"}
        answer = await self._call(
            "PROPFIND",
            url,
            login_name,
            app_password,
            what,
            self._dav_timeout,
            headers,
            _ROOT_PROPFIND,
            on_sent,
        )
        self._check_status(answer, what, expected=207)
        root = url.path.rstrip("/")
        for resource in _parse_multistatus(answer.body, what):
            etag = resource.text(f"{_DAV}getetag")
            if resource.path.rstrip("/") == root and etag:
                return etag
        raise NextcloudUnavailable(f"{what}: no etag for the root (does the app password belong to {uid!r}?)")

    async def changed_files(
        self,
        uid: str,
        login_name: str,
        app_password: str,
        since: datetime | None,
        *,
        on_sent: OnSent | None = None,
    ) -> list[RemoteFile]:
        """Files (not folders) whose mtime is after `since` (every file for None), oldest first.

        `on_sent` is awaited once the first request's headers are on the wire.
        """
        # Nextcloud returns 100 results unless told otherwise, so page explicitly, in mtime order.
        # Each next page starts at the last mtime seen (a file changed meanwhile moves to the end
        # instead of shifting later pages) and skips the entries of that second already returned;
        # only within one second does the offset rely on Nextcloud repeating its order.
        operator, bound = ("gt", since) if since is not None else ("gte", datetime.fromtimestamp(0, UTC))
        offset = 0
        found: dict[int, RemoteFile] = {}
        seen: set[tuple[str, datetime]] = set()
        while True:
            page = await self._search_page(uid, login_name, app_password, operator, bound, offset, on_sent)
            on_sent = None
            if page and seen.issuperset((path, modified) for modified, path, _ in page):
                raise NextcloudUnavailable(f"SEARCH of {uid!r}'s files: paging makes no progress")
            for modified, path, remote in page:
                seen.add((path, modified))
                if remote is not None:
                    found.pop(remote.file_id, None)
                    found[remote.file_id] = remote
            if len(page) < self._page_size:
                return list(found.values())
            last = page[-1][0]
            same_second = sum(1 for modified, _, _ in page if modified == last)
            offset = offset + len(page) if operator == "gte" and last == bound else same_second
            operator, bound = "gte", last

    async def _search_page(
        self,
        uid: str,
        login_name: str,
        app_password: str,
        operator: str,
        bound: datetime,
        offset: int,
        on_sent: OnSent | None,
    ) -> list[tuple[datetime, str, RemoteFile | None]]:
        what = f"SEARCH of {uid!r}'s files"
        body = _search_body(uid, operator, bound, offset, self._page_size)
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        url = self._url("/remote.php/dav/")
        answer = await self._call(
            "SEARCH", url, login_name, app_password, what, self._dav_timeout, headers, body, on_sent
        )
        self._check_status(answer, what, expected=207)
        prefix = self._files_url(uid).path
        return [_entry(resource, prefix, what) for resource in _parse_multistatus(answer.body, what)]

    def _url(self, path: str) -> URL:
        return self._base.with_path(self._base.raw_path.rstrip("/") + path, encoded=True)

    def _files_url(self, uid: str) -> URL:
        return self._url(f"/remote.php/dav/files/{quote(uid, safe='')}/")

    async def _call(
        self,
        method: str,
        url: URL,
        login_name: str,
        app_password: str,
        what: str,
        seconds: float,
        headers: dict[str, str],
        body: str | None = None,
        on_sent: OnSent | None = None,
    ) -> _Answer:
        headers = {**headers, "Authorization": _basic_authorization(login_name, app_password)}
        # The failure is raised outside the except clauses so that it chains nothing: aiohttp's
        # exceptions keep the request, Authorization header included.
        failure = ""
        try:
            async with self._session.request(
                method,
                url,
                headers=headers,
                data=body.encode() if body is not None else None,
                timeout=aiohttp.ClientTimeout(total=seconds),
                # A redirect (http -> https, a moved instance) would drop or leak the credentials.
                allow_redirects=False,
                raise_for_status=False,
                trace_request_ctx=_SentNotice(on_sent) if on_sent is not None else None,
            ) as response:
                return _Answer(response.status, response.headers, await _read_limited(response, what))
        except TimeoutError:
            failure = f"no answer within {seconds:g} s"
        except aiohttp.ClientError as error:
            failure = _describe(error, app_password)
        raise NextcloudUnavailable(f"{what}: {failure}")

    @staticmethod
    def _check_status(answer: _Answer, what: str, *, expected: int) -> None:
        status = answer.status
        if status == expected:
            return
        if status == 401:
            raise InvalidCredentials(f"{what}: Nextcloud refused the app password (401)")
        if status == 429:
            retry_after = parse_retry_after(answer.headers.get("Retry-After"))
            raise Throttled(f"{what}: Nextcloud is throttling this address (429)", retry_after)
        if 300 <= status < 400:
            location = answer.headers.get("Location", "?")
            raise NextcloudUnavailable(
                f"{what}: redirected ({status}) to {location}; check the Nextcloud URL"
            )
        raise NextcloudUnavailable(f"{what}: Nextcloud answered {status}")


async def _read_limited(response: aiohttp.ClientResponse, what: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > _MAX_BODY:
            raise NextcloudUnavailable(f"{what}: the answer is larger than {_MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _unusable(what: str, why: str) -> NoReturn:
    raise NextcloudUnavailable(f"{what}: {why}")


def _json_or_none(body: bytes) -> Any:
    # None rather than the JSONDecodeError, which would carry the whole body along as context.
    try:
        return json.loads(body)
    except ValueError:
        return None


def _parse_user(body: bytes, what: str) -> NextcloudUser:
    document = _json_or_none(body)
    if document is None:
        _unusable(what, "the answer is not JSON")
    ocs = document.get("ocs") if isinstance(document, dict) else None
    meta = ocs.get("meta") if isinstance(ocs, dict) else None
    data = ocs.get("data") if isinstance(ocs, dict) else None
    if not isinstance(meta, dict) or not isinstance(data, dict):
        _unusable(what, "the answer is not an OCS document")
    if meta.get("statuscode") == 997:
        raise InvalidCredentials(f"{what}: Nextcloud refused the app password (OCS 997)")
    if meta.get("statuscode") != 200:
        _unusable(what, f"OCS status {meta.get('statuscode')!r}")
    user_id, email = data.get("id"), data.get("email")
    # Current servers send `displayname` and `display-name`, older ones only the latter; `enabled`
    # only reaches admins, and a user who just logged in is enabled.
    display_name = data.get("displayname", data.get("display-name"))
    enabled = data.get("enabled", True)
    if not isinstance(user_id, str) or not user_id:
        _unusable(what, "ocs.data.id is missing")
    return NextcloudUser(
        user_id=user_id,
        display_name=display_name if isinstance(display_name, str) else user_id,
        email=email if isinstance(email, str) and email else None,
        enabled=enabled if isinstance(enabled, bool) else True,
    )


def _is_natural(text: str | None) -> TypeGuard[str]:
    # ASCII only: str.isdigit() also accepts digits such as '²' that int() refuses.
    return text is not None and text.isascii() and text.isdigit()


def _entry(resource: _DavResource, prefix: str, what: str) -> tuple[datetime, str, RemoteFile | None]:
    """A search result's mtime and href path, with the file it describes (None for a folder)."""
    modified_text = resource.text(f"{_DAV}getlastmodified")
    try:
        modified = parsedate_to_datetime(modified_text or "")
    except (TypeError, ValueError):
        _unusable(what, f"unreadable d:getlastmodified for {resource.path!r}")
    modified = modified if modified.tzinfo else modified.replace(tzinfo=UTC)
    if resource.is_collection:
        return modified, resource.path, None
    if not resource.path.startswith(prefix):
        _unusable(what, f"a result outside the user's files: {resource.path!r}")
    etag, file_id, size = (
        resource.text(f"{_DAV}getetag"),
        resource.text(f"{_OC}fileid"),
        resource.text(f"{_DAV}getcontentlength"),
    )
    if not etag or not _is_natural(file_id) or not _is_natural(size):
        _unusable(what, f"incomplete properties for {resource.path!r}")
    path = resource.path.removeprefix(prefix)
    return modified, resource.path, RemoteFile(path, int(file_id), etag, int(size), modified.astimezone(UTC))
