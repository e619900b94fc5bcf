"""The OpenAPI document: valid OpenAPI 3.1, and complete against the app's route table.

Complete means: every route the hub registers is an operation with the same methods;
every answer an operation can give is listed with the schema of its body (a 304 has no
body by definition); every refusal is a problem+json whose schema carries `violations`;
every signed operation lists 401 and 429. The live schemathesis runs
(test_schemathesis_live.py) check the answers themselves against it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from openapi_spec_validator import validate

from hub.config import HubConfig
from hub.model import PROBLEM_MEDIA_TYPE
from hub.server import create_app
from hub.server.openapi import openapi_document
from tests.conftest import INSECURE_TEST_HUB_KEYS

_METHODS = {"get", "put", "post", "delete", "patch"}
_UNSIGNED = {"/v1/health", "/v1/openapi.json", "/metrics"}


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in _METHODS
    ]


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1.")
    validate(document)  # raises, naming the place, if it is not


def test_every_registered_route_is_documented_with_its_methods(
    make_config: Callable[..., HubConfig],
) -> None:
    app = create_app(make_config(), hub_keys=INSECURE_TEST_HUB_KEYS)
    registered: set[tuple[str, str]] = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        assert path is not None, route
        # aiohttp answers HEAD for every GET route by itself; the document lists the GET.
        if route.method != "HEAD":
            registered.add((path, route.method.lower()))
    documented = {(path, method) for path, method, _ in _operations(openapi_document())}
    assert registered - documented == set(), "routes missing from the OpenAPI document"
    assert documented - registered == set(), "operations the hub does not serve"


def test_every_response_has_a_content_schema() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    missing = []
    for path, method, op in _operations(document):
        for status, response in op["responses"].items():
            if status == "304":
                assert "content" not in response, (path, method)  # RFC 9110 section 15.4.5
                continue
            content = response.get("content") or {}
            if not content or not all("schema" in media for media in content.values()):
                missing.append((method.upper(), path, status))
            for media in content.values():
                ref = media.get("schema", {}).get("$ref", "")
                if ref:
                    assert ref.rsplit("/", 1)[1] in schemas, (path, status, ref)
    assert missing == []


def test_every_refusal_is_a_problem_with_violations_and_signed_calls_list_401_and_429() -> None:
    document = openapi_document()
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status"} <= set(problem["required"])
    assert problem["properties"]["violations"]["items"] == {
        "$ref": "#/components/schemas/Violation"
    }
    assert set(document["components"]["schemas"]["Violation"]["required"]) == {
        "rule",
        "path",
        "message",
    }
    for path, method, op in _operations(document):
        codes = set(op["responses"])
        problems = {
            status
            for status, response in op["responses"].items()
            if PROBLEM_MEDIA_TYPE in response.get("content", {})
        }
        # Every 4xx the hub writes is a problem; the blob download's 412 (an empty body
        # from the file sender's precondition check) is the one exception.
        expected = {c for c in codes if c.startswith("4")} - {"412"}
        assert problems == expected, (method, path, codes, problems)
        for status in problems:
            schema = op["responses"][status]["content"][PROBLEM_MEDIA_TYPE]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (path, status)
        if path in _UNSIGNED:
            assert "security" not in op
            assert not {"401", "429"} & codes, (path, codes)
        else:
            assert op["security"] == [{"httpMessageSignature": []}]
            assert {"401", "429"} <= codes, (method, path)
            assert "Retry-After" in op["responses"]["429"]["headers"]


@pytest.mark.parametrize("status", ["400", "408", "413"])
def test_every_operation_with_a_body_lists_the_body_refusals(status: str) -> None:
    for path, method, op in _operations(openapi_document()):
        body = op.get("requestBody", {}).get("content", {})
        if "application/json" in body:
            assert status in op["responses"], (method, path)
