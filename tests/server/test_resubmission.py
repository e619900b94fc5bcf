"""An identical resubmission by its sender is answered 200 with the original receipt, byte
for byte, and changes nothing at the hub: no second message, delivery or log entry. The
same id with other bytes is 409 and changes nothing either. (The client's side, keeping
the bytes to resend, is tests/client/test_retry_safe_send.py.)"""

from __future__ import annotations

import json

import aiohttp

from hub.registry import set_node_status
from hub.server.openapi import openapi_document
from tests.conftest import HubFixture
from tests.server.helpers import (
    LA,
    envelope_body,
    send,
    signed_envelope,
    signed_request,
    submit,
)


async def _log(hub: HubFixture) -> list[tuple[str, str | None]]:
    """(action, message id) of every entry in the hub's log."""
    async with hub.store.read() as view:
        rows = await view.audit.rows(0, 1 << 40)
    return [(r.action, json.loads(r.entry_json).get("message_id")) for r in rows]


async def _message_count(hub: HubFixture, message_id: str) -> tuple[int, int]:
    async with hub.store.read() as view:
        message = await view.messages.get(message_id)
        deliveries = await view.messages.deliveries(message_id)
    return (0 if message is None else 1), len(deliveries)


async def test_an_identical_resubmission_is_200_with_the_original_receipt_and_no_new_entry(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    envelope = signed_envelope(hub)
    body = envelope_body(envelope)
    first = await send(http, hub, signed_request(hub, "POST", "/v1/messages", body=body))
    log_after_first = await _log(hub)
    hub.clock.advance(60)
    again = [
        await send(http, hub, signed_request(hub, "POST", "/v1/messages", body=body))
        for _ in range(3)
    ]

    assert first.status == 201
    assert [reply.status for reply in again] == [200, 200, 200]
    assert {reply.body for reply in again} == {first.body}
    assert {reply.headers["Content-Type"] for reply in again} == {first.headers["Content-Type"]}
    assert await _log(hub) == log_after_first
    assert [m for action, m in log_after_first if m == envelope["id"]] == [envelope["id"]]
    assert await _message_count(hub, envelope["id"]) == (1, 2)


async def test_a_resubmission_the_rules_would_now_refuse_still_gets_its_receipt(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    """Idempotency comes before routing: a recipient suspended since the message was
    accepted does not turn its resend into a refusal (and no refusal is logged)."""
    envelope = signed_envelope(hub)
    first = await submit(http, hub, envelope)
    await set_node_status(hub.store, LA, "suspended", now=hub.clock())
    log_before = await _log(hub)

    again = await submit(http, hub, envelope)

    assert (first.status, again.status) == (201, 200)
    assert again.body == first.body
    assert await _log(hub) == log_before


async def test_the_same_id_with_other_bytes_is_409_and_logs_nothing(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    original = signed_envelope(hub)
    assert (await submit(http, hub, original)).status == 201
    log_before = await _log(hub)
    # The same draft sealed again: new ciphertext under the same id (what a client that
    # did not keep its bytes would send after a lost answer).
    resealed = signed_envelope(hub, message_id=original["id"])
    assert resealed["payload"]["sha256"] != original["payload"]["sha256"]

    reply = await submit(http, hub, resealed)

    reply.problem(409, "conflict")
    assert await _log(hub) == log_before
    assert await _message_count(hub, original["id"]) == (1, 2)


def test_the_openapi_document_gives_a_retry_the_receipt_schema() -> None:
    responses = openapi_document()["paths"]["/v1/messages"]["post"]["responses"]
    assert responses["200"]["content"] == responses["201"]["content"]
    assert "original receipt" in responses["200"]["description"]
    assert "409" in responses
