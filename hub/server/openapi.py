"""The OpenAPI 3.1 description served at /v1/openapi.json, built from the wire models.

Every operation lists every answer it can give, each with the schema of its body: the
wire models for what the hub signs or stores, small object schemas here for the views it
assembles, and the RFC 9457 problem (with ``violations``) for every refusal. Two tests
hold it to the hub: one checks every registered route appears with every response
described, one runs schemathesis against a live ``hub serve`` (tests/server).
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel

from hub.audit.register import Disclosure
from hub.audit.report import AssuranceReport
from hub.model import (
    PROBLEM_MEDIA_TYPE,
    Acknowledgement,
    AuditEntry,
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
)

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{model}"
_SIGNED: list[dict[str, list[str]]] = [{"httpMessageSignature": []}]

# What each refusal means, as the hub gives it (deploy/limits.md lists the limits).
_PROBLEMS = {
    400: "Malformed request (query parameter, JSON body or chunk); `detail` says which",
    403: "Not served to this address (GET /metrics answers only [metrics] allow)",
    401: "Authentication failed (always the same answer; the hub's log holds the reason)",
    404: "Not found, or not visible to this node (the same answer for both)",
    408: "The body did not arrive within limits.body_read_seconds of the headers",
    409: "Conflicts with what the hub already holds",
    410: (
        "Gone: a case pack past its access expiry (`access-expired`), ciphertext the hub "
        "purged under its retention policy (`purged`, saying when and why), or an upload not "
        "finished in time (`upload-expired`, BLOB-03); deploy/retention.md"
    ),
    413: "Body larger than this endpoint accepts",
    416: "Range not satisfiable (Content-Range gives the blob's size)",
    422: "Refused; `violations` lists every broken rule",
    429: (
        "This node already has limits.per_node_concurrent_requests requests in progress; "
        "retry after Retry-After seconds"
    ),
}


def _model_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    validation: list[type[BaseModel]] = [
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
        Problem,
        AuditEntry,
        KeyRotationRequest,
    ]
    # Views the hub builds and only ever sends: described as they are serialised.
    serialised: list[type[BaseModel]] = [Disclosure, AssuranceReport]
    modes: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        *((model, "validation") for model in validation),
        *((model, "serialization") for model in serialised),
    ]
    for model, mode in modes:
        schema = model.model_json_schema(ref_template=_REF, mode=mode)
        for name, sub in {**schema.pop("$defs", {}), model.__name__: schema}.items():
            if schemas.setdefault(name, sub) != sub:
                raise AssertionError(f"two different schemas named {name}")
    return schemas


def _object(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """A closed object: every property listed, all present except ``optional``."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


_STR: dict[str, Any] = {"type": "string"}
_STR_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}
_HEX_HASHES: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
}


def _view_schemas() -> dict[str, Any]:
    history_event = _object(
        {
            "message_id": _STR,
            "kind": _STR,
            "actor": _STR,
            "at": _STR_OR_NULL,
            "summary": _STR,
        }
    )
    request_fields: dict[str, Any] = {
        "request_id": _STR,
        "state": _STR,
        "requester": _STR,
        "disclosers": {"type": "array", "items": _STR},
        "purpose": _STR,
        "urgency": _STR,
        "submitted_at": _STR_OR_NULL,
        "due_at": _STR_OR_NULL,
        "overdue": {"type": "boolean"},
        "decision_id": _STR_OR_NULL,
        "decision_outcome": _STR_OR_NULL,
        "decided_by": _STR_OR_NULL,
        "decided_at": _STR_OR_NULL,
        "releases": {"type": "integer", "minimum": 0},
    }
    history = {"type": "array", "items": _ref("HistoryEvent")}
    return {
        "Health": _object({"status": {"const": "ok"}, "hub_id": _STR}),
        "OpenApiDocument": {
            "type": "object",
            "required": ["openapi", "info", "paths", "components"],
            "properties": {"openapi": {"type": "string", "pattern": "^3\\.1\\."}},
        },
        "MessageWithReceipt": _object({"envelope": _ref("Envelope"), "receipt": _ref("Receipt")}),
        "HistoryEvent": history_event,
        "RequestSummary": _object(request_fields),
        "RequestList": _object({"requests": {"type": "array", "items": _ref("RequestSummary")}}),
        "RequestView": _object({**request_fields, "history": history}),
        "CaseView": _object(
            {
                "case_ref": _STR,
                "stage": _STR,
                "chair": _STR,
                "members": {
                    "type": "array",
                    "items": _object({"node": _STR, "role": _STR}),
                },
                "consent": _STR,
                "awaiting_consent": {"type": "boolean"},
                "subject_not_to_be_told": {"type": "boolean"},
                "exited_on": {"type": ["string", "null"], "format": "date"},
                "reviews_done": {"type": "array", "items": _STR},
                "history": history,
            }
        ),
        "InclusionProof": _object(
            {
                "index": {"type": "integer", "minimum": 0},
                "size": {"type": "integer", "minimum": 1},
                "proof": _HEX_HASHES,
            }
        ),
        "ConsistencyProof": _object(
            {
                "first": {"type": "integer", "minimum": 0},
                "second": {"type": "integer", "minimum": 0},
                "proof": _HEX_HASHES,
            }
        ),
        "AuditEntries": _object(
            {
                "entries": {
                    "type": "array",
                    "items": _object(
                        {
                            "index": {"type": "integer", "minimum": 0},
                            "leaf_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                            "entry": _ref("AuditEntry"),
                        }
                    ),
                }
            }
        ),
        "DisclosureRegister": _object(
            {"subject_ref": _STR, "disclosures": {"type": "array", "items": _ref("Disclosure")}}
        ),
        "MetricsExposition": {"type": "string"},
        "Ciphertext": {"type": "string", "format": "binary"},
        "Empty": {"type": "string", "maxLength": 0},
    }


def _schemas() -> dict[str, Any]:
    models, views = _model_schemas(), _view_schemas()
    if clash := set(models) & set(views):
        raise AssertionError(f"view schemas named like wire models: {sorted(clash)}")
    return {**models, **views}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(model=name)}


def _json_content(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(name)}}


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": _json_content(schema)}


def _retry_after() -> dict[str, Any]:
    return {
        "Retry-After": {
            "description": "Seconds to wait before retrying",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    }


def _problem(code: int) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": _PROBLEMS[code],
        "content": {PROBLEM_MEDIA_TYPE: {"schema": _ref("Problem")}},
    }
    if code == 429:
        answer["headers"] = _retry_after()
    return answer


def _op(
    summary: str,
    ok: dict[str, Any],
    *,
    body: str | None = None,
    errors: tuple[int, ...] = (),
    signed: bool = True,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One operation. A signed one can always answer 401 and 429 besides ``errors``."""
    responses: dict[str, Any] = dict(ok)
    codes = set(errors) | ({401, 429} if signed else set())
    for code in sorted(codes):
        responses[str(code)] = _problem(code)
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if signed:
        op["security"] = _SIGNED
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": _json_content(body),
        }
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


def _query(name: str, schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


_MSG = _path_param("message_id", "^[0-9a-f-]{36}$")
_COUNT = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}


def _paths() -> dict[str, Any]:
    return {
        "/v1/health": {
            "get": _op("Liveness", {"200": _json("Up", "Health")}, signed=False),
        },
        "/v1/openapi.json": {
            "get": _op("This document", {"200": _json("OpenAPI", "OpenApiDocument")}, signed=False),
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics (text exposition format 0.0.4), for the addresses in "
                "[metrics] allow; deploy/monitoring.md names every metric",
                {
                    "200": {
                        "description": "Metrics",
                        "content": {"text/plain": {"schema": _ref("MetricsExposition")}},
                    }
                },
                errors=(403,),
                signed=False,
            ),
        },
        "/v1/directory": {
            "get": _op("Hub-signed node directory", {"200": _json("Directory", "Directory")}),
        },
        "/v1/keys/rotate": {
            "post": _op(
                "Replace this node's keys: signed by its current key, with the new keys and "
                "the new signing key's proof of possession. The old key authenticates nothing "
                "afterwards; its earlier signatures stay valid (the directory lists every key "
                "with its period). A refusal (KEY-*) changes nothing; deploy/key-ceremony.md.",
                {"200": _json("The node's updated directory entry", "DirectoryEntry")},
                body="KeyRotationRequest",
                errors=(400, 408, 413, 422),
            ),
        },
        "/v1/messages": {
            "post": _op(
                "Submit a signed envelope",
                {
                    "201": _json("Accepted", "Receipt"),
                    "200": _json(
                        "The same sender resubmitted the same message (same id and canonical "
                        "envelope, e.g. a retry after a lost answer): the original receipt, byte "
                        "for byte; nothing is stored or logged again. Other content under the id "
                        "is 409.",
                        "Receipt",
                    ),
                },
                body="Envelope",
                errors=(400, 408, 409, 413, 422),
            ),
        },
        "/v1/inbox": {
            "get": _op(
                "Deliveries for this node after a cursor (long-poll with wait)",
                {"200": _json("Inbox page", "InboxPage")},
                errors=(400,),
                params=[
                    _query("after", _COUNT),
                    _query("limit", _COUNT),
                    _query("wait", {"type": "number", "minimum": 0}),
                ],
            ),
        },
        "/v1/messages/{message_id}": {
            "get": _op(
                "Envelope and receipt, for the sender or a recipient",
                {"200": _json("Envelope and receipt", "MessageWithReceipt")},
                errors=(404, 410),
                params=[_MSG],
            ),
        },
        "/v1/messages/{message_id}/ack": {
            "post": _op(
                "Recipient's signed acknowledgement",
                {"200": _json("Delivery state", "RecipientStatus")},
                body="Acknowledgement",
                errors=(400, 404, 408, 409, 413, 422),
                params=[_MSG],
            ),
        },
        "/v1/messages/{message_id}/reject": {
            "post": _op(
                "Recipient's signed rejection of a payload that does not match its envelope",
                {"200": _json("Delivery state (rejected, with the rules)", "RecipientStatus")},
                body="Rejection",
                errors=(400, 404, 408, 409, 413, 422),
                params=[_MSG],
            ),
        },
        "/v1/messages/{message_id}/status": {
            "get": _op(
                "Per-recipient delivery state, for the sender",
                {"200": _json("Status", "MessageStatus")},
                errors=(404,),
                params=[_MSG],
            ),
        },
        "/v1/requests": {
            "get": _op(
                "Information requests this node is party to (overdue=true: only overdue)",
                {"200": _json("Request summaries", "RequestList")},
                errors=(400,),
                params=[_query("overdue", {"type": "string", "enum": ["true", "false"]})],
            ),
        },
        "/v1/requests/{message_id}": {
            "get": _op(
                "A request's state, deadline and history, for its parties",
                {"200": _json("Request state", "RequestView")},
                errors=(404,),
                params=[_MSG],
            ),
        },
        "/v1/cases/{case_ref}": {
            "get": _op(
                "A Channel case's stage, panel, consent and history, for its members",
                {"200": _json("Case state", "CaseView")},
                errors=(404,),
                params=[_path_param("case_ref", "^[A-Za-z0-9][A-Za-z0-9._:-]{2,79}$")],
            ),
        },
        "/v1/audit/head": {
            "get": _op(
                "The transparency log's latest hub-signed tree head",
                {"200": _json("Signed tree head", "TreeHead")},
            ),
        },
        "/v1/audit/proof/inclusion": {
            "get": _op(
                "RFC 9162 inclusion proof for entry `index` in the tree of `size`",
                {"200": _json("Proof (hex hashes)", "InclusionProof")},
                errors=(400,),
                params=[
                    _query("index", _COUNT, required=True),
                    _query("size", _COUNT, required=True),
                ],
            ),
        },
        "/v1/audit/proof/consistency": {
            "get": _op(
                "RFC 9162 consistency proof between trees of sizes `first` and `second`",
                {"200": _json("Proof (hex hashes)", "ConsistencyProof")},
                errors=(400,),
                params=[
                    _query("first", _COUNT, required=True),
                    _query("second", _COUNT, required=True),
                ],
            ),
        },
        "/v1/audit/entries": {
            "get": _op(
                "Log entries in [start, end): this node's own, or all for an auditor node",
                {"200": _json("Entries with their indexes and leaf hashes", "AuditEntries")},
                errors=(400,),
                params=[_query("start", _COUNT), _query("end", _COUNT)],
            ),
        },
        "/v1/audit/disclosures": {
            "get": _op(
                "The disclosure register for a subject reference (disclosures this node "
                "took part in; all of them for an auditor node)",
                {"200": _json("Disclosures", "DisclosureRegister")},
                errors=(400,),
                params=[_query("subject_ref", _STR, required=True)],
            ),
        },
        "/v1/reports/assurance": {
            "get": _op(
                "Assurance report for a period (2026Q3, 2026-07 or 2026), for auditor nodes "
                "(404 for any other node)",
                {"200": _json("Report", "AssuranceReport")},
                errors=(400, 404),
                params=[_query("period", _STR, required=True)],
            ),
        },
        "/v1/blobs": {
            "post": _op(
                "Announce a large ciphertext before uploading its chunks (422 "
                "`blob-quota-exceeded`: over the node's quota, BLOB-01, BLOB-02)",
                {
                    "201": _json("Upload started", "BlobUpload"),
                    "200": _json("Already uploaded", "BlobUpload"),
                },
                body="BlobUploadRequest",
                errors=(400, 408, 413, 422),
            ),
        },
        "/v1/blobs/{upload_id}/{chunk}": {
            "put": {
                **_op(
                    "Upload one chunk (resumable; any order)",
                    {"200": _json("Upload state", "BlobUpload")},
                    errors=(400, 404, 410, 413, 422),
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
                "requestBody": {
                    "required": True,
                    "content": {"application/octet-stream": {"schema": _ref("Ciphertext")}},
                },
            },
        },
        "/v1/blobs/{sha256}": {
            "get": _op(
                "Download ciphertext (Range supported)",
                {
                    "200": {
                        "description": "Ciphertext",
                        "content": {"application/octet-stream": {"schema": _ref("Ciphertext")}},
                    },
                    "206": {
                        "description": "Partial ciphertext (a satisfiable Range)",
                        "content": {"application/octet-stream": {"schema": _ref("Ciphertext")}},
                    },
                    # Conditional requests (If-None-Match / If-Modified-Since) are answered
                    # as RFC 9110 section 13 says; a 304 has no content by definition.
                    "304": {"description": "Not modified since the validator the client sent"},
                    "412": {
                        "description": "If-Match or If-Unmodified-Since did not hold (no body)",
                        "content": {"application/octet-stream": {"schema": _ref("Empty")}},
                    },
                },
                errors=(404, 410, 416),
                params=[_path_param("sha256", "^[0-9a-f]{64}$")],
            ),
        },
    }


@functools.cache
def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Safeguarding Exchange Hub",
            "version": "1",
            "description": (
                "Every call except /v1/health, /v1/openapi.json and /metrics is signed with "
                "RFC 9421 HTTP Message Signatures (Ed25519) covering @method, @path, @query and "
                "content-digest (RFC 9530), with created, keyid (the node id) and a nonce. "
                "Every refusal is an RFC 9457 application/problem+json body; a 422 lists "
                "every broken rule in `violations`. Limits and what a client sees when one "
                "is hit: deploy/limits.md."
            ),
        },
        "paths": _paths(),
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
