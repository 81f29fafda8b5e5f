"""SEARCH on `/remote.php/dav`: Nextcloud's file search over the scopes a basicsearch names."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from aiohttp import web

from sync.nextcloud_simulator.accounts import SimulatedUser
from sync.nextcloud_simulator.auth import login
from sync.nextcloud_simulator.control import NextcloudSimulator
from sync.nextcloud_simulator.dav_xml import (
    error_response,
    multistatus_response,
    not_authenticated,
    response_xml,
)
from sync.nextcloud_simulator.keys import SIMULATOR
from sync.nextcloud_simulator.properties import node_href, node_properties, split_found
from sync.nextcloud_simulator.search_query import (
    DEFAULT_LIMIT,
    BasicSearch,
    SearchError,
    matches,
    parse_search,
    sort_value,
)
from sync.nextcloud_simulator.storage import Node, SimulatedFolder, UserStorage


def _no_handler() -> web.Response:
    return error_response(
        501, "Sabre\\DAV\\Exception\\NotImplemented", 'There was no handler found for this "SEARCH" method'
    )


def _scope_folder(control: NextcloudSimulator, user: SimulatedUser, href: str) -> SimulatedFolder:
    """The folder a scope names; its href is relative to /remote.php/dav or an absolute URL."""
    path = unquote(urlsplit(href).path if "://" in href else href).strip("/")
    path = path.removeprefix("remote.php/dav/")
    root, _, rest = path.partition("/")
    owner, _, below = rest.partition("/")
    if root != "files" or owner not in control.accounts.users:
        raise SearchError(404, f"Principal with name {owner} not found", "Sabre\\DAV\\Exception\\NotFound")
    if owner != user.user_id:
        # Another user's home is an empty SimpleCollection, not a Directory (see webdav.py).
        raise SearchError(500, "Search is only supported on directories")
    node = control.storage(owner).node(below)
    if node is None:
        raise SearchError(
            404, f"File with name {below} could not be located", "Sabre\\DAV\\Exception\\NotFound"
        )
    if not isinstance(node, SimulatedFolder):
        raise SearchError(500, "Search is only supported on directories")
    return node


def _results(storage: UserStorage, query: BasicSearch, folders: list[SimulatedFolder]) -> list[Node]:
    # FileSearchBackend searches the whole subtree whatever `d:depth` says, never the scope itself.
    found = {node.file_id: node for folder in folders for node in storage.below(folder.path)}
    nodes = sorted(found.values(), key=lambda node: node.file_id)
    nodes = [node for node in nodes if matches(query.where, storage, node)]
    for prop, ascending in reversed(query.order):
        nodes.sort(key=lambda node: sort_value(storage, node, prop), reverse=not ascending)
    return nodes[query.offset : query.offset + (query.limit or DEFAULT_LIMIT)]


def _error(error: SearchError) -> web.Response:
    if error.exception is None:
        return web.Response(status=error.status, text=str(error))
    return error_response(error.status, error.exception, str(error))


async def search(request: web.Request) -> web.StreamResponse:
    # SearchDAV only takes XML bodies sent to the arbiter (/remote.php/dav itself); Sabre has no
    # other SEARCH handler, hence 501 for anything else.
    content_type = request.headers.get("Content-Type", "")
    if request.match_info["tail"].strip("/") or not (
        "text/xml" in content_type or "application/xml" in content_type
    ):
        return _no_handler()
    control = request.app[SIMULATOR]
    user = login(request)
    if user is None:
        return not_authenticated()
    try:
        query = parse_search(await request.read())
        if not query.scopes:
            raise SearchError(500, "You need to specify a scope for the search.")
        folders = [_scope_folder(control, user, href) for href in query.scopes]
        storage = control.storage(user.user_id)
        nodes = _results(storage, query, folders)
    except SearchError as error:
        return _error(error)
    responses = []
    for node in nodes:
        found, missing = split_found(node_properties(storage, node), query.select)
        responses.append(response_xml(node_href(user.user_id, node), found, missing))
    return multistatus_response(responses)
