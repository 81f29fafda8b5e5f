"""The WebDAV properties and hrefs of simulated files and folders, as Nextcloud's FilesPlugin gives them."""

from __future__ import annotations

import mimetypes
from email.utils import format_datetime
from urllib.parse import quote
from xml.sax.saxutils import escape

from sync.nextcloud_simulator.dav_xml import DAV, OC
from sync.nextcloud_simulator.storage import Node, SimulatedFile, UserStorage

GETETAG = f"{{{DAV}}}getetag"
GETLASTMODIFIED = f"{{{DAV}}}getlastmodified"
GETCONTENTLENGTH = f"{{{DAV}}}getcontentlength"
GETCONTENTTYPE = f"{{{DAV}}}getcontenttype"
RESOURCETYPE = f"{{{DAV}}}resourcetype"
DISPLAYNAME = f"{{{DAV}}}displayname"
FILEID = f"{{{OC}}}fileid"
SIZE = f"{{{OC}}}size"

# What `d:allprop` (or an empty PROPFIND body) returns: Sabre's core properties, none of Nextcloud's own.
ALLPROP = (GETETAG, GETLASTMODIFIED, GETCONTENTLENGTH, GETCONTENTTYPE, RESOURCETYPE)


def home_href(user_id: str) -> str:
    # Sabre's encodePath keeps unreserved characters and / : @ ( ), and percent-encodes the rest.
    return f"/remote.php/dav/files/{quote(user_id, safe=':@()')}/"


def node_href(user_id: str, node: Node) -> str:
    if not node.path:
        return home_href(user_id)
    suffix = "" if isinstance(node, SimulatedFile) else "/"
    return home_href(user_id) + quote(node.path, safe="/:@()") + suffix


def node_properties(storage: UserStorage, node: Node) -> dict[str, str]:
    """Every property the simulator knows for a node: Clark name -> inner XML."""
    properties = {
        GETETAG: escape(f'"{node.etag}"'),
        GETLASTMODIFIED: format_datetime(node.modified, usegmt=True),
        RESOURCETYPE: "" if isinstance(node, SimulatedFile) else "<d:collection/>",
        DISPLAYNAME: escape(node.path.rpartition("/")[2]),
        FILEID: str(node.file_id),
        SIZE: str(storage.size_of(node)),
    }
    if isinstance(node, SimulatedFile):
        properties[GETCONTENTLENGTH] = str(node.size)
        properties[GETCONTENTTYPE] = mimetypes.guess_type(node.path)[0] or "application/octet-stream"
    return properties


def split_found(available: dict[str, str], wanted: list[str] | None) -> tuple[dict[str, str], list[str]]:
    """The wanted properties a node has (name -> XML) and those it lacks; None wants `allprop`."""
    if wanted is None:
        return {name: available[name] for name in ALLPROP if name in available}, []
    found = {name: available[name] for name in wanted if name in available}
    return found, [name for name in wanted if name not in available]
