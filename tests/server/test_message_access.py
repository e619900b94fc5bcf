"""Reading, tracking and acknowledging messages: only the parties see them, and others
cannot tell whether they exist. Inbox cursors and long-polls."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC
from typing import Any

import aiohttp
import pytest

from hub.client.ids import uuid7
from hub.crypto import canonical_json, canonical_sha256
from tests.conftest import INSECURE_TEST_NODE_KEYS, HubFixture
from tests.server.helpers import (
    HEALTH,
    LA,
    POLICE,
    STRANGER,
    Reply,
    ack_document,
    send,
    signed_envelope,
    signed_request,
    submit,
)


async def _sent(hub: HubFixture, http: aiohttp.ClientSession, **options: Any) -> dict[str, Any]:
    envelope = signed_envelope(hub, **options)
    reply = await submit(http, hub, envelope)
    assert reply.status == 201, reply.body[:300]
    return envelope


async def _get(http: aiohttp.ClientSession, hub: HubFixture, path: str, node: str) -> Reply:
    return await send(http, hub, signed_request(hub, "GET", path, node=node))


async def _ack(
    http: aiohttp.ClientSession, hub: HubFixture, message_id: str, ack: dict[str, Any], node: str
) -> Reply:
    body = json.dumps(ack).encode()
    path = f"/v1/messages/{message_id}/ack"
    return await send(http, hub, signed_request(hub, "POST", path, node=node, body=body))


def _not_found(reply: Reply, path: str) -> dict[str, Any]:
    """The 404 problem, minus ``instance`` (the caller's own path, which it already knows)."""
    problem = reply.problem(404, "not-found")
    assert problem.pop("instance") == path
    return problem


async def _delivery_states(hub: HubFixture, message_id: str) -> dict[str, str]:
    async with hub.store.read() as view:
        return {d.recipient: d.state for d in await view.messages.deliveries(message_id)}


# -- who may read -------------------------------------------------------------------------


async def test_sender_and_recipients_read_the_envelope_as_signed(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    envelope = await _sent(hub, http)
    for node in (HEALTH, LA, POLICE):
        reply = await _get(http, hub, f"/v1/messages/{envelope['id']}", node)
        doc = reply.json()
        assert canonical_json(doc["envelope"]) == canonical_json(envelope)
        assert doc["receipt"]["message_id"] == envelope["id"]
    # Reading marks delivery for recipients only.
    assert await _delivery_states(hub, envelope["id"]) == {LA: "delivered", POLICE: "delivered"}


@pytest.mark.parametrize("suffix", ["", "/status"])
async def test_a_stranger_cannot_tell_a_message_exists(
    hub: HubFixture, http: aiohttp.ClientSession, suffix: str
) -> None:
    envelope = await _sent(hub, http)
    existing = f"/v1/messages/{envelope['id']}{suffix}"
    missing = f"/v1/messages/{uuid7(hub.clock())}{suffix}"
    malformed = f"/v1/messages/not-a-message-id{suffix}"

    seen = await _get(http, hub, existing, STRANGER)
    unseen = await _get(http, hub, missing, STRANGER)
    nonsense = await _get(http, hub, malformed, STRANGER)

    assert _not_found(seen, existing) == _not_found(unseen, missing)
    assert _not_found(seen, existing) == _not_found(nonsense, malformed)
    assert seen.headers.get("Content-Length") == unseen.headers.get("Content-Length")
    # Looking did not count as a delivery to anyone.
    assert await _delivery_states(hub, envelope["id"]) == {LA: "pending", POLICE: "pending"}


async def test_a_stranger_cannot_acknowledge_or_probe_by_acknowledging(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    envelope = await _sent(hub, http)
    missing_id = uuid7(hub.clock())
    ghost = {**envelope, "id": missing_id}

    seen = await _ack(
        http, hub, envelope["id"], ack_document(hub, envelope, node=STRANGER), STRANGER
    )
    unseen = await _ack(http, hub, missing_id, ack_document(hub, ghost, node=STRANGER), STRANGER)

    assert _not_found(seen, f"/v1/messages/{envelope['id']}/ack") == _not_found(
        unseen, f"/v1/messages/{missing_id}/ack"
    )
    assert await _delivery_states(hub, envelope["id"]) == {LA: "pending", POLICE: "pending"}


async def test_status_is_for_the_sender_only(hub: HubFixture, http: aiohttp.ClientSession) -> None:
    envelope = await _sent(hub, http)
    path = f"/v1/messages/{envelope['id']}/status"
    missing = f"/v1/messages/{uuid7(hub.clock())}/status"

    as_recipient = await _get(http, hub, path, LA)
    as_nobody = await _get(http, hub, missing, LA)
    as_sender = await _get(http, hub, path, HEALTH)

    assert _not_found(as_recipient, path) == _not_found(as_nobody, missing)
    status = as_sender.json()
    assert status["message_id"] == envelope["id"]
    assert {r["node"]: r["state"] for r in status["recipients"]} == {
        LA: "pending",
        POLICE: "pending",
    }


# -- acknowledgements ---------------------------------------------------------------------


async def _fetched(hub: HubFixture, http: aiohttp.ClientSession) -> dict[str, Any]:
    envelope = await _sent(hub, http)
    assert (await _get(http, hub, f"/v1/messages/{envelope['id']}", LA)).status == 200
    return envelope


async def test_ack_of_another_envelope_hash_is_ack_02(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    envelope = await _fetched(hub, http)
    ack = ack_document(hub, envelope, node=LA, envelope_sha256="ab" * 32)
    reply = await _ack(http, hub, envelope["id"], ack, LA)

    reply.problem(422, "ack-refused")
    assert reply.rules() == [("ACK-02", "$.envelope_sha256")]
    assert (await _delivery_states(hub, envelope["id"]))[LA] == "delivered"


async def test_ack_signed_by_another_key_is_refused(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    envelope = await _fetched(hub, http)
    ack = ack_document(hub, envelope, node=LA, keys=INSECURE_TEST_NODE_KEYS[POLICE])
    reply = await _ack(http, hub, envelope["id"], ack, LA)

    reply.problem(422, "ack-refused")
    assert reply.rules() == [("SIG-01", "$.signature")]
    assert (await _delivery_states(hub, envelope["id"]))[LA] == "delivered"


async def test_ack_naming_another_node_or_message_is_ack_01(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    envelope = await _fetched(hub, http)
    other = await _sent(hub, http)
    # Signed by the LA's own key over the right envelope hash, but naming the police node
    # and another message.
    forged = ack_document(
        hub,
        other,
        node=POLICE,
        keys=INSECURE_TEST_NODE_KEYS[LA],
        envelope_sha256=canonical_sha256(envelope),
    )
    reply = await _ack(http, hub, envelope["id"], forged, LA)

    reply.problem(422, "ack-refused")
    assert reply.rules() == [("ACK-01", "$.message_id"), ("ACK-01", "$.node")]
    assert (await _delivery_states(hub, envelope["id"]))[LA] == "delivered"


async def test_ack_that_is_not_an_acknowledgement_is_a_schema_problem(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    envelope = await _fetched(hub, http)
    ack = ack_document(hub, envelope, node=LA)
    ack["note"] = "extra"
    reply = await _ack(http, hub, envelope["id"], ack, LA)

    reply.problem(422, "invalid-acknowledgement")
    assert reply.rules() == [("SCHEMA", "$.note")]
    path = f"/v1/messages/{envelope['id']}/ack"
    bad_json = signed_request(hub, "POST", path, node=LA, body=b'{"node": NaN}')
    (await send(http, hub, bad_json)).problem(400, "bad-request")
    assert (await _delivery_states(hub, envelope["id"]))[LA] == "delivered"


async def test_ack_body_over_the_small_limit_is_413(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    envelope = await _fetched(hub, http)
    body = json.dumps(ack_document(hub, envelope, node=LA)).encode()
    body += b" " * (hub.config.limits.small_body_bytes + 1 - len(body))
    path = f"/v1/messages/{envelope['id']}/ack"
    reply = await send(http, hub, signed_request(hub, "POST", path, node=LA, body=body))

    reply.problem(413, "payload-too-large")
    assert (await _delivery_states(hub, envelope["id"]))[LA] == "delivered"


async def test_double_ack_is_harmless_and_keeps_the_first_time(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    envelope = await _fetched(hub, http)
    acknowledged_at = hub.clock()
    first = await _ack(http, hub, envelope["id"], ack_document(hub, envelope, node=LA), LA)
    hub.clock.advance(120)
    second = await _ack(http, hub, envelope["id"], ack_document(hub, envelope, node=LA), LA)

    assert (first.status, second.status) == (200, 200)
    assert first.json()["state"] == "acknowledged"
    assert second.json() == first.json()
    async with hub.store.read() as view:
        delivery = await view.messages.delivery(envelope["id"], LA)
    assert delivery is not None
    assert delivery.state == "acknowledged"
    assert delivery.acknowledged_at is not None
    # SQLite hands back naive UTC datetimes.
    assert delivery.acknowledged_at.replace(tzinfo=UTC) == acknowledged_at


# -- inbox --------------------------------------------------------------------------------


async def _inbox(
    http: aiohttp.ClientSession, hub: HubFixture, node: str, query: str
) -> dict[str, Any]:
    reply = await send(http, hub, signed_request(hub, "GET", "/v1/inbox", node=node, query=query))
    doc: dict[str, Any] = reply.json()
    return doc


async def test_inbox_after_cursor_pages_through_deliveries(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    sent = [(await _sent(hub, http, recipients=[LA]))["id"] for _ in range(3)]

    everything = await _inbox(http, hub, LA, "after=0")
    assert [e["message_id"] for e in everything["entries"]] == sent
    cursors = [e["cursor"] for e in everything["entries"]]
    assert cursors == sorted(cursors)
    assert everything["next_after"] == cursors[-1]

    rest = await _inbox(http, hub, LA, f"after={cursors[0]}")
    assert [e["message_id"] for e in rest["entries"]] == sent[1:]

    one = await _inbox(http, hub, LA, f"after={cursors[0]}&limit=1")
    assert [e["message_id"] for e in one["entries"]] == [sent[1]]
    assert one["next_after"] == cursors[1]

    drained = await _inbox(http, hub, LA, f"after={cursors[-1]}")
    assert drained == {"entries": [], "next_after": cursors[-1]}
    # Nothing for the police, who were not a recipient.
    assert (await _inbox(http, hub, POLICE, "after=0"))["entries"] == []


async def test_inbox_long_poll_returns_when_a_message_arrives(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    # The bound is far below the 10 s wait but deliberately loose: the hub also re-polls
    # the store every second (for deliveries accepted by other processes), so this does
    # not tell an in-process wake-up from that re-poll; it proves the poll does not sit
    # out its wait once a message is there.
    poll = asyncio.create_task(_inbox(http, hub, LA, "after=0&wait=10"))
    # Bounded check that the poll is really waiting on an empty inbox.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(poll), 0.2)

    envelope = await _sent(hub, http, recipients=[LA])
    page = await asyncio.wait_for(poll, 5)
    assert [e["message_id"] for e in page["entries"]] == [envelope["id"]]


async def test_inbox_wait_with_nothing_arriving_returns_an_empty_page(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    page = await asyncio.wait_for(_inbox(http, hub, LA, "after=7&wait=0.1"), 5)
    assert page == {"entries": [], "next_after": 7}


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("after=x", "after"),
        ("after=-1", "after"),
        ("after=1.5", "after"),
        ("after=9223372036854775808", "after"),  # one past the largest SQL BIGINT
        ("after=99999999999999999999999", "after"),
        ("limit=ten", "limit"),
        ("limit=-5", "limit"),
        ("wait=-1", "wait"),
        ("wait=nan", "wait"),
        ("wait=soon", "wait"),
    ],
)
async def test_inbox_bad_query_values_are_400(
    hub: HubFixture, http: aiohttp.ClientSession, query: str, name: str
) -> None:
    request = signed_request(hub, "GET", "/v1/inbox", node=LA, query=query)
    reply = await send(http, hub, request)

    problem = reply.problem(400, "bad-request")
    assert repr(name) in problem["detail"]
