"""Chunked, resumable blob upload and ranged download over HTTP, on a hub with 100-byte chunks.

A chunk counts only once it is complete and its Content-Digest matches; a bad chunk leaves
the upload as it was, and a finished upload whose bytes do not hash to what was announced
is thrown away.
"""

from __future__ import annotations

import json
import random
from typing import Any

import aiohttp
import pytest

from hub.config import Limits
from hub.server.blobs import new_upload_id
from tests.conftest import HubFixture
from tests.server.conftest import SMALL_CHUNK
from tests.server.helpers import (
    HEALTH,
    LA,
    POLICE,
    STRANGER,
    Reply,
    SignedRequest,
    send,
    sha256_hex,
    signed_envelope,
    signed_request,
    submit,
)

# 3.5 chunks: three of 100 bytes and a last one of 50. Fixed seed: the same bytes each run.
BLOB = random.Random(20240401).randbytes(3 * SMALL_CHUNK + 50)
BLOB_SHA = sha256_hex(BLOB)


def _chunk(index: int, data: bytes = BLOB) -> bytes:
    return data[index * SMALL_CHUNK : (index + 1) * SMALL_CHUNK]


async def _announce(
    http: aiohttp.ClientSession,
    hub: HubFixture,
    *,
    sha256: str = BLOB_SHA,
    size: int = len(BLOB),
    node: str = HEALTH,
) -> Reply:
    body = json.dumps({"sha256": sha256, "size": size}).encode()
    return await send(http, hub, signed_request(hub, "POST", "/v1/blobs", node=node, body=body))


async def _started(hub: HubFixture, http: aiohttp.ClientSession, **options: Any) -> dict[str, Any]:
    reply = await _announce(http, hub, **options)
    assert reply.status == 201, reply.body[:300]
    upload: dict[str, Any] = reply.json()
    return upload


def _chunk_request(
    hub: HubFixture,
    upload_id: str,
    index: int | str,
    data: bytes,
    *,
    node: str = HEALTH,
    digest_of: bytes | None = None,
) -> SignedRequest:
    return signed_request(
        hub,
        "PUT",
        f"/v1/blobs/{upload_id}/{index}",
        node=node,
        body=data,
        digest_of=digest_of,
        content_type="application/octet-stream",
    )


async def _put(
    http: aiohttp.ClientSession,
    hub: HubFixture,
    upload_id: str,
    index: int | str,
    data: bytes,
    *,
    chunked: bool = False,
    **options: Any,
) -> Reply:
    request = _chunk_request(hub, upload_id, index, data, **options)
    return await send(http, hub, request, chunked=chunked)


async def _recorded(hub: HubFixture, upload_id: str) -> frozenset[int] | None:
    async with hub.store.read() as view:
        blob = await view.blobs.get(upload_id)
    return None if blob is None else blob.received_chunks


def _part_file(hub: HubFixture, upload_id: str) -> Any:
    return hub.config.blob_dir / "uploads" / f"{upload_id}.part"


async def _uploaded(hub: HubFixture, http: aiohttp.ClientSession) -> dict[str, Any]:
    upload = await _started(hub, http)
    state: dict[str, Any] = {}
    for index in range(upload["chunk_count"]):
        reply = await _put(http, hub, upload["upload_id"], index, _chunk(index))
        state = reply.json()
    assert state["complete"] is True
    return state


# -- upload -------------------------------------------------------------------------------


async def test_chunks_out_of_order_with_a_repeat_complete_the_blob(
    small_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = small_hub
    upload = await _started(hub, http)
    assert (upload["chunk_size"], upload["chunk_count"], upload["received_chunks"]) == (
        SMALL_CHUNK,
        4,
        [],
    )
    upload_id = upload["upload_id"]

    states = []
    for index in (3, 1, 1, 0):
        reply = await _put(http, hub, upload_id, index, _chunk(index))
        states.append(reply.json())
    assert [s["received_chunks"] for s in states] == [[3], [1, 3], [1, 3], [0, 1, 3]]
    assert not any(s["complete"] for s in states)

    done = (await _put(http, hub, upload_id, 2, _chunk(2))).json()
    assert done["complete"] is True
    assert done["received_chunks"] == [0, 1, 2, 3]
    assert (hub.config.blob_dir / "complete" / BLOB_SHA).read_bytes() == BLOB
    assert not _part_file(hub, upload_id).exists()

    # Announcing the same ciphertext again finds the finished blob.
    again = await _announce(http, hub)
    assert again.status == 200
    assert again.json()["complete"] is True


@pytest.mark.parametrize(
    ("body", "chunked", "status", "slug"),
    [
        (_chunk(0) + b"x", False, 413, "payload-too-large"),  # honest Content-Length
        (_chunk(0) + b"x" * 5000, True, 413, "payload-too-large"),  # no Content-Length
        (_chunk(0)[:-1], False, 400, "bad-request"),
        (_chunk(0)[:-1], True, 400, "bad-request"),
        (b"", False, 400, "bad-request"),
    ],
    ids=["long", "long-chunked", "short", "short-chunked", "empty"],
)
async def test_chunk_of_the_wrong_length_is_refused_and_not_recorded(
    small_hub: HubFixture,
    http: aiohttp.ClientSession,
    body: bytes,
    chunked: bool,
    status: int,
    slug: str,
) -> None:
    hub = small_hub
    upload_id = (await _started(hub, http))["upload_id"]
    reply = await _put(http, hub, upload_id, 0, body, chunked=chunked)

    problem = reply.problem(status, slug)
    assert str(SMALL_CHUNK) in problem["detail"]
    assert await _recorded(hub, upload_id) == frozenset()


async def test_last_chunk_has_its_own_length(
    small_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = small_hub
    upload_id = (await _started(hub, http))["upload_id"]
    reply = await _put(http, hub, upload_id, 3, BLOB[300:] + b"\x00" * 50)
    reply.problem(413, "payload-too-large")
    assert await _recorded(hub, upload_id) == frozenset()


async def test_chunk_not_matching_its_content_digest_is_401_and_not_recorded(
    small_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = small_hub
    upload_id = (await _started(hub, http))["upload_id"]
    corrupted = bytes([_chunk(1)[0] ^ 0xFF]) + _chunk(1)[1:]
    # Signed over the digest of the real chunk; the bytes were damaged on the way.
    reply = await _put(http, hub, upload_id, 1, corrupted, digest_of=_chunk(1))
    anonymous = await send(
        http, hub, SignedRequest("PUT", f"/v1/blobs/{upload_id}/1", "", _chunk(1), {})
    )

    reply.problem(401, "unauthenticated")
    assert reply.body == anonymous.body
    assert await _recorded(hub, upload_id) == frozenset()

    # The upload carries on: the real chunk and the others complete it intact.
    for index in range(4):
        state = (await _put(http, hub, upload_id, index, _chunk(index))).json()
    assert state["complete"] is True
    assert (hub.config.blob_dir / "complete" / BLOB_SHA).read_bytes() == BLOB


async def test_a_damaged_resend_of_a_recorded_chunk_does_not_spoil_the_upload(
    small_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    # A client that resends a chunk it already sent (it never saw the answer), and the
    # resend is damaged in transit: the chunk the hub already holds must stay good.
    hub = small_hub
    upload_id = (await _started(hub, http))["upload_id"]
    for index in (0, 1, 2):
        assert (await _put(http, hub, upload_id, index, _chunk(index))).status == 200
    damaged = b"\x00" * SMALL_CHUNK
    resend = await _put(http, hub, upload_id, 1, damaged, digest_of=_chunk(1))
    resend.problem(401, "unauthenticated")
    short = await _put(http, hub, upload_id, 2, _chunk(2)[:10])
    short.problem(400, "bad-request")
    assert await _recorded(hub, upload_id) == frozenset({0, 1, 2})

    last = await _put(http, hub, upload_id, 3, _chunk(3))
    assert last.status == 200, last.body[:300]
    assert last.json()["complete"] is True
    assert (hub.config.blob_dir / "complete" / BLOB_SHA).read_bytes() == BLOB


@pytest.mark.parametrize("index", ["4", "-1", "99999999999999999999"])
async def test_chunk_index_out_of_range_is_400(
    small_hub: HubFixture, http: aiohttp.ClientSession, index: str
) -> None:
    hub = small_hub
    upload_id = (await _started(hub, http))["upload_id"]
    reply = await _put(http, hub, upload_id, index, _chunk(0))

    assert "out of range" in reply.problem(400, "bad-request")["detail"]
    assert await _recorded(hub, upload_id) == frozenset()


async def test_chunk_index_that_is_not_a_number_is_400(
    small_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = small_hub
    upload_id = (await _started(hub, http))["upload_id"]
    reply = await _put(http, hub, upload_id, "first", _chunk(0))
    reply.problem(400, "bad-request")
    assert await _recorded(hub, upload_id) == frozenset()


async def test_another_nodes_upload_is_not_found(
    small_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = small_hub
    upload_id = (await _started(hub, http))["upload_id"]
    theirs = await _put(http, hub, upload_id, 0, _chunk(0), node=POLICE)
    # An id the hub could have given out just now (an upload id begins with its time).
    nobodys = await _put(http, hub, new_upload_id(hub.clock()), 0, _chunk(0), node=POLICE)

    problem = theirs.problem(404, "not-found")
    other = nobodys.problem(404, "not-found")
    assert {**problem, "instance": None} == {**other, "instance": None}
    assert await _recorded(hub, upload_id) == frozenset()


async def test_bytes_not_matching_the_announced_hash_discard_the_upload(
    small_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = small_hub
    upload_id = (await _started(hub, http))["upload_id"]
    other = bytes(b ^ 0x5A for b in BLOB)
    for index in range(3):
        assert (await _put(http, hub, upload_id, index, _chunk(index, other))).status == 200
    assert _part_file(hub, upload_id).exists()

    reply = await _put(http, hub, upload_id, 3, _chunk(3, other))

    problem = reply.problem(422, "blob-hash-mismatch")
    assert problem["title"] == "The upload was discarded"
    assert "discarded" in problem["detail"]
    assert not _part_file(hub, upload_id).exists()
    assert not (hub.config.blob_dir / "complete" / BLOB_SHA).exists()
    assert await _recorded(hub, upload_id) is None
    async with hub.store.read() as view:
        assert await view.blobs.complete_by_sha256(BLOB_SHA) is None
    # The upload is gone: further chunks find nothing, and a message cannot use it.
    (await _put(http, hub, upload_id, 0, _chunk(0))).problem(404, "not-found")
    envelope = signed_envelope(hub, blob=(BLOB_SHA, len(BLOB)))
    refused = await submit(http, hub, envelope)
    assert refused.rules() == [("PAYLOAD-02", "$.payload.sha256")]


# -- announcements ------------------------------------------------------------------------


async def test_announcement_problems(small_hub: HubFixture, http: aiohttp.ClientSession) -> None:
    hub = small_hub

    async def announce_raw(body: bytes) -> Reply:
        return await send(http, hub, signed_request(hub, "POST", "/v1/blobs", body=body))

    (await announce_raw(b'{"sha256": ')).problem(400, "bad-request")
    (await announce_raw(b"[]")).problem(400, "bad-request")
    (await announce_raw(b"[" * 5_000)).problem(400, "bad-request")
    unknown = await announce_raw(json.dumps({"sha256": BLOB_SHA, "size": 1, "x": 1}).encode())
    unknown.problem(422, "invalid-blob-announcement")
    assert unknown.rules() == [("SCHEMA", "$.x")]
    zero = await announce_raw(json.dumps({"sha256": BLOB_SHA, "size": 0}).encode())
    assert zero.rules() == [("SCHEMA", "$.size")]
    too_big = await _announce(http, hub, size=Limits().blob_max_bytes + 1)
    too_big.problem(413, "payload-too-large")
    assert not list((hub.config.blob_dir / "uploads").iterdir())


# -- download -----------------------------------------------------------------------------


async def _download(
    http: aiohttp.ClientSession,
    hub: HubFixture,
    node: str,
    sha256: str = BLOB_SHA,
    range_header: str | None = None,
) -> Reply:
    request = signed_request(hub, "GET", f"/v1/blobs/{sha256}", node=node)
    extra = {"Range": range_header} if range_header else None
    return await send(http, hub, request, extra_headers=extra)


async def test_blob_is_readable_by_its_uploader_and_not_by_others(
    small_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = small_hub
    await _uploaded(hub, http)

    mine = await _download(http, hub, HEALTH)
    assert mine.status == 200
    assert mine.body == BLOB
    assert mine.content_type == "application/octet-stream"

    theirs = await _download(http, hub, STRANGER)
    nothing = await _download(http, hub, STRANGER, sha256=sha256_hex(b"no such blob"))
    assert {**theirs.problem(404, "not-found"), "instance": None} == {
        **nothing.problem(404, "not-found"),
        "instance": None,
    }


async def test_blob_becomes_readable_by_the_recipients_of_a_message_carrying_it(
    small_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = small_hub
    await _uploaded(hub, http)
    (await _download(http, hub, LA)).problem(404, "not-found")

    envelope = signed_envelope(hub, recipients=[LA], blob=(BLOB_SHA, len(BLOB)))
    accepted = await submit(http, hub, envelope)
    assert accepted.status == 201, accepted.body[:300]

    assert (await _download(http, hub, LA)).body == BLOB
    (await _download(http, hub, POLICE)).problem(404, "not-found")
    (await _download(http, hub, STRANGER)).problem(404, "not-found")


async def test_a_message_cannot_carry_another_nodes_blob(
    small_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = small_hub
    await _uploaded(hub, http)
    envelope = signed_envelope(hub, sender=POLICE, recipients=[LA], blob=(BLOB_SHA, len(BLOB)))
    reply = await submit(http, hub, envelope, node=POLICE)
    reply.problem(422, "message-refused")
    assert reply.rules() == [("PAYLOAD-02", "$.payload.sha256")]
    (await _download(http, hub, LA)).problem(404, "not-found")


async def test_blob_size_must_match_the_envelope(
    small_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = small_hub
    await _uploaded(hub, http)
    envelope = signed_envelope(hub, recipients=[LA], blob=(BLOB_SHA, len(BLOB) + 1))
    reply = await submit(http, hub, envelope)
    assert reply.rules() == [("PAYLOAD-01", "$.payload.size")]


async def test_ranged_download_returns_exactly_the_range(
    small_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = small_hub
    await _uploaded(hub, http)

    reply = await _download(http, hub, HEALTH, range_header="bytes=10-99")
    assert reply.status == 206
    assert reply.body == BLOB[10:100]
    assert reply.headers["Content-Range"] == f"bytes 10-99/{len(BLOB)}"

    tail = await _download(http, hub, HEALTH, range_header="bytes=-25")
    assert tail.status == 206
    assert tail.body == BLOB[-25:]


@pytest.mark.parametrize(
    "range_header", [f"bytes={len(BLOB)}-", "bytes=1000-2000", "bytes=5-2", "pages=1-2"]
)
async def test_unsatisfiable_range_is_a_416_problem(
    small_hub: HubFixture, http: aiohttp.ClientSession, range_header: str
) -> None:
    # Malformed ranges too: a problem+json like every other refusal, not an empty 416.
    hub = small_hub
    await _uploaded(hub, http)
    reply = await _download(http, hub, HEALTH, range_header=range_header)
    reply.problem(416, "range-not-satisfiable")
    assert reply.headers["Content-Range"] == f"bytes */{len(BLOB)}"
    assert BLOB[:16] not in reply.body
