"""The OpenAPI document built from RouteSpecs, and the operations routes that serve it and the metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import openapi_spec_validator
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel, Field, computed_field

from receiver.metrics import METRICS, ServiceMetrics
from receiver.openapi import BASIC_AUTH, BEARER_AUTH, WEBHOOK_SIGNATURE, build_openapi
from receiver.routes import operations
from receiver.routing import Answer, RouteSpec, register


class EventType(StrEnum):
    provisioned = "credential.provisioned"
    revoked = "credential.revoked"


class ProvisionBody(BaseModel):
    username: str | None = None
    scopes: list[str] = Field(default_factory=list)


class Success(BaseModel):
    success: bool = True
    message: str


class AuditEvent(BaseModel):
    position: int
    type: EventType


class EventPage(BaseModel):
    events: list[AuditEvent]
    next_cursor: int | None


class AuditQuery(BaseModel):
    user: str | None = Field(None, description="Only this user's events.")
    type: EventType | None = None
    limit: int = Field(100, ge=1, le=1000)
    after: int


class WebhookEvent(BaseModel):
    type: EventType
    user_id: str


async def provision_app_password(request: web.Request) -> web.Response:
    return web.json_response({"success": True, "message": "stored"}, status=201)


async def list_audit_events(request: web.Request) -> web.Response:
    return web.json_response({"events": [], "next_cursor": None})


async def receive_event(request: web.Request) -> web.Response:
    return web.json_response({"success": True, "message": "appended"}, status=202)


async def get_thing(request: web.Request) -> web.Response:
    return web.json_response({})


SPECS = [
    RouteSpec(
        method="POST",
        path="/api/v1/users/{uid}/app-password",
        handler=provision_app_password,
        summary="Provision an app password",
        tag="app-password",
        body=ProvisionBody,
        body_required=False,
        security=(BASIC_AUTH,),
        answers=(
            Answer(201, "Stored", Success),
            Answer(400, "Bad request"),
            Answer(401, "Bad credentials"),
            Answer(502, "Nextcloud unreachable"),
        ),
    ),
    RouteSpec(
        method="GET",
        path="/api/v1/audit/events",
        handler=list_audit_events,
        summary="Events of the log",
        tag="audit",
        query=AuditQuery,
        security=(BEARER_AUTH,),
        extra_media_types=("application/x-ndjson",),
        answers=(Answer(200, "A page of events", EventPage), Answer(401, "No or bad token")),
    ),
    RouteSpec(
        method="POST",
        path="/api/v1/events",
        handler=receive_event,
        summary="Receive a signed event",
        tag="events",
        body=WebhookEvent,
        security=(WEBHOOK_SIGNATURE,),
        answers=(Answer(202, "Appended", Success), Answer(409, "Delivery id reused")),
    ),
    RouteSpec(
        method="GET",
        path=r"/things/{thing_id:\d+}",
        handler=get_thing,
        summary="A thing",
        tag="things",
        answers=(Answer(204, "Nothing"),),
    ),
]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_openapi(SPECS, title="credledger", version="1.2.3")


def operation(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    result: dict[str, Any] = document["paths"][path][method]
    return result


def refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_document_validates_as_openapi_3_1(document: dict[str, Any]) -> None:
    """openapi-spec-validator accepts the document as OpenAPI 3.1."""
    openapi_spec_validator.validate(document)
    assert document["openapi"] == "3.1.0"


def test_every_ref_resolves_to_a_component(document: dict[str, Any]) -> None:
    """Each $ref names a schema that components holds."""
    schemas = document["components"]["schemas"]

    for ref in refs(document):
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in schemas


def test_path_parameters_come_from_the_template(document: dict[str, Any]) -> None:
    """`{uid}` becomes a required string path parameter."""
    op = operation(document, "/api/v1/users/{uid}/app-password", "post")

    assert op["parameters"] == [{"name": "uid", "in": "path", "required": True, "schema": {"type": "string"}}]


def test_path_regex_is_dropped_from_the_template(document: dict[str, Any]) -> None:
    """aiohttp's `{name:regex}` appears as `{name}`, the regex kept as the parameter's pattern."""
    op = operation(document, "/things/{thing_id}", "get")

    assert op["parameters"][0]["schema"] == {"type": "string", "pattern": r"^\d+$"}


def test_operation_names_the_handler_summary_and_tag(document: dict[str, Any]) -> None:
    """operationId is the handler's name; summary and tag come from the spec."""
    op = operation(document, "/api/v1/events", "post")

    assert (op["operationId"], op["summary"], op["tags"]) == (
        "receive_event",
        "Receive a signed event",
        ["events"],
    )


def test_request_body_references_the_model(document: dict[str, Any]) -> None:
    """The body model is a component referenced as JSON content, with the spec's required flag."""
    body = operation(document, "/api/v1/users/{uid}/app-password", "post")["requestBody"]

    assert body == {
        "required": False,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ProvisionBody"}}},
    }
    assert "scopes" in document["components"]["schemas"]["ProvisionBody"]["properties"]


def test_query_model_fields_become_query_parameters(document: dict[str, Any]) -> None:
    """Each query field is a parameter with its schema and required flag."""
    parameters = {p["name"]: p for p in operation(document, "/api/v1/audit/events", "get")["parameters"]}

    assert {name: p["required"] for name, p in parameters.items()} == {
        "user": False,
        "type": False,
        "limit": False,
        "after": True,
    }
    assert parameters["limit"]["schema"]["maximum"] == 1000
    assert parameters["user"]["description"] == "Only this user's events."
    assert {p["in"] for p in parameters.values()} == {"query"}


def test_query_model_is_not_left_as_a_component(document: dict[str, Any]) -> None:
    """A query model is inlined as parameters, so no unused schema of it remains."""
    assert "AuditQuery" not in document["components"]["schemas"]


def test_nested_definitions_are_hoisted_into_components(document: dict[str, Any]) -> None:
    """A model's nested models and enums are components, not `$defs`."""
    schemas = document["components"]["schemas"]

    assert {"EventPage", "AuditEvent", "EventType"} <= schemas.keys()
    assert "$defs" not in json.dumps(document)


def test_success_answer_references_its_model(document: dict[str, Any]) -> None:
    """A 2xx answer with a model has JSON content referencing that model."""
    responses = operation(document, "/api/v1/audit/events", "get")["responses"]

    assert responses["200"]["content"]["application/json"] == {
        "schema": {"$ref": "#/components/schemas/EventPage"}
    }


def test_extra_media_types_are_alternative_content(document: dict[str, Any]) -> None:
    """NDJSON is offered beside JSON on the success answer, as a string."""
    content = operation(document, "/api/v1/audit/events", "get")["responses"]["200"]["content"]

    assert content["application/x-ndjson"] == {"schema": {"type": "string"}}


def test_no_content_answer_has_no_content(document: dict[str, Any]) -> None:
    """A 204 answer declares no body."""
    assert operation(document, "/things/{thing_id}", "get")["responses"]["204"] == {"description": "Nothing"}


def test_error_answers_reference_the_error_schema(document: dict[str, Any]) -> None:
    """Every 4xx and 5xx answer without a model of its own has the shared Error shape."""
    errors = [
        response
        for operations_ in document["paths"].values()
        for op in operations_.values()
        for status, response in op["responses"].items()
        if int(status) >= 400
    ]

    assert len(errors) == 5
    for response in errors:
        assert response["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def test_error_schema_matches_the_error_body(document: dict[str, Any]) -> None:
    """The Error schema requires success, error and code, and allows fields."""
    error = document["components"]["schemas"]["Error"]

    assert error["required"] == ["success", "error", "code"]
    assert error["properties"]["fields"]["type"] == "array"


def test_security_schemes_are_declared(document: dict[str, Any]) -> None:
    """Basic, bearer and the webhook signature header are the security schemes."""
    schemes = document["components"]["securitySchemes"]

    assert schemes == {
        BASIC_AUTH: {"type": "http", "scheme": "basic", "description": schemes[BASIC_AUTH]["description"]},
        BEARER_AUTH: {"type": "http", "scheme": "bearer", "description": schemes[BEARER_AUTH]["description"]},
        WEBHOOK_SIGNATURE: {
            "type": "apiKey",
            "in": "header",
            "name": "webhook-signature",
            "description": schemes[WEBHOOK_SIGNATURE]["description"],
        },
    }


def test_operation_security_names_the_spec_schemes(document: dict[str, Any]) -> None:
    """A route's security lists its schemes; a route without any is open."""
    assert operation(document, "/api/v1/events", "post")["security"] == [{WEBHOOK_SIGNATURE: []}]
    assert operation(document, "/things/{thing_id}", "get")["security"] == []


def test_unknown_security_scheme_is_refused() -> None:
    """A spec naming an undefined scheme raises ValueError rather than documenting it."""
    spec = RouteSpec("GET", "/x", get_thing, "x", "x", (Answer(200, "ok"),), security=("cookieAuth",))

    with pytest.raises(ValueError, match="unknown security"):
        build_openapi([spec], title="t", version="1")


def test_duplicate_operation_id_is_refused() -> None:
    """Two routes served by one handler name raise ValueError: operationIds must be unique."""
    specs = [
        RouteSpec("GET", "/x", get_thing, "x", "x", (Answer(200, "ok"),)),
        RouteSpec("GET", "/y", get_thing, "y", "y", (Answer(200, "ok"),)),
    ]

    with pytest.raises(ValueError, match="used twice"):
        build_openapi(specs, title="t", version="1")


def test_model_differing_as_input_and_output_gets_two_schemas() -> None:
    """A model used as body and as answer with different shapes gets an Input and an Output schema."""

    class Stamped(BaseModel):
        at: int = 0

        @computed_field  # type: ignore[prop-decorator]
        @property
        def later(self) -> int:
            return self.at + 1

    spec = RouteSpec("POST", "/s", get_thing, "s", "s", (Answer(200, "ok", Stamped),), body=Stamped)

    schemas = build_openapi([spec], title="t", version="1")["components"]["schemas"]

    assert "later" not in schemas["Stamped-Input"]["properties"]
    assert "later" in schemas["Stamped-Output"]["properties"]


def operations_app() -> web.Application:
    app = web.Application()
    app[METRICS] = ServiceMetrics()
    operations.setup(app)
    register(app, SPECS[:1])
    return app


async def test_metrics_route_serves_the_text_format() -> None:
    """GET /metrics answers the registry's text with the 0.0.4 content type."""
    app = operations_app()
    app[METRICS].sync_outcome("ok")
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics")
        text = await response.text()

    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert text == app[METRICS].render()
    assert 'credledger_sync_runs_total{outcome="ok"} 1\n' in text


async def test_openapi_route_describes_every_registered_route() -> None:
    """GET /openapi.json lists routes registered before and after the operations routes."""
    async with TestClient(TestServer(operations_app())) as client:
        response = await client.get("/openapi.json")
        document = await response.json()

    assert response.status == 200
    assert set(document["paths"]) == {"/metrics", "/openapi.json", "/api/v1/users/{uid}/app-password"}
    assert document["paths"]["/metrics"]["get"]["security"] == []


async def test_openapi_route_builds_the_document_once() -> None:
    """The document is built on the first request and the same bytes are served after."""
    app = operations_app()
    async with TestClient(TestServer(app)) as client:
        first = await (await client.get("/openapi.json")).read()
        cached = app[operations.OPENAPI_CACHE].body
        second = await (await client.get("/openapi.json")).read()

    assert first == second == cached
