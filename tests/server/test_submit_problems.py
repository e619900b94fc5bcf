"""POST /v1/messages: every bad envelope gets a specific problem and leaves no trace."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from hub.crypto import SignatureContext, sign_document
from hub.registry import set_node_status
from tests.conftest import INSECURE_TEST_NODE_KEYS, HubFixture
from tests.server.helpers import (
    HEALTH,
    LA,
    POLICE,
    assert_nothing_stored,
    assert_still_serves,
    envelope_body,
    send,
    sha256_hex,
    signed_envelope,
    signed_request,
    submit,
)

# -- JSON the hub refuses to interpret -----------------------------------------------------


def _duplicate_kind(body: bytes) -> bytes:
    # A parser keeping the last duplicate sees the signed "referral"; one keeping the first
    # sees "note". Two readings of a signed document must never be possible.
    return b'{"kind":"note",' + body[1:]


def _nan_size(body: bytes) -> bytes:
    doc = json.loads(body)
    return body.replace(f'"size":{doc["payload"]["size"]}'.encode(), b'"size":NaN')


def _infinity_size(body: bytes) -> bytes:
    doc = json.loads(body)
    return body.replace(f'"size":{doc["payload"]["size"]}'.encode(), b'"size":-Infinity')


BAD_JSON: dict[str, Callable[[bytes], bytes]] = {
    "malformed": lambda body: body[:-1],
    "duplicate-key": _duplicate_kind,
    "nan": _nan_size,
    "infinity": _infinity_size,
    "array": lambda body: b"[" + body + b"]",
    "string": lambda body: json.dumps(body.decode()).encode(),
    "not-utf8": lambda body: body.replace(b'"referral"', b'"referr\xe9l"'),
    "empty": lambda body: b"",
    # Far deeper than the interpreter's recursion limit, yet well within the body limit.
    "nested-too-deeply": lambda body: b"[" * 100_000 + b"]" * 100_000,
    "objects-nested-too-deeply": lambda body: b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
}


@pytest.mark.parametrize("case", sorted(BAD_JSON))
async def test_unacceptable_json_is_a_400_and_nothing_is_stored(
    hub: HubFixture, http: aiohttp.ClientSession, case: str
) -> None:
    envelope = signed_envelope(hub)
    reply = await submit(http, hub, BAD_JSON[case](envelope_body(envelope)))

    problem = reply.problem(400, "bad-request")
    assert "envelope" in problem["detail"]
    assert problem["instance"] == "/v1/messages"
    await assert_nothing_stored(hub, envelope["id"])
    await assert_still_serves(http, hub)


async def test_duplicate_key_detail_names_the_key(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    reply = await submit(http, hub, _duplicate_kind(envelope_body(signed_envelope(hub))))
    assert "duplicate key 'kind'" in reply.problem(400, "bad-request")["detail"]


# -- schema -------------------------------------------------------------------------------


def _delete(*path: str) -> Any:
    def mutate(envelope: dict[str, Any]) -> None:
        target = envelope
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def _set(value: Any, *path: str) -> Any:
    def mutate(envelope: dict[str, Any]) -> None:
        target = envelope
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


SCHEMA_CASES = {
    "unknown-top-level-field": (_set("blue", "colour"), "$.colour"),
    "unknown-nested-field": (_set("x", "marking", "colour"), "$.marking.colour"),
    "unknown-payload-field": (_set(1, "payload", "compression"), "$.payload.compression"),
    "wrong-type-urgency": (_set(1, "urgency"), "$.urgency"),
    "wrong-type-recipients": (_set(LA, "recipients"), "$.recipients"),
    "wrong-type-size-as-string": (_set("12", "payload", "size"), "$.payload.size"),
    "wrong-type-recipient-item": (_set([LA, 7], "recipients"), "$.recipients[1]"),
    "bad-enum": (_set("gossip", "kind"), "$.kind"),
    "missing-purpose": (_delete("purpose"), "$.purpose"),
    "missing-payload-sha256": (_delete("payload", "sha256"), "$.payload.sha256"),
    "missing-author-role": (_delete("author", "role"), "$.author.role"),
}


@pytest.mark.parametrize("case", sorted(SCHEMA_CASES))
async def test_schema_violation_is_a_422_at_its_path(
    hub: HubFixture, http: aiohttp.ClientSession, case: str
) -> None:
    mutate, path = SCHEMA_CASES[case]
    # Signed after the change: the envelope is authentic, only its shape is wrong.
    envelope = signed_envelope(hub, before=mutate)
    reply = await submit(http, hub, envelope)

    problem = reply.problem(422, "invalid-envelope")
    assert problem["title"] == "Invalid envelope"
    assert ("SCHEMA", path) in reply.rules(), reply.rules()
    for violation in problem["violations"]:
        assert violation["message"]
    await assert_nothing_stored(hub, envelope["id"])
    await assert_still_serves(http, hub)


async def test_schema_problem_lists_every_violation(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    def break_three_ways(envelope: dict[str, Any]) -> None:
        envelope["colour"] = "blue"
        envelope["urgency"] = 1
        del envelope["purpose"]

    envelope = signed_envelope(hub, before=break_three_ways)
    reply = await submit(http, hub, envelope)

    reply.problem(422, "invalid-envelope")
    assert {("SCHEMA", "$.colour"), ("SCHEMA", "$.urgency"), ("SCHEMA", "$.purpose")} <= set(
        reply.rules()
    )
    await assert_nothing_stored(hub, envelope["id"])


# -- the sender's signature ---------------------------------------------------------------


def _add_police(envelope: dict[str, Any]) -> None:
    envelope["recipients"].append(POLICE)
    envelope["payload"]["sealed_keys"][POLICE] = envelope["payload"]["sealed_keys"][LA]


SIGNATURE_CASES = {
    "signed-by-another-key": {"keys": INSECURE_TEST_NODE_KEYS[POLICE]},
    "field-changed-after-signing": {"after": _set("subj-000999", "subject_ref")},
    "recipient-added-after-signing": {"recipients": [LA], "after": _add_police},
    "signature-of-another-context": {"after": lambda e: e.update(signature=_ack_context(e))},
    "signature-wrong-length": {"after": _set("AAAA", "signature")},
}


def _ack_context(envelope: dict[str, Any]) -> str:
    # The right key and bytes, but the domain-separation prefix of an acknowledgement.
    return sign_document(envelope, INSECURE_TEST_NODE_KEYS[HEALTH].signing, SignatureContext.ACK)


@pytest.mark.parametrize("case", sorted(SIGNATURE_CASES))
async def test_envelope_signature_that_does_not_verify_is_sig_01(
    hub: HubFixture, http: aiohttp.ClientSession, case: str
) -> None:
    envelope = signed_envelope(hub, **SIGNATURE_CASES[case])
    reply = await submit(http, hub, envelope)

    problem = reply.problem(422, "envelope-signature-invalid")
    assert reply.rules() == [("SIG-01", "$.signature")]
    assert problem["violations"][0]["message"]
    await assert_nothing_stored(hub, envelope["id"])
    await assert_still_serves(http, hub)


async def test_sender_other_than_the_authenticated_node_is_route_03(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    # A correctly signed police envelope, relayed by the health node.
    envelope = signed_envelope(hub, sender=POLICE, recipients=[LA])
    reply = await submit(http, hub, envelope, node=HEALTH)

    reply.problem(422, "sender-mismatch")
    assert reply.rules() == [("ROUTE-03", "$.sender")]
    await assert_nothing_stored(hub, envelope["id"])
    await assert_still_serves(http, hub)


# -- routing, marking and payload ---------------------------------------------------------


async def test_recipient_not_enrolled_is_route_01_at_its_index(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    envelope = signed_envelope(hub, recipients=[LA, "health.nowhere"])
    reply = await submit(http, hub, envelope)

    problem = reply.problem(422, "message-refused")
    assert reply.rules() == [("ROUTE-01", "$.recipients[1]")]
    assert "nothing was stored" in problem["detail"]
    await assert_nothing_stored(hub, envelope["id"])
    await assert_still_serves(http, hub)


@pytest.mark.parametrize("status", ["suspended", "revoked"])
async def test_recipient_not_active_is_route_02(
    hub: HubFixture, http: aiohttp.ClientSession, status: str
) -> None:
    await set_node_status(hub.store, POLICE, status, now=hub.clock())
    envelope = signed_envelope(hub, recipients=[LA, POLICE])
    reply = await submit(http, hub, envelope)

    reply.problem(422, "message-refused")
    assert reply.rules() == [("ROUTE-02", "$.recipients[1]")]
    await assert_nothing_stored(hub, envelope["id"])
    # Still serving, to a recipient that is active.
    good = signed_envelope(hub, recipients=[LA])
    assert (await submit(http, hub, good)).status == 201


async def test_every_routing_violation_is_listed(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    await set_node_status(hub.store, POLICE, "suspended", now=hub.clock())
    envelope = signed_envelope(hub, recipients=["health.nowhere", LA, POLICE])
    reply = await submit(http, hub, envelope)

    reply.problem(422, "message-refused")
    assert reply.rules() == [("ROUTE-01", "$.recipients[0]"), ("ROUTE-02", "$.recipients[2]")]
    await assert_nothing_stored(hub, envelope["id"])


@pytest.mark.parametrize("tier", ["SECRET", "TOP SECRET"])
async def test_marking_above_official_is_mk_09_and_not_stored(
    hub: HubFixture, http: aiohttp.ClientSession, tier: str
) -> None:
    envelope = signed_envelope(hub, marking={"tier": tier, "sensitive": False})
    reply = await submit(http, hub, envelope)

    problem = reply.problem(422, "message-refused")
    assert ("MK-09", "$.marking.tier") in reply.rules()
    assert "carries only OFFICIAL" in problem["violations"][0]["message"]
    await assert_nothing_stored(hub, envelope["id"])
    await assert_still_serves(http, hub)


PAYLOAD_CASES = {
    "sha256-mismatch": (_set("0" * 64, "payload", "sha256"), [("PAYLOAD-01", "$.payload.sha256")]),
    "size-too-large": (
        lambda e: e["payload"].update(size=e["payload"]["size"] + 1),
        [("PAYLOAD-01", "$.payload.size")],
    ),
    "size-too-small": (
        lambda e: e["payload"].update(size=e["payload"]["size"] - 1),
        [("PAYLOAD-01", "$.payload.size")],
    ),
    "sealed-key-wrong-length": (
        lambda e: e["payload"]["sealed_keys"].update({LA: "AAAA"}),
        [("PAYLOAD-03", f"$.payload.sealed_keys.{LA}")],
    ),
}


@pytest.mark.parametrize("case", sorted(PAYLOAD_CASES))
async def test_inline_payload_that_does_not_match_is_refused(
    hub: HubFixture, http: aiohttp.ClientSession, case: str
) -> None:
    mutate, rules = PAYLOAD_CASES[case]
    envelope = signed_envelope(hub, before=mutate)
    reply = await submit(http, hub, envelope)

    reply.problem(422, "message-refused")
    assert reply.rules() == rules
    await assert_nothing_stored(hub, envelope["id"])
    await assert_still_serves(http, hub)


async def test_blob_transport_without_an_uploaded_blob_is_payload_02(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    envelope = signed_envelope(hub, blob=(sha256_hex(b"never uploaded"), 70_000))
    reply = await submit(http, hub, envelope)

    reply.problem(422, "message-refused")
    assert reply.rules() == [("PAYLOAD-02", "$.payload.sha256")]
    await assert_nothing_stored(hub, envelope["id"])
    await assert_still_serves(http, hub)


# -- body size ----------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_over_the_limit_is_413(
    hub: HubFixture, http: aiohttp.ClientSession, chunked: bool
) -> None:
    limit = hub.config.limits.message_body_bytes
    envelope = signed_envelope(hub)
    # A valid, signed envelope padded with JSON whitespace to one byte over the limit.
    body = envelope_body(envelope)
    body += b" " * (limit + 1 - len(body))
    request = signed_request(hub, "POST", "/v1/messages", body=body)
    reply = await send(http, hub, request, chunked=chunked)

    problem = reply.problem(413, "payload-too-large")
    assert str(limit) in problem["detail"]
    await assert_nothing_stored(hub, envelope["id"])
    await assert_still_serves(http, hub)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_exactly_at_the_limit_is_accepted(
    hub: HubFixture, http: aiohttp.ClientSession, chunked: bool
) -> None:
    limit = hub.config.limits.message_body_bytes
    envelope = signed_envelope(hub)
    body = envelope_body(envelope)
    body += b" " * (limit - len(body))
    request = signed_request(hub, "POST", "/v1/messages", body=body)
    reply = await send(http, hub, request, chunked=chunked)

    assert reply.status == 201, reply.body[:300]
    assert reply.json()["message_id"] == envelope["id"]


# -- resubmission -------------------------------------------------------------------------


async def test_same_envelope_twice_returns_the_original_receipt(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    envelope = signed_envelope(hub)
    body = envelope_body(envelope)

    first = await send(http, hub, signed_request(hub, "POST", "/v1/messages", body=body))
    hub.clock.advance(30)  # a later resubmission must not get a new received_at
    second = await send(http, hub, signed_request(hub, "POST", "/v1/messages", body=body))

    assert first.status == 201
    assert second.status == 200
    assert second.body == first.body
    assert second.json()["message_id"] == envelope["id"]
    deliveries = await _deliveries_of(hub, envelope["id"])
    assert deliveries == {LA: 1, POLICE: 1}


async def test_same_envelope_in_other_json_spelling_is_the_same_message(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    # Identity is the canonical (JCS) form, not the bytes on the wire.
    envelope = signed_envelope(hub)
    first = await submit(http, hub, envelope)
    respelled = json.dumps(dict(reversed(envelope.items())), indent=2).encode()
    second = await submit(http, hub, respelled)

    assert (first.status, second.status) == (201, 200)
    assert second.body == first.body


async def test_same_id_with_other_content_is_409_and_the_original_stands(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    original = signed_envelope(hub)
    assert (await submit(http, hub, original)).status == 201
    async with hub.store.read() as view:
        stored = await view.messages.get(original["id"])

    changed = signed_envelope(hub, message_id=original["id"], subject_ref="subj-000999")
    reply = await submit(http, hub, changed)

    problem = reply.problem(409, "conflict")
    assert "new id" in problem["detail"]
    async with hub.store.read() as view:
        assert await view.messages.get(original["id"]) == stored
    assert await _deliveries_of(hub, original["id"]) == {LA: 1, POLICE: 1}


async def _deliveries_of(hub: HubFixture, message_id: str) -> dict[str, int]:
    async with hub.store.read() as view:
        rows = await view.messages.deliveries(message_id)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.recipient] = counts.get(row.recipient, 0) + 1
    return counts
