"""The OpenAPI 3.1 document, built from the routes' RouteSpecs and the pydantic models they name.

Nothing here is written by hand per route: a route's contract lives in its RouteSpec, so the
document cannot drift from what the router serves. Pydantic emits JSON Schema 2020-12, which is
what OpenAPI 3.1 uses, so model schemas go in as they are, under `components/schemas`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from receiver.routing import Answer, RouteSpec

OPENAPI_VERSION = "3.1.0"
SCHEMA_REF = "#/components/schemas/{model}"
ERROR_SCHEMA_NAME = "Error"

BASIC_AUTH = "basicAuth"
BEARER_AUTH = "bearerAuth"
WEBHOOK_SIGNATURE = "webhookSignature"

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    BASIC_AUTH: {
        "type": "http",
        "scheme": "basic",
        "description": "The Nextcloud login name and the app password being provisioned or managed.",
    },
    BEARER_AUTH: {
        "type": "http",
        "scheme": "bearer",
        "description": "An auditor or admin token made by `credledger tokens create`.",
    },
    WEBHOOK_SIGNATURE: {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-signature",
        "description": "A Standard Webhooks signature over webhook-id, webhook-timestamp and the body.",
    },
}

# The shape of every error answer (receiver.errors.error_response).
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean", "const": False},
        "error": {"type": "string", "description": "What went wrong, for a person."},
        "code": {"type": "string", "description": "What went wrong, for a program."},
        "fields": {
            "type": "array",
            "items": {"type": "object"},
            "description": "The fields at fault, for validation failures.",
        },
    },
    "required": ["success", "error", "code"],
}

_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
# aiohttp's `{name}` or `{name:regex}`; a regex may hold one level of braces, as aiohttp allows.
_PATH_PARAMETER = re.compile(r"\{([_a-zA-Z][_a-zA-Z0-9]*)(?::((?:[^{}]|\{[^{}]*\})*))?\}")
_BODYLESS_STATUSES = frozenset({204, 205, 304})


def _ref(name: str) -> dict[str, str]:
    return {"$ref": SCHEMA_REF.format(model=name)}


def _operation_id(spec: RouteSpec) -> str:
    return getattr(spec.handler, "__name__", type(spec.handler).__name__)


def _path_parameters(path: str) -> tuple[str, list[dict[str, Any]]]:
    """The OpenAPI path (regexes dropped) and its parameters, all required strings."""
    parameters: list[dict[str, Any]] = []
    for match in _PATH_PARAMETER.finditer(path):
        schema: dict[str, Any] = {"type": "string"}
        if match.group(2):
            schema["pattern"] = f"^{match.group(2)}$"
        parameters.append({"name": match.group(1), "in": "path", "required": True, "schema": schema})
    return _PATH_PARAMETER.sub(lambda m: "{" + m.group(1) + "}", path), parameters


def _query_parameters(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """One query parameter per field of the query model's schema, named by alias."""
    required = set(definition.get("required", ()))
    parameters: list[dict[str, Any]] = []
    for name, field_schema in definition.get("properties", {}).items():
        schema = dict(field_schema)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if "description" in schema:
            parameter["description"] = schema.pop("description")
        parameter["schema"] = schema
        parameters.append(parameter)
    return parameters


def _response(
    answer: Answer, extra_media_types: Sequence[str], refs: dict[Any, dict[str, str]]
) -> dict[str, Any]:
    response: dict[str, Any] = {"description": answer.description}
    if answer.status in _BODYLESS_STATUSES or answer.status < 200:
        return response
    content: dict[str, Any] = {}
    if answer.model is not None:
        content[answer.media_type] = {"schema": refs[(answer.model, "serialization")]}
    elif answer.status >= 400:
        # Every error answer has one shape, whatever the media type a route's successes use.
        content["application/json"] = {"schema": _ref(ERROR_SCHEMA_NAME)}
    elif answer.media_type.split(";")[0].strip().endswith("json"):
        content[answer.media_type] = {"schema": {"type": "object"}}
    else:
        content[answer.media_type] = {"schema": {"type": "string"}}
    if answer.status < 300:
        for media_type in extra_media_types:
            content.setdefault(media_type, {"schema": {"type": "string"}})
    response["content"] = content
    return response


def _model_schemas(specs: Sequence[RouteSpec]) -> tuple[dict[Any, dict[str, str]], dict[str, Any]]:
    """One pass over every model, so a model whose input and output differ gets two named schemas."""
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    for spec in specs:
        if spec.body is not None:
            wanted[(spec.body, "validation")] = None
        if spec.query is not None:
            wanted[(spec.query, "validation")] = None
        for answer in spec.answers:
            if answer.model is not None:
                wanted[(answer.model, "serialization")] = None
    if not wanted:
        return {}, {}
    refs, definitions = models_json_schema(list(wanted), ref_template=SCHEMA_REF)
    return dict(refs), dict(definitions.get("$defs", {}))


def _definition_name(ref: dict[str, str]) -> str:
    return ref["$ref"].rsplit("/", 1)[-1]


def _operation(
    spec: RouteSpec,
    parameters: list[dict[str, Any]],
    refs: dict[Any, dict[str, str]],
    schemas: dict[str, Any],
) -> dict[str, Any]:
    unknown = [name for name in spec.security if name not in SECURITY_SCHEMES]
    if unknown:
        raise ValueError(f"{spec.method} {spec.path}: unknown security schemes {unknown}")
    if not spec.answers:
        raise ValueError(f"{spec.method} {spec.path}: a route must declare at least one answer")
    operation: dict[str, Any] = {
        "operationId": _operation_id(spec),
        "summary": spec.summary,
        "tags": [spec.tag],
    }
    if spec.query is not None:
        parameters = parameters + _query_parameters(
            schemas[_definition_name(refs[(spec.query, "validation")])]
        )
    if parameters:
        operation["parameters"] = parameters
    if spec.body is not None:
        operation["requestBody"] = {
            "required": spec.body_required,
            "content": {"application/json": {"schema": refs[(spec.body, "validation")]}},
        }
    operation["responses"] = {
        str(answer.status): _response(answer, spec.extra_media_types, refs) for answer in spec.answers
    }
    # Alternatives: any one of the listed schemes admits the caller; none listed means anyone.
    operation["security"] = [{name: []} for name in spec.security]
    return operation


def _drop_unreferenced(document: dict[str, Any], names: set[str]) -> None:
    """Query models are inlined as parameters; their own schema stays only if something else refers to it."""
    schemas = document["components"]["schemas"]
    for name in names:
        definition = schemas.pop(name)
        if json.dumps(_ref(name)["$ref"]) in json.dumps(document):
            schemas[name] = definition


def build_openapi(specs: Sequence[RouteSpec], *, title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1.0 document describing `specs`, in their order."""
    refs, schemas = _model_schemas(specs)
    if ERROR_SCHEMA_NAME in schemas:
        raise ValueError(f"a model is named {ERROR_SCHEMA_NAME!r}, which the shared error schema uses")
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    tags: dict[str, None] = {}
    for spec in specs:
        method = spec.method.lower()
        if method not in _HTTP_METHODS:
            raise ValueError(f"{spec.method} {spec.path}: not a method OpenAPI can describe")
        path, parameters = _path_parameters(spec.path)
        operations = paths.setdefault(path, {})
        if method in operations:
            raise ValueError(f"{spec.method} {spec.path} is declared twice")
        operation = _operation(spec, parameters, refs, schemas)
        if operation["operationId"] in operation_ids:
            raise ValueError(f"operationId {operation['operationId']!r} is used twice: rename a handler")
        operation_ids.add(operation["operationId"])
        operations[method] = operation
        tags[spec.tag] = None
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version},
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": {
            # Copies: a caller that edits its document must not edit the next one.
            "schemas": {**schemas, ERROR_SCHEMA_NAME: copy.deepcopy(ERROR_SCHEMA)},
            "securitySchemes": copy.deepcopy(SECURITY_SCHEMES),
        },
    }
    query_models = {spec.query for spec in specs if spec.query is not None}
    _drop_unreferenced(document, {_definition_name(refs[(model, "validation")]) for model in query_models})
    return document
