"""Unauthenticated routes, the route table's OpenAPI description, HTTP-level errors as
problems, and what the log must never hold."""

from __future__ import annotations

import base64
import json
import logging
import re

import aiohttp
import pytest

from hub.client import PayloadSource
from tests.conftest import (
    INSECURE_TEST_HUB_KEYS,
    INSECURE_TEST_NODE_KEYS,
    SYNTHETIC_REFERRAL,
    HubFixture,
    referral_fields,
)
from tests.server.helpers import (
    HEALTH,
    LA,
    POLICE,
    Reply,
    SignedRequest,
    send,
    signed_request,
)


async def _plain(http: aiohttp.ClientSession, hub: HubFixture, method: str, path: str) -> Reply:
    return await send(http, hub, SignedRequest(method, path, "", b"", {}))


async def test_health_needs_no_signature(hub: HubFixture, http: aiohttp.ClientSession) -> None:
    reply = await _plain(http, hub, "GET", "/v1/health")
    assert reply.status == 200
    assert reply.json() == {"status": "ok", "hub_id": "hub.test"}


async def test_openapi_describes_every_route(hub: HubFixture, http: aiohttp.ClientSession) -> None:
    reply = await _plain(http, hub, "GET", "/v1/openapi.json")
    document = reply.json()

    assert document["openapi"] == "3.1.0"
    # The app's whole router (the handlers' table and routes added beside it, /metrics),
    # less the HEAD aiohttp adds for each GET.
    table = {
        (route.resource.canonical, route.method.lower())
        for route in hub.server.app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert table == described
    # Every $ref points at a schema the document defines.
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(document)))
    assert refs
    assert refs <= set(document["components"]["schemas"])


@pytest.mark.parametrize("path", ["/v1/nothing-here", "/", "/v1/messages/x/y/z"])
async def test_unknown_route_is_a_404_problem(
    hub: HubFixture, http: aiohttp.ClientSession, path: str
) -> None:
    reply = await _plain(http, hub, "GET", path)
    problem = reply.problem(404, "http-404")
    assert problem["instance"] == path


async def test_wrong_method_is_a_405_problem_that_says_what_is_allowed(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    reply = await _plain(http, hub, "DELETE", "/v1/messages")
    reply.problem(405, "http-405")
    # RFC 9110 section 15.5.6: a 405 response MUST carry Allow.
    assert reply.headers.get("Allow") == "POST"

    health = await _plain(http, hub, "POST", "/v1/health")
    health.problem(405, "http-405")
    assert "GET" in health.headers.get("Allow", "")


async def test_problem_bodies_are_well_formed_for_signed_and_unsigned_errors(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    # A signed request to a route that does not exist is still a plain 404 problem.
    reply = await send(http, hub, signed_request(hub, "GET", "/v1/nowhere"))
    reply.problem(404, "http-404")
    assert reply.headers["Content-Type"] == "application/problem+json; charset=utf-8"


def _key_material() -> dict[str, str]:
    """Every spelling of the test keys' secrets (and public keys) a log might contain."""
    found: dict[str, str] = {}
    for name, keys in {**INSECURE_TEST_NODE_KEYS, "hub": INSECURE_TEST_HUB_KEYS}.items():
        secrets = {
            "signing-seed": keys.signing.seed,
            "encryption-secret": keys.encryption_secret,
            "signing-public": keys.public.signing,
            "encryption-public": keys.public.encryption,
        }
        for what, raw in secrets.items():
            found[f"{name} {what} base64"] = base64.b64encode(raw).decode()
            found[f"{name} {what} urlsafe"] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
            found[f"{name} {what} hex"] = raw.hex()
            found[f"{name} {what} repr"] = repr(raw)[2:-1]
    return found


async def test_logs_hold_no_payload_text_and_no_key_material(
    hub: HubFixture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    health, la, police = hub.client(HEALTH), hub.client(LA), hub.client(POLICE)
    async with health, la, police:
        receipt = await health.send(referral_fields(), PayloadSource.json(SYNTHETIC_REFERRAL))
        for reader in (la, police):
            await reader.inbox()
            message = await reader.fetch(receipt.message_id)
            assert await reader.open_payload(message) is not None
            await reader.acknowledge(message)
        await health.status(receipt.message_id)

    text = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert receipt.message_id in text, "the exchange was not logged at all"
    for secret in ("Testperson", "Synthetic test concern", "2001-04-01"):
        assert secret not in text
    leaked = [what for what, spelling in _key_material().items() if spelling in text]
    assert leaked == []
