"""The OpenAPI 3.1 description served at /v1/openapi.json, built from the wire models."""

from __future__ import annotations

import functools
from typing import Any

from hub.model import (
    Acknowledgement,
    BlobUpload,
    BlobUploadRequest,
    Directory,
    Envelope,
    InboxPage,
    KeyRotationRequest,
    MessageStatus,
    Problem,
    Receipt,
    RecipientStatus,
    Rejection,
    TreeHead,
    WireModel,
)

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{model}"
_SIGNED: list[dict[str, list[str]]] = [{"httpMessageSignature": []}]


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    models: list[type[WireModel]] = [
        TreeHead,
        Envelope,
        Receipt,
        Acknowledgement,
        Rejection,
        Directory,
        InboxPage,
        MessageStatus,
        RecipientStatus,
        BlobUploadRequest,
        BlobUpload,
        KeyRotationRequest,
        Problem,
    ]
    for model in models:
        schema = model.model_json_schema(ref_template=_REF)
        for name, sub in schema.pop("$defs", {}).items():
            schemas[name] = sub
        schemas[model.__name__] = schema
    return schemas


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(model=name)}


def _json_content(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(name)}}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }


def _op(
    summary: str,
    ok: dict[str, Any],
    *,
    body: str | None = None,
    errors: tuple[int, ...] = (401,),
    signed: bool = True,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    responses: dict[str, Any] = dict(ok)
    texts = {
        400: "Malformed request",
        401: "Authentication failed (always the same answer)",
        404: "Not found, or not visible to this node",
        409: "Message id already used with different content",
        410: "A case pack whose access has expired",
        408: "The body did not arrive within limits.body_read_seconds",
        413: "Body too large",
        416: "Range not satisfiable",
        422: "Refused; `violations` lists every broken rule",
    }
    for code in errors:
        responses[str(code)] = _problem(texts[code])
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if signed:
        op["security"] = _SIGNED
    if body is not None:
        op["requestBody"] = {"required": True, "content": _json_content(body)}
    if params:
        op["parameters"] = params
    return op


def _path_param(name: str, pattern: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": pattern},
    }


_MSG = _path_param("message_id", "^[0-9a-f-]{36}$")


@functools.cache
def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Safeguarding Exchange Hub",
            "version": "1",
            "description": (
                "Every call except /v1/health and /v1/openapi.json is signed with RFC 9421 "
                "HTTP Message Signatures (Ed25519) covering @method, @path, @query and "
                "content-digest (RFC 9530), with created, keyid (the node id) and a nonce."
            ),
        },
        "paths": {
            "/v1/health": {
                "get": _op("Liveness", {"200": {"description": "Up"}}, errors=(), signed=False)
            },
            "/v1/openapi.json": {
                "get": _op(
                    "This document", {"200": {"description": "OpenAPI"}}, errors=(), signed=False
                )
            },
            "/v1/directory": {
                "get": _op(
                    "Hub-signed node directory",
                    {"200": {"description": "Directory", "content": _json_content("Directory")}},
                )
            },
            "/v1/keys/rotate": {
                "post": _op(
                    "Replace this node's keys: signed by its current key, with the new keys "
                    "and the new signing key's proof of possession. The old key authenticates "
                    "nothing afterwards; its earlier signatures stay valid (the directory "
                    "lists every key with its period). Refusals (KEY-*) change nothing.",
                    {
                        "200": {
                            "description": "The node's updated directory entry",
                            "content": _json_content("DirectoryEntry"),
                        }
                    },
                    body="KeyRotationRequest",
                    errors=(400, 401, 408, 413, 422),
                )
            },
            "/v1/messages": {
                "post": _op(
                    "Submit a signed envelope",
                    {
                        "201": {"description": "Accepted", "content": _json_content("Receipt")},
                        "200": {
                            "description": (
                                "The same sender resubmitted the same message (same id and "
                                "canonical envelope, e.g. a retry after a lost answer): the "
                                "original receipt, byte for byte; nothing is stored or "
                                "logged again. Other content under the id is 409."
                            ),
                            "content": _json_content("Receipt"),
                        },
                    },
                    body="Envelope",
                    errors=(400, 401, 408, 409, 413, 422),
                )
            },
            "/v1/inbox": {
                "get": _op(
                    "Deliveries for this node after a cursor (long-poll with wait)",
                    {"200": {"description": "Inbox page", "content": _json_content("InboxPage")}},
                    errors=(400, 401),
                    params=[
                        {
                            "name": "after",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1},
                        },
                        {"name": "wait", "in": "query", "schema": {"type": "number", "minimum": 0}},
                    ],
                )
            },
            "/v1/messages/{message_id}": {
                "get": _op(
                    "Envelope and receipt, for the sender or a recipient",
                    {"200": {"description": "Envelope and receipt"}},
                    errors=(401, 404, 410),
                    params=[_MSG],
                )
            },
            "/v1/messages/{message_id}/ack": {
                "post": _op(
                    "Recipient's signed acknowledgement",
                    {
                        "200": {
                            "description": "Delivery state",
                            "content": _json_content("RecipientStatus"),
                        }
                    },
                    body="Acknowledgement",
                    errors=(400, 401, 404, 408, 413, 422),
                    params=[_MSG],
                )
            },
            "/v1/messages/{message_id}/reject": {
                "post": _op(
                    "Recipient's signed rejection of a payload that does not match its envelope",
                    {
                        "200": {
                            "description": "Delivery state (rejected, with the rules)",
                            "content": _json_content("RecipientStatus"),
                        }
                    },
                    body="Rejection",
                    errors=(400, 401, 404, 408, 409, 413, 422),
                    params=[_MSG],
                )
            },
            "/v1/messages/{message_id}/status": {
                "get": _op(
                    "Per-recipient delivery state, for the sender",
                    {"200": {"description": "Status", "content": _json_content("MessageStatus")}},
                    errors=(401, 404),
                    params=[_MSG],
                )
            },
            "/v1/requests": {
                "get": _op(
                    "Information requests this node is party to (overdue=true: only overdue)",
                    {"200": {"description": "Request summaries"}},
                    errors=(400, 401),
                    params=[{"name": "overdue", "in": "query", "schema": {"type": "boolean"}}],
                )
            },
            "/v1/requests/{message_id}": {
                "get": _op(
                    "A request's state, deadline and history, for its parties",
                    {"200": {"description": "Request state"}},
                    errors=(401, 404),
                    params=[_MSG],
                )
            },
            "/v1/cases/{case_ref}": {
                "get": _op(
                    "A Channel case's stage, panel, consent and history, for its members",
                    {"200": {"description": "Case state"}},
                    errors=(401, 404),
                    params=[_path_param("case_ref", "^[A-Za-z0-9][A-Za-z0-9._:-]{2,79}$")],
                )
            },
            "/v1/audit/head": {
                "get": _op(
                    "The transparency log's latest hub-signed tree head",
                    {
                        "200": {
                            "description": "Signed tree head",
                            "content": _json_content("TreeHead"),
                        }
                    },
                )
            },
            "/v1/audit/proof/inclusion": {
                "get": _op(
                    "RFC 9162 inclusion proof for entry `index` in the tree of `size`",
                    {"200": {"description": "Proof (hex hashes)"}},
                    errors=(400, 401),
                    params=[
                        {
                            "name": "index",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 0},
                        },
                        {
                            "name": "size",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 1},
                        },
                    ],
                )
            },
            "/v1/audit/proof/consistency": {
                "get": _op(
                    "RFC 9162 consistency proof between trees of sizes `first` and `second`",
                    {"200": {"description": "Proof (hex hashes)"}},
                    errors=(400, 401),
                    params=[
                        {
                            "name": "first",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 0},
                        },
                        {
                            "name": "second",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 0},
                        },
                    ],
                )
            },
            "/v1/audit/entries": {
                "get": _op(
                    "Log entries in [start, end): this node's own, or all for an auditor node",
                    {"200": {"description": "Entries with their indexes and leaf hashes"}},
                    errors=(400, 401),
                    params=[
                        {
                            "name": "start",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0},
                        },
                        {"name": "end", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                    ],
                )
            },
            "/v1/audit/disclosures": {
                "get": _op(
                    "The disclosure register for a subject reference (disclosures this node "
                    "took part in; all of them for an auditor node)",
                    {"200": {"description": "Disclosures"}},
                    errors=(400, 401),
                    params=[
                        {
                            "name": "subject_ref",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                )
            },
            "/v1/reports/assurance": {
                "get": _op(
                    "Assurance report for a period (2026Q3, 2026-07 or 2026), for auditor nodes",
                    {"200": {"description": "Report"}},
                    errors=(400, 401, 404),
                    params=[
                        {
                            "name": "period",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                )
            },
            "/v1/blobs": {
                "post": _op(
                    "Announce a large ciphertext before uploading its chunks",
                    {
                        "201": {
                            "description": "Upload started",
                            "content": _json_content("BlobUpload"),
                        },
                        "200": {
                            "description": "Already uploaded",
                            "content": _json_content("BlobUpload"),
                        },
                    },
                    body="BlobUploadRequest",
                    errors=(400, 401, 408, 413, 422),
                )
            },
            "/v1/blobs/{upload_id}/{chunk}": {
                "put": {
                    **_op(
                        "Upload one chunk (resumable; any order)",
                        {
                            "200": {
                                "description": "Upload state",
                                "content": _json_content("BlobUpload"),
                            }
                        },
                        errors=(400, 401, 404, 413, 422),
                        params=[
                            _path_param("upload_id", "^[0-9a-f]{32}$"),
                            {
                                "name": "chunk",
                                "in": "path",
                                "required": True,
                                "schema": {"type": "integer", "minimum": 0},
                            },
                        ],
                    ),
                    "requestBody": {"required": True, "content": {"application/octet-stream": {}}},
                }
            },
            "/v1/blobs/{sha256}": {
                "get": _op(
                    "Download ciphertext (Range supported)",
                    {
                        "200": {
                            "description": "Ciphertext",
                            "content": {"application/octet-stream": {}},
                        },
                        "206": {
                            "description": "Partial ciphertext",
                            "content": {"application/octet-stream": {}},
                        },
                    },
                    errors=(401, 404, 410, 416),
                    params=[_path_param("sha256", "^[0-9a-f]{64}$")],
                )
            },
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "httpMessageSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Signature",
                    "description": "RFC 9421 signature; see Signature-Input and Content-Digest.",
                }
            },
        },
    }
