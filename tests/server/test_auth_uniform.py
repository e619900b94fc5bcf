"""Every authentication failure looks the same to the caller; only the log says why.

STYLE.md rule 6. All requests go to the same path, so the problem bodies must be equal
byte for byte: a caller cannot tell an unknown node from a suspended one, a bad signature
from a stale one, or a replay from a forgery.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest

from hub.crypto import NodeKeys
from hub.registry import set_node_status
from tests.conftest import INSECURE_TEST_NODE_KEYS, HubFixture
from tests.server.helpers import (
    HEALTH,
    POLICE,
    Reply,
    SignedRequest,
    assert_nothing_stored,
    assert_still_serves,
    envelope_body,
    send,
    signed_envelope,
    signed_request,
)

WINDOW = 300


@dataclass(frozen=True)
class Case:
    reason: str  # what the hub.auth log must say
    # Builds the request and may change the hub's state or clock before it is sent.
    forge: Callable[[HubFixture, bytes], Awaitable[SignedRequest]]


async def _unknown_keyid(hub: HubFixture, body: bytes) -> SignedRequest:
    return signed_request(hub, "POST", "/v1/messages", body=body, keyid="health.nowhere")


async def _suspended(hub: HubFixture, body: bytes) -> SignedRequest:
    await set_node_status(hub.store, HEALTH, "suspended", now=hub.clock())
    return signed_request(hub, "POST", "/v1/messages", body=body)


async def _revoked(hub: HubFixture, body: bytes) -> SignedRequest:
    await set_node_status(hub.store, HEALTH, "revoked", now=hub.clock())
    return signed_request(hub, "POST", "/v1/messages", body=body)


async def _signed_by_other_key(hub: HubFixture, body: bytes) -> SignedRequest:
    return signed_request(
        hub, "POST", "/v1/messages", body=body, keys=INSECURE_TEST_NODE_KEYS[POLICE]
    )


async def _signed_by_stranger_key(hub: HubFixture, body: bytes) -> SignedRequest:
    keys = NodeKeys.from_seed(b"insecure-wrong-key-0000000000000")
    return signed_request(hub, "POST", "/v1/messages", body=body, keys=keys)


async def _signed_for_other_path(hub: HubFixture, body: bytes) -> SignedRequest:
    request = signed_request(hub, "POST", "/v1/blobs", body=body)
    return SignedRequest("POST", "/v1/messages", "", body, request.headers)


async def _signed_with_other_query(hub: HubFixture, body: bytes) -> SignedRequest:
    request = signed_request(hub, "POST", "/v1/messages", body=body, query="x=1")
    return SignedRequest("POST", "/v1/messages", "", body, request.headers)


async def _signature_corrupted(hub: HubFixture, body: bytes) -> SignedRequest:
    request = signed_request(hub, "POST", "/v1/messages", body=body)
    value = request.headers["Signature"]
    flipped = value[:10] + ("A" if value[10] != "A" else "B") + value[11:]
    return request.with_headers(Signature=flipped)


async def _no_signature_headers(hub: HubFixture, body: bytes) -> SignedRequest:
    request = signed_request(hub, "POST", "/v1/messages", body=body)
    return request.with_headers(Signature=None, Signature_Input=None)


async def _no_signature(hub: HubFixture, body: bytes) -> SignedRequest:
    return signed_request(hub, "POST", "/v1/messages", body=body).with_headers(Signature=None)


async def _malformed_signature_input(hub: HubFixture, body: bytes) -> SignedRequest:
    request = signed_request(hub, "POST", "/v1/messages", body=body)
    return request.with_headers(Signature_Input="sig1=(not a list")


async def _too_old(hub: HubFixture, body: bytes) -> SignedRequest:
    request = signed_request(hub, "POST", "/v1/messages", body=body)
    hub.clock.advance(WINDOW + 1)
    return request


async def _in_the_future(hub: HubFixture, body: bytes) -> SignedRequest:
    request = signed_request(hub, "POST", "/v1/messages", body=body)
    hub.clock.advance(-(WINDOW + 1))
    return request


async def _digest_of_other_body(hub: HubFixture, body: bytes) -> SignedRequest:
    # Signed correctly, over a Content-Digest of different bytes than those sent.
    return signed_request(hub, "POST", "/v1/messages", body=body, digest_of=body + b" ")


async def _no_content_digest(hub: HubFixture, body: bytes) -> SignedRequest:
    request = signed_request(hub, "POST", "/v1/messages", body=body)
    return request.with_headers(Content_Digest=None)


CASES = {
    "unknown-keyid": Case("unknown keyid", _unknown_keyid),
    "suspended-node": Case("node is suspended", _suspended),
    "revoked-node": Case("node is revoked", _revoked),
    "signed-by-another-nodes-key": Case("bad signature", _signed_by_other_key),
    "signed-by-unenrolled-key": Case("bad signature", _signed_by_stranger_key),
    "signed-for-another-path": Case("bad signature", _signed_for_other_path),
    "signed-with-another-query": Case("bad signature", _signed_with_other_query),
    "signature-corrupted": Case("bad signature", _signature_corrupted),
    "no-signature-headers": Case("Signature-Input or Signature missing", _no_signature_headers),
    "no-signature-header": Case("Signature-Input or Signature missing", _no_signature),
    "malformed-signature-input": Case("malformed Signature-Input", _malformed_signature_input),
    "created-too-old": Case("created is too old", _too_old),
    "created-in-the-future": Case("created is in the future", _in_the_future),
    "content-digest-of-other-body": Case(
        "content-digest does not match body", _digest_of_other_body
    ),
    "no-content-digest": Case("covered field 'content-digest' absent", _no_content_digest),
}


async def _reference_401(http: aiohttp.ClientSession, hub: HubFixture) -> Reply:
    """The answer to a request with no authentication at all, to compare the others with."""
    reply = await send(http, hub, SignedRequest("POST", "/v1/messages", "", b"{}", {}))
    reply.problem(401, "unauthenticated")
    return reply


def _auth_reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "hub.auth" and r.levelno == logging.WARNING
    ]


@pytest.mark.parametrize("case", sorted(CASES))
async def test_authentication_failures_are_indistinguishable(
    hub: HubFixture,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    reference = await _reference_401(http, hub)
    envelope = signed_envelope(hub)
    request = await CASES[case].forge(hub, envelope_body(envelope))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hub.auth"):
        reply = await send(http, hub, request)

    problem = reply.problem(401, "unauthenticated")
    assert reply.body == reference.body
    assert problem["title"] == "The request could not be authenticated"
    reasons = _auth_reasons(caplog)
    assert len(reasons) == 1, reasons
    assert CASES[case].reason in reasons[0]
    assert CASES[case].reason not in reply.body.decode()
    await assert_nothing_stored(hub, envelope["id"])
    # Another node, properly signed, is served as usual.
    await assert_still_serves(http, hub, sender=POLICE)


async def test_replayed_request_is_refused_the_same_way(
    hub: HubFixture, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    reference = await _reference_401(http, hub)
    envelope = signed_envelope(hub)
    request = signed_request(hub, "POST", "/v1/messages", body=envelope_body(envelope))

    first = await send(http, hub, request)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hub.auth"):
        replay = await send(http, hub, request)

    assert first.status == 201
    replay.problem(401, "unauthenticated")
    assert replay.body == reference.body
    reasons = _auth_reasons(caplog)
    assert len(reasons) == 1
    assert "replayed nonce" in reasons[0]
    assert "replayed" not in replay.body.decode()


async def test_a_nonce_cannot_be_reused_on_another_request(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    inbox = signed_request(hub, "GET", "/v1/inbox", nonce="same-nonce-0001")
    assert (await send(http, hub, inbox)).status == 200
    envelope = signed_envelope(hub)
    submit = signed_request(
        hub, "POST", "/v1/messages", body=envelope_body(envelope), nonce="same-nonce-0001"
    )
    (await send(http, hub, submit)).problem(401, "unauthenticated")
    await assert_nothing_stored(hub, envelope["id"])
    # Nonces are per node: another node may happen to choose the same one.
    other = signed_request(hub, "GET", "/v1/inbox", node=POLICE, nonce="same-nonce-0001")
    assert (await send(http, hub, other)).status == 200


@pytest.mark.parametrize("offset", [-WINDOW, WINDOW])
async def test_created_at_the_edge_of_the_window_is_accepted(
    hub: HubFixture, http: aiohttp.ClientSession, offset: int
) -> None:
    request = signed_request(hub, "GET", "/v1/inbox")
    hub.clock.advance(offset)
    assert (await send(http, hub, request)).status == 200


async def test_unauthenticated_get_looks_like_any_other_401(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    unknown = await send(http, hub, signed_request(hub, "GET", "/v1/inbox", keyid="health.nowhere"))
    stale = signed_request(hub, "GET", "/v1/inbox")
    hub.clock.advance(WINDOW + 1)
    too_old = await send(http, hub, stale)
    hub.clock.advance(-(WINDOW + 1))
    # A GET carries no body: the digest of any bytes but the empty body does not match.
    digest = await send(http, hub, signed_request(hub, "GET", "/v1/inbox", digest_of=b"x"))

    unknown.problem(401, "unauthenticated")
    assert unknown.body == too_old.body == digest.body


async def test_the_hub_serves_the_node_again_once_reinstated(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    await set_node_status(hub.store, HEALTH, "suspended", now=hub.clock())
    envelope = signed_envelope(hub)
    refused = await send(
        http, hub, signed_request(hub, "POST", "/v1/messages", body=envelope_body(envelope))
    )
    refused.problem(401, "unauthenticated")
    await set_node_status(hub.store, HEALTH, "active", now=hub.clock())
    await assert_still_serves(http, hub)
