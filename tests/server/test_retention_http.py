"""Blob quotas, expiry of unfinished uploads and the purge of ciphertext, over HTTP.

Everything here runs through the real hub: signed requests, the real repositories on
SQLite, the registry's ``retention.yaml`` and the sweep ``hub serve`` runs
(``app[RETENTION].sweep()``, the same call as ``hub admin purge``). deploy/retention.md
describes the behaviour these tests pin.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from hub.audit.verify import verify_log
from hub.client import HubProblem, NodeClient, PayloadSource, ReceivedMessage
from hub.config import HubConfig
from hub.model import Marking
from hub.server.blobs import new_upload_id
from hub.server.openapi import openapi_document
from hub.server.retention import PurgeReport
from hub.server.state import RETENTION
from hub.store import SqlStore
from hub.store.tables import blob_chunks, blobs
from tests.conftest import INSECURE_TEST_HUB_KEYS, HubFixture, referral_fields, running_hub
from tests.server.helpers import (
    HEALTH,
    LA,
    POLICE,
    STRANGER,
    Reply,
    ack_document,
    envelope_body,
    send,
    sha256_hex,
    signed_envelope,
    signed_request,
    submit,
)
from tests.workflows.helpers import MH_ITEM, decision_doc, request_doc
from tests.workflows.helpers import send as send_doc

CHUNK = 100
QUOTA = 1000
HOUR = 3600.0
DAY = 24 * HOUR


def _blob(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
async def quota_hub(make_config: Callable[..., HubConfig]) -> AsyncIterator[HubFixture]:
    config = make_config(
        blob_chunk_bytes=CHUNK,
        blob_quota_bytes=QUOTA,
        max_pending_uploads=2,
        blob_upload_expiry_seconds=HOUR,
    )
    async with running_hub(config) as fixture:
        yield fixture


async def _announce(
    http: aiohttp.ClientSession, hub: HubFixture, data: bytes, *, node: str = HEALTH
) -> Reply:
    body = json.dumps({"sha256": sha256_hex(data), "size": len(data)}).encode()
    return await send(http, hub, signed_request(hub, "POST", "/v1/blobs", node=node, body=body))


async def _put(
    http: aiohttp.ClientSession,
    hub: HubFixture,
    upload_id: str,
    index: int,
    data: bytes,
    *,
    node: str = HEALTH,
) -> Reply:
    chunk = data[index * CHUNK : (index + 1) * CHUNK]
    request = signed_request(
        hub,
        "PUT",
        f"/v1/blobs/{upload_id}/{index}",
        node=node,
        body=chunk,
        content_type="application/octet-stream",
    )
    return await send(http, hub, request)


async def _upload(
    http: aiohttp.ClientSession, hub: HubFixture, data: bytes, *, node: str = HEALTH
) -> str:
    """Announce and send every chunk; the upload id of the completed blob."""
    reply = await _announce(http, hub, data, node=node)
    assert reply.status == 201, reply.body[:300]
    upload = reply.json()
    for index in range(upload["chunk_count"]):
        state = (await _put(http, hub, upload["upload_id"], index, data, node=node)).json()
    assert state["complete"] is True
    return str(upload["upload_id"])


async def _rows(hub: HubFixture, table: Any) -> list[tuple[Any, ...]]:
    # Tests reach under the repositories on purpose: what is left in the tables.
    async with hub.store._engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(select(table).order_by(*table.primary_key))]


def _files(hub: HubFixture) -> list[str]:
    root = hub.config.blob_dir
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def _sweep(hub: HubFixture, *, dry_run: bool = False) -> PurgeReport:
    return await hub.server.app[RETENTION].sweep(dry_run=dry_run)


def _lines(report: PurgeReport) -> set[tuple[str, str | None, str, int, int]]:
    return {(ln.what, ln.kind, ln.reason, ln.count, ln.bytes) for ln in report.lines}


async def _verify_audit(store: SqlStore) -> None:
    async with store.read() as view:
        size, _ = await view.audit.state_for_update()
        rows = await view.audit.rows(0, size)
        heads = await view.audit.heads()
    result = verify_log(
        rows, heads, state_size=size, hub_signing_key=INSECURE_TEST_HUB_KEYS.public.signing
    )
    assert result.ok, result.problem


async def _audit_entries(hub: HubFixture) -> list[dict[str, Any]]:
    async with hub.store.read() as view:
        size, _ = await view.audit.state_for_update()
        rows = await view.audit.rows(0, size)
    return [json.loads(r.entry_json) for r in rows]


# -- quotas -------------------------------------------------------------------------------


async def test_an_announcement_past_the_byte_quota_is_refused_and_writes_nothing(
    quota_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = quota_hub
    assert (await _announce(http, hub, _blob(600))).status == 201
    rows, chunks, files = await _rows(hub, blobs), await _rows(hub, blob_chunks), _files(hub)

    reply = await _announce(http, hub, _blob(401, seed=2))
    problem = reply.problem(422, "blob-quota-exceeded")
    assert reply.rules() == [("BLOB-01", "$.size")]
    assert "nothing was stored" in problem["detail"]
    message = problem["violations"][0]["message"]
    assert "600 bytes" in message
    assert "401 more" in message
    assert f"{QUOTA} bytes" in message
    # Nothing of the refused upload: no row, no chunk, no part-file.
    assert await _rows(hub, blobs) == rows
    assert await _rows(hub, blob_chunks) == chunks
    assert _files(hub) == files

    # Up to the quota exactly is allowed.
    assert (await _announce(http, hub, _blob(400, seed=3))).status == 201


async def test_stored_blobs_count_against_the_quota(
    quota_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = quota_hub
    await _upload(http, hub, _blob(350))
    refused = await _announce(http, hub, _blob(651, seed=2))
    assert refused.rules() == [("BLOB-01", "$.size")]
    assert "350 bytes" in refused.problem(422, "blob-quota-exceeded")["violations"][0]["message"]
    # Announcing the stored blob again costs nothing: it is the same blob.
    again = await _announce(http, hub, _blob(350))
    assert again.status == 200
    assert again.json()["complete"] is True


async def test_a_node_has_at_most_max_pending_uploads_unfinished(
    quota_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = quota_hub
    first = (await _announce(http, hub, _blob(150, seed=1))).json()
    assert (await _announce(http, hub, _blob(150, seed=2))).status == 201
    rows = await _rows(hub, blobs)

    third = await _announce(http, hub, _blob(150, seed=3))
    third.problem(422, "blob-quota-exceeded")
    assert third.rules() == [("BLOB-02", "$")]
    assert await _rows(hub, blobs) == rows

    # Another node has its own quota.
    assert (await _announce(http, hub, _blob(150, seed=3), node=POLICE)).status == 201
    # Finishing one makes room.
    data = _blob(150, seed=1)
    for index in range(first["chunk_count"]):
        await _put(http, hub, first["upload_id"], index, data)
    assert (await _announce(http, hub, _blob(150, seed=3))).status == 201


async def test_both_limits_are_named_when_both_are_broken(
    quota_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = quota_hub
    await _announce(http, hub, _blob(500, seed=1))
    await _announce(http, hub, _blob(400, seed=2))
    reply = await _announce(http, hub, _blob(200, seed=3))
    reply.problem(422, "blob-quota-exceeded")
    assert sorted(reply.rules()) == [("BLOB-01", "$.size"), ("BLOB-02", "$")]


async def test_expired_uploads_no_longer_count_against_the_quota(
    quota_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = quota_hub
    await _announce(http, hub, _blob(500, seed=1))
    await _announce(http, hub, _blob(400, seed=2))
    assert (await _announce(http, hub, _blob(100, seed=3))).status == 422
    hub.clock.advance(HOUR)
    # Expired, though the sweep has not deleted them yet.
    assert (await _announce(http, hub, _blob(1000, seed=3))).status == 201


# -- expiry -------------------------------------------------------------------------------


async def test_a_chunk_after_expiry_is_410_and_the_sweep_deletes_the_upload(
    quota_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = quota_hub
    data = _blob(350)
    upload_id = (await _announce(http, hub, data)).json()["upload_id"]
    for index in (0, 1):
        assert (await _put(http, hub, upload_id, index, data)).status == 200
    hub.clock.advance(HOUR - 1)
    kept = _blob(120, seed=9)
    kept_id = (await _announce(http, hub, kept)).json()["upload_id"]
    assert (await _put(http, hub, kept_id, 0, kept)).status == 200
    hub.clock.advance(1)

    late = await _put(http, hub, upload_id, 2, data)
    problem = late.problem(410, "upload-expired")
    assert late.rules() == [("BLOB-03", "$")]
    assert "expired at" in problem["detail"]
    assert "Announce the blob again" in problem["detail"]
    # Refused, not recorded; the sweep has not run yet, so the rows and file are there.
    assert {r[1] for r in await _rows(hub, blob_chunks) if r[0] == upload_id} == {0, 1}
    assert f"uploads/{upload_id}.part" in _files(hub)

    report = await _sweep(hub)
    assert _lines(report) == {("upload", None, "UPLOAD_EXPIRED", 1, 350)}
    assert report.log_entries == 0
    assert [r[0] for r in await _rows(hub, blobs)] == [kept_id]
    assert {r[0] for r in await _rows(hub, blob_chunks)} == {kept_id}
    assert _files(hub) == [f"uploads/{kept_id}.part"]

    # After the sweep the answer is the same 410, from the upload id's own time.
    again = await _put(http, hub, upload_id, 2, data)
    assert again.problem(410, "upload-expired")["detail"] == problem["detail"]
    # The upload that had time left carries on and completes.
    assert (await _put(http, hub, kept_id, 1, kept)).json()["complete"] is True


async def test_an_expired_upload_id_is_410_to_every_node_whether_or_not_it_exists(
    quota_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = quota_hub
    data = _blob(250)
    upload_id = (await _announce(http, hub, data)).json()["upload_id"]
    never = new_upload_id(hub.clock())
    hub.clock.advance(HOUR)

    answers = [
        await _put(http, hub, upload_id, 0, data),  # its owner
        await _put(http, hub, upload_id, 0, data, node=POLICE),  # another node
        await _put(http, hub, never, 0, data, node=POLICE),  # an id never given out
    ]
    bodies = []
    for reply in answers:
        problem = reply.problem(410, "upload-expired")
        bodies.append({k: v for k, v in problem.items() if k != "instance"})
    assert bodies[0] == bodies[1] == bodies[2]


async def test_hub_serve_runs_the_sweep_in_the_background(
    make_config: Callable[..., HubConfig], http: aiohttp.ClientSession
) -> None:
    config = make_config(
        blob_chunk_bytes=CHUNK, blob_upload_expiry_seconds=HOUR, retention_sweep_seconds=0.05
    )
    async with running_hub(config) as hub:
        upload_id = (await _announce(http, hub, _blob(250))).json()["upload_id"]
        part = hub.config.blob_dir / "uploads" / f"{upload_id}.part"
        await asyncio.sleep(0.3)
        assert part.exists()  # swept several times, not yet expired
        hub.clock.advance(HOUR)
        for _ in range(100):
            if not part.exists():
                break
            await asyncio.sleep(0.05)
        assert not part.exists()
        assert await _rows(hub, blobs) == []


# -- purge --------------------------------------------------------------------------------


async def _referral(nodes: dict[str, NodeClient], **changes: Any) -> ReceivedMessage:
    """Health's referral to the local authority and the police, as the police fetch it."""
    receipt = await nodes[HEALTH].send(
        referral_fields(purpose="ADULT_SAFEGUARDING_S42", **changes),
        PayloadSource.json({"synthetic": "referral"}),
    )
    return await nodes[POLICE].fetch(receipt.message_id)


async def _get(
    http: aiohttp.ClientSession, hub: HubFixture, path: str, *, node: str = HEALTH
) -> Reply:
    return await send(http, hub, signed_request(hub, "GET", path, node=node))


async def test_a_payload_is_purged_once_every_recipient_has_acknowledged_it(
    hub: HubFixture, nodes: dict[str, NodeClient], http: aiohttp.ClientSession
) -> None:
    message = await _referral(nodes)
    message_id = message.envelope.id
    original = copy.deepcopy(message.envelope_document)
    await nodes[POLICE].acknowledge(message)

    # One of two recipients has acknowledged: nothing is due.
    report = await _sweep(hub)
    assert report.lines == ()
    assert report.log_entries == 0
    async with hub.store.read() as view:
        held = await view.messages.get(message_id)
    assert held is not None
    assert held.payload_purged_at is None
    assert "inline" in json.loads(held.envelope_json)["payload"]

    await nodes[LA].acknowledge(await nodes[LA].fetch(message_id))
    size = message.envelope.payload.size
    report = await _sweep(hub)
    assert _lines(report) == {("payload", "referral", "ACKNOWLEDGED", 1, size)}
    assert report.log_entries == 1

    async with hub.store.read() as view:
        purged = await view.messages.get(message_id)
    assert purged is not None
    assert purged.payload_purged_at == hub.clock()
    assert purged.purge_reason == "ACKNOWLEDGED"
    # The envelope's metadata stays exactly; only the ciphertext has gone.
    kept = json.loads(purged.envelope_json)
    original["payload"] = {k: v for k, v in original["payload"].items() if k != "inline"}
    assert kept == original
    assert purged.envelope_sha256 == held.envelope_sha256
    assert purged.receipt_json == held.receipt_json

    # Sender and recipients are told when and why; a stranger sees what a missing id gets.
    for node in (HEALTH, POLICE, LA):
        reply = await _get(http, hub, f"/v1/messages/{message_id}", node=node)
        detail = reply.problem(410, "purged")["detail"]
        assert "every recipient had acknowledged it (ACKNOWLEDGED)" in detail
        assert hub.clock().isoformat().replace("+00:00", "Z") in detail
    stranger = await _get(http, hub, f"/v1/messages/{message_id}", node=STRANGER)
    stranger.problem(404, "not-found")
    # Tracking still works for the sender.
    status = (await _get(http, hub, f"/v1/messages/{message_id}/status")).json()
    assert [r["state"] for r in status["recipients"]] == ["acknowledged", "acknowledged"]

    # The log says so, once, and still verifies.
    # Every field with content (the entry's empty lists are left out here).
    purges = [
        {k: v for k, v in e.items() if v != []}
        for e in await _audit_entries(hub)
        if e["action"] == "purged"
    ]
    assert purges == [
        {
            "at": purges[0]["at"],
            "action": "purged",
            "actor": HEALTH,
            "kind": "referral",
            "message_id": message_id,
            "envelope_sha256": purged.envelope_sha256,
            "recipients": [LA, POLICE],
            "subject_ref": "subj-000123",
            "outcome": "ACKNOWLEDGED",
        }
    ]
    await _verify_audit(hub.store)
    assert (await _sweep(hub)).lines == ()


async def test_a_rejected_payload_stays_until_its_kinds_retention_period_ends(
    hub: HubFixture, nodes: dict[str, NodeClient], http: aiohttp.ClientSession
) -> None:
    message = await _referral(nodes)
    await nodes[POLICE].reject(message, ["MAN-04"], ["synthetic test rejection"])
    await nodes[LA].acknowledge(await nodes[LA].fetch(message.envelope.id))
    assert (await _sweep(hub)).lines == ()

    # retention.yaml: a referral's ciphertext is kept 365 days at most.
    hub.clock.advance(365 * DAY - 1)
    assert (await _sweep(hub)).lines == ()
    hub.clock.advance(2)
    report = await _sweep(hub)
    size = message.envelope.payload.size
    assert _lines(report) == {("payload", "referral", "RETENTION_PERIOD", 1, size)}
    reply = await _get(http, hub, f"/v1/messages/{message.envelope.id}", node=LA)
    assert "retention period for its kind" in reply.problem(410, "purged")["detail"]
    await _verify_audit(hub.store)


async def test_an_unanswered_payload_is_purged_when_its_period_ends(
    hub: HubFixture, nodes: dict[str, NodeClient], http: aiohttp.ClientSession
) -> None:
    message = await _referral(nodes)
    hub.clock.advance(366 * DAY)
    await _sweep(hub)
    # Never fetched by the local authority: it learns the payload is gone, and why.
    reply = await _get(http, hub, f"/v1/messages/{message.envelope.id}", node=LA)
    reply.problem(410, "purged")
    async with hub.store.read() as view:
        delivery = await view.messages.delivery(message.envelope.id, LA)
    assert delivery is not None
    assert delivery.state == "pending"  # nothing was delivered


async def test_a_blob_payload_and_its_file_go_once_every_recipient_has_acknowledged(
    quota_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = quota_hub
    data = _blob(350)
    sha = sha256_hex(data)
    await _upload(http, hub, data)
    envelope = signed_envelope(hub, recipients=[LA, POLICE], blob=(sha, len(data)))
    assert (await submit(http, hub, envelope)).status == 201
    assert (await _announce(http, hub, _blob(651, seed=2))).status == 422  # 350 stored
    for node in (LA, POLICE):
        ack = ack_document(hub, envelope, node=node)
        path = f"/v1/messages/{envelope['id']}/ack"
        reply = await send(
            http,
            hub,
            signed_request(hub, "POST", path, node=node, body=envelope_body(ack)),
        )
        assert reply.status == 200, reply.body[:300]
    assert (await _get(http, hub, f"/v1/blobs/{sha}", node=LA)).body == data

    report = await _sweep(hub)
    assert _lines(report) == {
        ("payload", "referral", "ACKNOWLEDGED", 1, 350),
        ("blob", "referral", "ACKNOWLEDGED", 1, 350),
    }
    assert f"complete/{sha}" not in _files(hub)
    (row,) = await _rows(hub, blobs)
    assert row[6] == "purged"  # state
    assert await _rows(hub, blob_chunks) == []  # gone with the file (metrics count them)
    # Readers are told; a stranger gets what any unknown hash gets.
    for node in (HEALTH, LA, POLICE):
        reply = await _get(http, hub, f"/v1/blobs/{sha}", node=node)
        assert "this blob" in reply.problem(410, "purged")["detail"]
    stranger = await _get(http, hub, f"/v1/blobs/{sha}", node=STRANGER)
    unknown = await _get(http, hub, f"/v1/blobs/{'0' * 64}", node=STRANGER)
    assert (
        stranger.problem(404, "not-found")["detail"] == unknown.problem(404, "not-found")["detail"]
    )
    # The quota is free again.
    assert (await _announce(http, hub, _blob(1000, seed=2))).status == 201
    await _verify_audit(hub.store)


async def test_a_reply_to_a_purged_message_is_checked_against_its_kept_metadata(
    hub: HubFixture, nodes: dict[str, NodeClient]
) -> None:
    """The hub still reads a purged envelope's metadata for the rules of a reply: MK-12
    refuses a reply marked below the message it answers, purged or not."""
    message = await _referral(nodes)
    await nodes[POLICE].acknowledge(message)
    await nodes[LA].acknowledge(await nodes[LA].fetch(message.envelope.id))
    assert (await _sweep(hub)).log_entries == 1

    note = referral_fields(
        kind="note",
        purpose="ADULT_SAFEGUARDING_S42",
        recipients=(HEALTH,),
        in_reply_to=message.envelope.id,
        legal_basis=None,
        consent=None,
    )
    lowered = referral_fields(
        kind="note",
        purpose="ADULT_SAFEGUARDING_S42",
        recipients=(HEALTH,),
        in_reply_to=message.envelope.id,
        legal_basis=None,
        consent=None,
        marking=Marking(tier="OFFICIAL"),
    )
    with pytest.raises(HubProblem) as refused:
        await nodes[POLICE].send(lowered, PayloadSource.json({"n": 1}), preflight=False)
    assert "MK-12" in {v.rule for v in refused.value.problem.violations}
    # Marked as the referral was, the reply is accepted: its pre-flight reads the answered
    # message as gone (410) and the hub, which kept the metadata, agrees.
    receipt = await nodes[POLICE].send(note, PayloadSource.json({"n": 2}))
    assert receipt.message_id


async def test_requests_and_decisions_stay_after_acknowledgement_until_their_period_ends(
    hub: HubFixture, nodes: dict[str, NodeClient]
) -> None:
    """retention.yaml keeps these two for their period: the decider's pre-flight reads the
    request back from the hub (DEC-05), and a release is built from the decision."""
    police, health = nodes[POLICE], nodes[HEALTH]
    request = await send_doc(police, request_doc())
    await health.acknowledge(await health.fetch(request.message_id))
    assert (await _sweep(hub)).lines == ()

    decision = await send_doc(
        health, decision_doc(request.message_id, "APPROVED_PARTIAL", [MH_ITEM])
    )
    await police.acknowledge(await police.fetch(decision.message_id))
    assert (await _sweep(hub)).lines == ()
    # The release builder's reads still work.
    assert (await health.fetch(decision.message_id)).envelope.in_reply_to == request.message_id
    assert (await health.fetch(request.message_id)).envelope.kind == "information_request"

    hub.clock.advance(730 * DAY + 1)
    report = await _sweep(hub)
    assert {(ln.what, ln.kind, ln.reason, ln.count) for ln in report.lines} == {
        ("payload", "information_request", "RETENTION_PERIOD", 1),
        ("payload", "decision", "RETENTION_PERIOD", 1),
    }
    await _verify_audit(hub.store)


def test_the_openapi_document_names_the_retention_answers() -> None:
    paths = openapi_document()["paths"]
    gone = [
        paths["/v1/messages/{message_id}"]["get"]["responses"]["410"]["description"],
        paths["/v1/blobs/{sha256}"]["get"]["responses"]["410"]["description"],
        paths["/v1/blobs/{upload_id}/{chunk}"]["put"]["responses"]["410"]["description"],
    ]
    for description in gone:
        assert "`purged`" in description
        assert "`upload-expired`" in description
    announce = paths["/v1/blobs"]["post"]
    assert "422" in announce["responses"]
    assert "blob-quota-exceeded" in announce["summary"]
