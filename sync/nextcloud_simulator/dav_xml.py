"""WebDAV XML as Sabre writes it: multistatus and error bodies, and request bodies read without DTDs."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web

DAV = "DAV:"
OC = "http://owncloud.org/ns"
NC = "http://nextcloud.org/ns"
SABRE = "http://sabredav.org/ns"
SEARCHDAV = "https://github.com/icewind1991/SearchDAV/ns"
_PREFIXES = {DAV: "d", SABRE: "s", OC: "oc", NC: "nc"}
_DECLARATIONS = " ".join(f'xmlns:{prefix}="{uri}"' for uri, prefix in _PREFIXES.items())
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def parse_body(body: bytes) -> ET.Element:
    """The root element of a request body; ValueError for anything but plain, DTD-free XML."""
    # Without a DTD no entity can be declared, so entity-expansion bombs cannot reach the parser.
    if _DTD.search(body):
        raise ValueError("document type declarations are not accepted")
    try:
        return ET.fromstring(body)  # noqa: S314 -- DTDs are refused above
    except ET.ParseError as error:
        raise ValueError(str(error)) from None


def element(clark: str, inner: str = "") -> str:
    """`{namespace}name` written with Sabre's prefixes (or a local declaration for others)."""
    namespace, _, local = clark[1:].partition("}")
    prefix = _PREFIXES.get(namespace)
    tag, declaration = (
        (f"{prefix}:{local}", "") if prefix else (f"x:{local}", f" xmlns:x={quoteattr(namespace)}")
    )
    return f"<{tag}{declaration}>{inner}</{tag}>" if inner else f"<{tag}{declaration}/>"


def _propstat(properties: Iterable[str], status: str) -> str:
    return f"<d:propstat><d:prop>{''.join(properties)}</d:prop><d:status>{status}</d:status></d:propstat>"


def response_xml(href: str, found: Mapping[str, str], missing: Iterable[str]) -> str:
    """One `d:response`: found properties (name -> inner XML) under 200, missing ones under 404."""
    parts = [f"<d:response><d:href>{escape(href)}</d:href>"]
    if found:
        parts.append(_propstat((element(name, inner) for name, inner in found.items()), "HTTP/1.1 200 OK"))
    missing = list(missing)
    if missing:
        parts.append(_propstat((element(name) for name in missing), "HTTP/1.1 404 Not Found"))
    parts.append("</d:response>")
    return "".join(parts)


def multistatus_response(responses: Iterable[str]) -> web.Response:
    body = f'<?xml version="1.0"?>\n<d:multistatus {_DECLARATIONS}>{"".join(responses)}</d:multistatus>\n'
    return web.Response(status=207, text=body, content_type="application/xml", charset="utf-8")


def error_response(
    status: int, exception: str, message: str, *, extra: str = "", headers: Mapping[str, str] | None = None
) -> web.Response:
    """Sabre's error body: the exception class and message inside `d:error`."""
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns">{extra}'
        f"<s:exception>{escape(exception)}</s:exception><s:message>{escape(message)}</s:message>"
        "</d:error>\n"
    )
    return web.Response(
        status=status, text=body, content_type="application/xml", charset="utf-8", headers=headers
    )


def not_authenticated() -> web.Response:
    return error_response(
        401,
        "Sabre\\DAV\\Exception\\NotAuthenticated",
        "No public access to this resource., Username or password was incorrect",
        headers={"WWW-Authenticate": 'Basic realm="Nextcloud", charset="UTF-8"'},
    )


def not_found(message: str) -> web.Response:
    return error_response(404, "Sabre\\DAV\\Exception\\NotFound", message)


def bad_request(message: str) -> web.Response:
    return error_response(400, "Sabre\\DAV\\Exception\\BadRequest", message)
