"""HTTP handlers: parse, authenticate, call one service function, respond (STYLE.md rule 1)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from typing import Any

from aiohttp import ClientPayloadError, hdrs, web

from hub.errors import BadRequest, NotFound, PayloadTooLarge, RangeNotSatisfiable, RequestTimeout
from hub.model import BlobUploadRequest, WireModel
from hub.server.admission import admit
from hub.server.auth import AuthenticatedRequest
from hub.server.metrics import METRICS, count_submit
from hub.server.openapi import openapi_document
from hub.server.problems import ClientGone
from hub.server.reports import load_assurance, load_register
from hub.server.state import (
    AUDIT,
    AUTHENTICATOR,
    BLOBS,
    CLOCK_FN,
    CONFIG,
    EXCHANGE,
    KEYS,
    REGISTRY,
    STORE,
    WORKFLOWS,
)
from hub.validation import parse_wire

__all__ = ["routes"]

log = logging.getLogger("hub.server")
routes = web.RouteTableDef()

_UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CASE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{2,79}$")
_STREAM_READ = 64 * 1024
# Cursors are compared with 64-bit SQL integers; a larger number cannot name a delivery.
_QUERY_INT_MAX = 2**63 - 1


def _json(data: Any, status: int = 200) -> web.Response:
    if isinstance(data, WireModel):
        text = data.model_dump_json()
    else:
        text = json.dumps(data, separators=(",", ":"))
    return web.Response(status=status, text=text, content_type="application/json")


async def _read_body(request: web.Request, limit: int) -> bytes:
    """Read the whole body, refusing with 413 as soon as it passes ``limit`` bytes and with
    408 when it has not all arrived within ``limits.body_read_seconds``."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"This endpoint accepts bodies of at most {limit} bytes.")
    body = bytearray()
    seconds = request.app[CONFIG].limits.body_read_seconds
    try:
        async with asyncio.timeout(seconds):
            async for piece in request.content.iter_chunked(_STREAM_READ):
                body += piece
                if len(body) > limit:
                    raise PayloadTooLarge(f"This endpoint accepts bodies of at most {limit} bytes.")
    except (ConnectionResetError, ClientPayloadError) as exc:
        raise ClientGone(f"{type(exc).__name__}: {exc}") from None
    except asyncio.CancelledError:
        # The server cancels a handler whose client has hung up: say so once, quietly.
        transport = request.transport
        if transport is None or transport.is_closing():
            log.info("client went away mid-body on %s %s", request.method, request.path)
        raise
    except TimeoutError:
        raise RequestTimeout(
            f"The body must arrive within {seconds:g} seconds of the request's headers."
        ) from None
    return bytes(body)


async def _authenticated_body(
    request: web.Request, limit: int
) -> tuple[AuthenticatedRequest, bytes]:
    """Authenticate from the headers alone, then read the body and check its digest.

    Nothing of an unauthenticated request's body is read or held: a stranger's stalled
    upload costs the hub one set of headers, not up to ``limit`` bytes of memory.
    """
    auth = await _verified(request, None)
    body = await _read_body(request, limit)
    request.app[AUTHENTICATOR].check_body(auth, hashlib.sha256(body).digest(), path=request.path)
    return auth, body


async def _authenticate(request: web.Request, body: bytes | None) -> AuthenticatedRequest:
    return await _verified(request, hashlib.sha256(body if body is not None else b"").digest())


async def _verified(request: web.Request, body_sha256: bytes | None) -> AuthenticatedRequest:
    """Authenticate from the headers (and the body's digest, when it is read already), then
    admit the request: one of its node's slots (429 beyond limits.per_node_concurrent_requests)."""
    auth = await request.app[AUTHENTICATOR].authenticate(
        method=request.method,
        path=request.rel_url.raw_path,
        query=request.rel_url.raw_query_string,
        headers=request.headers,
        body_sha256=body_sha256,
    )
    admit(request, auth.node.id)
    return auth


def _message_id(request: web.Request) -> str:
    message_id = request.match_info["message_id"]
    if not _UUID7.match(message_id):
        raise NotFound(message_id=message_id)
    return message_id


def _query_number(request: web.Request, name: str, default: float, *, integer: bool) -> float:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise BadRequest(f"Query parameter {name!r} must be a number.") from None
    if value < 0 or value != value:  # negative or NaN
        raise BadRequest(f"Query parameter {name!r} must not be negative.")
    if integer and value > _QUERY_INT_MAX:
        raise BadRequest(f"Query parameter {name!r} must be at most {_QUERY_INT_MAX}.")
    return value


@routes.get("/v1/health")
async def health(request: web.Request) -> web.Response:
    return _json({"status": "ok", "hub_id": request.app[CONFIG].hub_id})


@routes.get("/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return _json(openapi_document())


@routes.get("/v1/directory")
async def directory(request: web.Request) -> web.Response:
    await _authenticate(request, None)
    return _json(await request.app[EXCHANGE].directory())


@routes.post("/v1/keys/rotate")
async def rotate_keys(request: web.Request) -> web.Response:
    # Signed by the node's current key; the body carries the new keys and their proof.
    auth, body = await _authenticated_body(request, request.app[CONFIG].limits.small_body_bytes)
    return _json(await request.app[KEYS].rotate(auth.node, body))


@routes.post("/v1/messages")
async def submit_message(request: web.Request) -> web.Response:
    auth, body = await _authenticated_body(request, request.app[CONFIG].limits.message_body_bytes)
    outcome = await count_submit(
        request.app[METRICS], request.app[EXCHANGE].submit(auth.node, body)
    )
    return _json(outcome.receipt, status=201 if outcome.created else 200)


@routes.get("/v1/inbox")
async def inbox(request: web.Request) -> web.Response:
    auth = await _authenticate(request, None)
    page = await request.app[EXCHANGE].inbox(
        auth.node,
        after=int(_query_number(request, "after", 0, integer=True)),
        limit=int(_query_number(request, "limit", 100, integer=True)),
        wait=_query_number(request, "wait", 0.0, integer=False),
    )
    return _json(page)


@routes.get("/v1/messages/{message_id}")
async def fetch_message(request: web.Request) -> web.Response:
    auth = await _authenticate(request, None)
    return _json(await request.app[EXCHANGE].fetch(auth.node, _message_id(request)))


@routes.post("/v1/messages/{message_id}/ack")
async def acknowledge(request: web.Request) -> web.Response:
    auth, body = await _authenticated_body(request, request.app[CONFIG].limits.small_body_bytes)
    status = await request.app[EXCHANGE].acknowledge(auth.node, _message_id(request), body)
    return _json(status)


@routes.post("/v1/messages/{message_id}/reject")
async def reject(request: web.Request) -> web.Response:
    auth, body = await _authenticated_body(request, request.app[CONFIG].limits.small_body_bytes)
    status = await request.app[EXCHANGE].reject(auth.node, _message_id(request), body)
    return _json(status)


@routes.get("/v1/messages/{message_id}/status")
async def message_status(request: web.Request) -> web.Response:
    auth = await _authenticate(request, None)
    return _json(await request.app[EXCHANGE].status(auth.node, _message_id(request)))


@routes.post("/v1/blobs")
async def announce_blob(request: web.Request) -> web.Response:
    auth, body = await _authenticated_body(request, request.app[CONFIG].limits.small_body_bytes)
    _, announcement = parse_wire(BlobUploadRequest, body, what="blob announcement")
    upload = await request.app[BLOBS].announce(auth.node, announcement)
    return _json(upload, status=200 if upload.complete else 201)


@routes.put("/v1/blobs/{upload_id}/{chunk}")
async def put_blob_chunk(request: web.Request) -> web.Response:
    upload_id = request.match_info["upload_id"]
    if not _UPLOAD_ID.match(upload_id):
        raise NotFound(upload_id=upload_id)
    try:
        index = int(request.match_info["chunk"])
    except ValueError:
        raise BadRequest("The chunk index must be an integer.") from None
    # The body is streamed: the signature is checked first, the Content-Digest once read.
    auth = await _verified(request, None)
    service = request.app[BLOBS]
    blob = await service.upload_state(auth.node, upload_id)
    expected = service.expected_chunk_length(blob, index)
    if request.content_length is not None and request.content_length > expected:
        raise PayloadTooLarge(f"Chunk {index} must be exactly {expected} bytes.")
    digest = await service.write_chunk(blob, index, request.content.iter_chunked(_STREAM_READ))
    request.app[AUTHENTICATOR].check_body(auth, digest, path=request.path)
    return _json(await service.record_chunk(blob, index))


@routes.get("/v1/blobs/{sha256}")
async def get_blob(request: web.Request) -> web.StreamResponse:
    sha256 = request.match_info["sha256"]
    if not _SHA256.match(sha256):
        raise NotFound(sha256=sha256)
    auth = await _authenticate(request, None)
    path = await request.app[BLOBS].readable_path(auth.node, sha256)
    await request.app[EXCHANGE].refuse_expired_payload(auth.node, sha256)
    _refuse_unsatisfiable_range(request, (await asyncio.to_thread(path.stat)).st_size)
    # FileResponse streams from disk and answers Range requests with 206 / 416.
    return web.FileResponse(
        path, chunk_size=256 * 1024, headers={"Content-Type": "application/octet-stream"}
    )


def _refuse_unsatisfiable_range(request: web.Request, size: int) -> None:
    """A Range FileResponse cannot serve is a 416 problem (with Content-Range, RFC 9110
    section 15.5.17), not aiohttp's empty 416, so every refusal is problem+json."""
    if hdrs.RANGE not in request.headers or hdrs.IF_RANGE in request.headers:
        return  # no Range, or one FileResponse may ignore (If-Range): it decides
    try:
        start = request.http_range.start
    except ValueError:
        start = size  # malformed: unsatisfiable as FileResponse treats it
    if start is not None and start < 0:  # a suffix range: the last -start bytes
        start = max(0, size + start)
    if start is not None and start >= size:
        error = RangeNotSatisfiable(f"The blob has {size} bytes; the Range asks beyond them.")
        error.headers["Content-Range"] = f"bytes */{size}"
        raise error


@routes.get("/v1/requests")
async def list_requests(request: web.Request) -> web.Response:
    auth = await _authenticate(request, None)
    overdue = request.query.get("overdue", "false")
    if overdue not in ("true", "false"):
        raise BadRequest("Query parameter 'overdue' must be true or false.")
    now = request.app[CLOCK_FN]()
    return _json(
        {
            "requests": await request.app[WORKFLOWS].requests_for(
                auth.node, now, overdue_only=overdue == "true"
            )
        }
    )


@routes.get("/v1/requests/{message_id}")
async def request_state(request: web.Request) -> web.Response:
    auth = await _authenticate(request, None)
    now = request.app[CLOCK_FN]()
    return _json(await request.app[WORKFLOWS].request_view(auth.node, _message_id(request), now))


@routes.get("/v1/cases/{case_ref}")
async def case_state(request: web.Request) -> web.Response:
    case_ref = request.match_info["case_ref"]
    if not _CASE_REF.match(case_ref):
        raise NotFound(case_ref=case_ref)
    auth = await _authenticate(request, None)
    return _json(await request.app[WORKFLOWS].case_view(auth.node, case_ref))


@routes.get("/v1/audit/head")
async def audit_head(request: web.Request) -> web.Response:
    await _authenticate(request, None)
    return _json(await request.app[AUDIT].head())


@routes.get("/v1/audit/proof/inclusion")
async def audit_inclusion(request: web.Request) -> web.Response:
    await _authenticate(request, None)
    index = int(_query_number(request, "index", -1, integer=True))
    size = int(_query_number(request, "size", 0, integer=True))
    return _json(await request.app[AUDIT].inclusion(index, size))


@routes.get("/v1/audit/proof/consistency")
async def audit_consistency(request: web.Request) -> web.Response:
    await _authenticate(request, None)
    first = int(_query_number(request, "first", 0, integer=True))
    second = int(_query_number(request, "second", 0, integer=True))
    return _json(await request.app[AUDIT].consistency(first, second))


@routes.get("/v1/audit/entries")
async def audit_entries(request: web.Request) -> web.Response:
    auth = await _authenticate(request, None)
    start = int(_query_number(request, "start", 0, integer=True))
    end = int(_query_number(request, "end", start + 100, integer=True))
    return _json(await request.app[AUDIT].entries(auth.node, start, end))


@routes.get("/v1/audit/disclosures")
async def audit_disclosures(request: web.Request) -> web.Response:
    auth = await _authenticate(request, None)
    subject_ref = request.query.get("subject_ref", "")
    if not _CASE_REF.match(subject_ref):
        raise BadRequest("Query parameter 'subject_ref' must be an opaque subject reference.")
    node = None if auth.node.id in request.app[CONFIG].auditors else auth.node.id
    disclosures = await load_register(request.app[STORE], subject_ref, node_id=node)
    return _json({"subject_ref": subject_ref, "disclosures": [d.to_json() for d in disclosures]})


@routes.get("/v1/reports/assurance")
async def assurance(request: web.Request) -> web.Response:
    auth = await _authenticate(request, None)
    if auth.node.id not in request.app[CONFIG].auditors:
        # Counts across every agency: for the hub's auditor nodes.
        raise NotFound(report="assurance", node=auth.node.id)
    period = request.query.get("period", "")
    try:
        report = await load_assurance(
            request.app[STORE], request.app[REGISTRY], period, request.app[CLOCK_FN]()
        )
    except ValueError as exc:
        raise BadRequest(f"Query parameter 'period': {exc}") from exc
    return _json(report.to_json())
