"""`/ocs/v2.php/cloud/user` and its v1 twin: the current user as Nextcloud's provisioning API returns it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from sync.nextcloud_simulator.accounts import SimulatedUser
from sync.nextcloud_simulator.auth import login

UNAUTHORISED = 997
NOT_FOUND = 998
SERVER_ERROR = 996
_V2_HTTP_STATUS = {UNAUTHORISED: 401, NOT_FOUND: 404, SERVER_ERROR: 500}


def _wants_json(request: web.Request) -> bool:
    # The `format` parameter wins; without it Nextcloud looks at Accept, and falls back to XML.
    requested = request.query.get("format")
    if requested is not None:
        return requested == "json"
    return "application/json" in request.headers.get("Accept", "")


def _xml(name: str, value: Any) -> str:
    if isinstance(value, Mapping):
        inner = "".join(_xml(key, item) for key, item in value.items())
    elif isinstance(value, list):
        inner = "".join(_xml("element", item) for item in value)
    elif isinstance(value, bool):
        inner = "1" if value else ""
    else:
        inner = "" if value is None else escape(str(value))
    return f"<{name}>{inner}</{name}>" if inner else f"<{name}/>"


def ocs_response(
    request: web.Request, version: int, status: int, message: str = "", data: Any = None
) -> web.Response:
    """An OCS answer; `status` is the v2 OCS status (200 ok, 997 unauthorised, 429 throttled, ...)."""
    ok = status == 200
    if version == 1:
        # V1Response: everything is HTTP 200 except "unauthorised", and "ok" is spelt 100.
        http_status = 401 if status == UNAUTHORISED else 200
        meta = {"status": "ok" if ok else "failure", "statuscode": 100 if ok else status}
        meta |= {"message": "OK" if ok else message, "totalitems": "", "itemsperpage": ""}
    else:
        http_status = _V2_HTTP_STATUS.get(status, status)
        meta = {"status": "ok" if ok else "failure", "statuscode": status, "message": "OK" if ok else message}
    headers = {}
    if status == UNAUTHORISED:
        headers["WWW-Authenticate"] = 'Basic realm="Authorisation Required"'
    document = {"meta": meta, "data": [] if data is None else data}
    if _wants_json(request):
        return web.json_response({"ocs": document}, status=http_status, headers=headers)
    body = f'<?xml version="1.0"?>\n{_xml("ocs", document)}\n'
    return web.Response(status=http_status, text=body, content_type="application/xml", headers=headers)


def user_data(user: SimulatedUser) -> dict[str, Any]:
    """getCurrentUser's data; `enabled` is only there for admins, as AUserData::getUserData does."""
    data: dict[str, Any] = {"enabled": user.enabled} if user.is_admin else {}
    data |= {
        "id": user.user_id,
        "lastLogin": 0,
        "backend": "Database",
        "subadmin": [],
        "quota": {"free": 0, "used": 0, "total": 0, "relative": 0, "quota": -3},
        "manager": "",
        "email": user.email,
        "additional_mail": [],
        "displayname": user.display_name,
        "display-name": user.display_name,
        "groups": ["admin"] if user.is_admin else [],
        "language": "en",
        "locale": "",
        "notify_email": None,
        "backendCapabilities": {"setDisplayName": True, "setPassword": True},
    }
    return data


async def _current_user(request: web.Request, version: int) -> web.Response:
    user = login(request)
    if user is None:
        return ocs_response(request, version, UNAUTHORISED, "Current user is not logged in")
    # Logged in, but without this header the CSRF check fails on every OCS route (see the package docs).
    if request.headers.get("OCS-APIRequest") != "true":
        return ocs_response(request, version, UNAUTHORISED, "CSRF check failed")
    return ocs_response(request, version, 200, data=user_data(user))


async def current_user_v2(request: web.Request) -> web.Response:
    return await _current_user(request, 2)


async def current_user_v1(request: web.Request) -> web.Response:
    return await _current_user(request, 1)
