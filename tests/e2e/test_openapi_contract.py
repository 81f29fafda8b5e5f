"""/openapi.json describes the whole running application, and is a valid OpenAPI 3.1 document."""

from __future__ import annotations

import openapi_spec_validator

from tests.e2e.conftest import Service


async def test_every_registered_route_is_in_the_document(service: Service) -> None:
    """A route added to the router but not declared would be missing here."""
    document = await (await service.client.get("/openapi.json")).json()
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    registered = {
        (route.method, route.resource.canonical)
        for route in service.client.app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    assert registered - documented == set()
    assert documented - registered == set()


async def test_the_document_is_valid_openapi_3_1(service: Service) -> None:
    """openapi-spec-validator accepts it."""
    document = await (await service.client.get("/openapi.json")).json()
    openapi_spec_validator.validate(document)
    assert document["openapi"] == "3.1.0"
