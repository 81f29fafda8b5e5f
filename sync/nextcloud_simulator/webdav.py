"""PROPFIND and REPORT on `/remote.php/dav/files/{uid}/...`, answered as Nextcloud's Sabre server does."""

from __future__ import annotations

from aiohttp import web

from sync.nextcloud_simulator.auth import login
from sync.nextcloud_simulator.dav_xml import (
    DAV,
    bad_request,
    error_response,
    multistatus_response,
    not_authenticated,
    not_found,
    parse_body,
    response_xml,
)
from sync.nextcloud_simulator.keys import SIMULATOR
from sync.nextcloud_simulator.properties import (
    RESOURCETYPE,
    home_href,
    node_href,
    node_properties,
    split_found,
)
from sync.nextcloud_simulator.storage import Node, SimulatedFolder, UserStorage


def requested_properties(body: bytes) -> list[str] | None:
    """The property names a PROPFIND body asks for; None for `d:allprop` or an empty body."""
    if not body.strip():
        return None
    root = parse_body(body)
    if root.tag != f"{{{DAV}}}propfind":
        raise ValueError("expected a {DAV:}propfind document")
    prop = root.find(f"{{{DAV}}}prop")
    return None if prop is None else [child.tag for child in prop]


def _depth_nodes(storage: UserStorage, node: Node, depth: str) -> list[Node]:
    # Sabre turns `Depth: infinity` (also the default) into 1 unless infinity is enabled,
    # and Nextcloud keeps it off.
    if depth == "0" or not isinstance(node, SimulatedFolder):
        return [node]
    return [node, *storage.children(node.path)]


def _foreign_home(user_id: str, wanted: list[str] | None) -> web.Response:
    # Nextcloud's Files\RootCollection hands another user's home out as an empty SimpleCollection: a
    # collection with no etag, so the PROPFIND succeeds and the etag comes back under 404.
    found, missing = split_found({RESOURCETYPE: "<d:collection/>"}, wanted)
    return multistatus_response([response_xml(home_href(user_id), found, missing)])


async def propfind(request: web.Request) -> web.StreamResponse:
    control = request.app[SIMULATOR]
    user = login(request)
    if user is None:
        return not_authenticated()
    owner = request.match_info["uid"]
    path = request.match_info.get("tail", "").strip("/")
    if owner not in control.accounts.users:
        return not_found(f"Principal with name {owner} not found")
    try:
        wanted = requested_properties(await request.read())
    except ValueError as error:
        return bad_request(f"The request body is not a valid PROPFIND document: {error}")
    if owner != user.user_id:
        return (
            _foreign_home(owner, wanted)
            if not path
            else not_found(f"File with name {path} could not be located")
        )
    storage = control.storage(owner)
    node = storage.node(path)
    if node is None:
        return not_found(f"File with name {path} could not be located")
    responses = []
    for item in _depth_nodes(storage, node, request.headers.get("Depth", "infinity")):
        found, missing = split_found(node_properties(storage, item), wanted)
        responses.append(response_xml(node_href(owner, item), found, missing))
    return multistatus_response(responses)


async def report(request: web.Request) -> web.StreamResponse:
    """Every REPORT on files, sync-collection included, is unsupported: 415, as Sabre answers it."""
    if login(request) is None:
        return not_authenticated()
    return error_response(415, "Sabre\\DAV\\Exception\\ReportNotSupported", "", extra="<d:supported-report/>")
