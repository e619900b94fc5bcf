"""Real answers of the hub, one successful call of every operation, validated against the
schemas the OpenAPI document gives for them.

schemathesis (test_schemathesis_live.py) generates requests it cannot make succeed: a
random id names no message, a random envelope is refused. Here the hub holds a referral,
an information request, a Channel case and a blob, so the views the document describes
(message with receipt, request and case state, proofs, register, report) are answered
for real and must match what it says.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from hub.client import NodeClient
from hub.client.keys import rotation_statement
from hub.config import HubConfig
from hub.crypto import NodeKeys, SignatureContext, canonical_sha256, sign_document
from hub.server.openapi import openapi_document
from tests.conftest import INSECURE_TEST_NODE_KEYS, HubFixture, running_hub
from tests.server.helpers import (
    HEALTH,
    LA,
    POLICE,
    Reply,
    ack_document,
    send,
    signed_envelope,
    signed_request,
    submit,
)
from tests.workflows.helpers import request_doc
from tests.workflows.helpers import send as send_doc
from tests.workflows.test_referral_and_case import CASE, case_doc

_DOC = "urn:seh:openapi"
BLOB = b"ciphertext bytes for the document test " * 10


class Answers:
    """Checks replies against the document and remembers which operations it has seen."""

    def __init__(self) -> None:
        self.document = openapi_document()
        resource = Resource.from_contents(self.document, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(_DOC, resource)
        self.seen: set[tuple[str, str]] = set()

    def check(self, method: str, template: str, reply: Reply) -> Reply:
        responses = self.document["paths"][template][method.lower()]["responses"]
        assert str(reply.status) in responses, (method, template, reply.status, reply.body[:300])
        content = responses[str(reply.status)]["content"]
        assert reply.content_type in content, (method, template, reply.content_type)
        schema = content[reply.content_type]["schema"]
        if reply.content_type.endswith("json"):
            ref = {"$ref": _DOC + schema["$ref"]}
            validator = Draft202012Validator(ref, registry=self._registry)
            errors = [
                f"{list(e.absolute_path)}: {e.message}"
                for e in validator.iter_errors(json.loads(reply.body))
            ]
            assert errors == [], (method, template, errors)
        if 200 <= reply.status < 300:
            self.seen.add((method.lower(), template))
        return reply


@pytest.fixture
async def audited_hub(make_config: Callable[..., HubConfig]) -> AsyncIterator[HubFixture]:
    config = dataclasses.replace(make_config(), auditors=(POLICE,))
    async with running_hub(config) as fixture:
        yield fixture


async def test_every_operation_answers_as_the_document_describes(audited_hub: HubFixture) -> None:
    hub = audited_hub
    answers = Answers()
    police: NodeClient = hub.client(POLICE)
    la: NodeClient = hub.client(LA)
    try:
        information_request = await send_doc(police, request_doc())
        await send_doc(la, case_doc("case_open"))
    finally:
        await police.close()
        await la.close()

    async with aiohttp.ClientSession() as http:

        async def call(
            method: str,
            path: str,
            template: str,
            *,
            node: str = HEALTH,
            query: str = "",
            body: bytes = b"",
            content_type: str = "application/json",
        ) -> Reply:
            request = signed_request(
                hub, method, path, node=node, query=query, body=body, content_type=content_type
            )
            return answers.check(method, template, await send(http, hub, request))

        async def unsigned(path: str) -> Reply:
            async with http.get(hub.url + path) as response:
                reply = Reply(response.status, response.headers, await response.read())
            return answers.check("GET", path, reply)

        await unsigned("/v1/health")
        await unsigned("/v1/openapi.json")
        await unsigned("/metrics")  # the test client is on loopback, in [metrics] allow
        await call("GET", "/v1/directory", "/v1/directory")

        referral = signed_envelope(hub, recipients=[LA, POLICE])
        answers.check("POST", "/v1/messages", await submit(http, hub, referral))
        assert (await submit(http, hub, referral)).status == 200
        answers.check("POST", "/v1/messages", await submit(http, hub, referral))
        message = f"/v1/messages/{referral['id']}"
        await call("GET", message, "/v1/messages/{message_id}", node=LA)
        await call("GET", f"{message}/status", "/v1/messages/{message_id}/status")
        ack = json.dumps(ack_document(hub, referral, node=LA)).encode()
        await call("POST", f"{message}/ack", "/v1/messages/{message_id}/ack", node=LA, body=ack)
        rejection: dict[str, Any] = {
            "message_id": referral["id"],
            "node": POLICE,
            "envelope_sha256": canonical_sha256(dict(referral)),
            "rejected_at": hub.clock().isoformat().replace("+00:00", "Z"),
            "rules": ["MAN-01"],
            "reasons": ["MAN-01: 1 finding"],
        }
        rejection["signature"] = sign_document(
            rejection, INSECURE_TEST_NODE_KEYS[POLICE].signing, SignatureContext.REJECTION
        )
        await call(
            "POST",
            f"{message}/reject",
            "/v1/messages/{message_id}/reject",
            node=POLICE,
            body=json.dumps(rejection).encode(),
        )
        inbox = await call("GET", "/v1/inbox", "/v1/inbox", node=POLICE, query="after=0&limit=10")
        assert inbox.json()["entries"], "the referral is in police's inbox"

        request_id = information_request.message_id
        listed = await call("GET", "/v1/requests", "/v1/requests", node=POLICE)
        assert listed.json()["requests"]
        await call("GET", f"/v1/requests/{request_id}", "/v1/requests/{message_id}", node=POLICE)
        case = await call("GET", f"/v1/cases/{CASE}", "/v1/cases/{case_ref}", node=LA)
        assert case.json()["history"]

        head = (await call("GET", "/v1/audit/head", "/v1/audit/head")).json()
        size = head["size"]
        assert size >= 3
        await call(
            "GET",
            "/v1/audit/proof/inclusion",
            "/v1/audit/proof/inclusion",
            query=f"index=1&size={size}",
        )
        await call(
            "GET",
            "/v1/audit/proof/consistency",
            "/v1/audit/proof/consistency",
            query=f"first=1&second={size}",
        )
        entries = await call(
            "GET",
            "/v1/audit/entries",
            "/v1/audit/entries",
            node=POLICE,
            query=f"start=0&end={size}",
        )
        assert entries.json()["entries"]
        register = await call(
            "GET",
            "/v1/audit/disclosures",
            "/v1/audit/disclosures",
            node=POLICE,
            query=f"subject_ref={referral['subject_ref']}",
        )
        assert register.json()["disclosures"]
        year = datetime.now(UTC).year
        await call(
            "GET",
            "/v1/reports/assurance",
            "/v1/reports/assurance",
            node=POLICE,
            query=f"period={year}",
        )

        sha256 = hashlib.sha256(BLOB).hexdigest()
        announcement = json.dumps({"sha256": sha256, "size": len(BLOB)}).encode()
        upload = (await call("POST", "/v1/blobs", "/v1/blobs", body=announcement)).json()
        await call(
            "PUT",
            f"/v1/blobs/{upload['upload_id']}/0",
            "/v1/blobs/{upload_id}/{chunk}",
            body=BLOB,
            content_type="application/octet-stream",
        )
        again = await call("POST", "/v1/blobs", "/v1/blobs", body=announcement)
        assert again.status == 200  # already uploaded: the other documented success
        blob = await call("GET", f"/v1/blobs/{sha256}", "/v1/blobs/{sha256}")
        assert blob.body == BLOB

        # Last: a node rotates its keys (any later call as that node needs the new key).
        stranger = "education.stranger"
        rotation = rotation_statement(
            stranger,
            INSECURE_TEST_NODE_KEYS[stranger],
            NodeKeys.from_seed(b"insecure-rotated-openapi-0000000"),
            at=hub.clock(),
        )
        body = json.dumps(rotation).encode()
        await call("POST", "/v1/keys/rotate", "/v1/keys/rotate", node=stranger, body=body)

    operations = {
        (method, path) for path, item in answers.document["paths"].items() for method in item
    }
    assert operations - answers.seen == set(), "operations this test did not see succeed"
