"""Messages sealed and signed before any clock starts, and the requests that carry them.

A message here is built exactly as :meth:`hub.client.NodeClient.send` builds it (the same
envelope fields, the payload sealed to every reader with ``seal_payload_bytes``, the
envelope signed with ``sign_document``), once the node's own pre-flight has passed for
the fields; only the submission is left for the measured run.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.loadgen import Lane, PreparedRequest, RequestSigner, WorkItem, prepare
from hub.cli.demo import DEMO_REFERRAL_DRAFT
from hub.client import NodeClient, NodeProfile
from hub.client.ids import uuid7
from hub.crypto import (
    CryptoError,
    SignatureContext,
    SigningKey,
    canonical_sha256,
    seal_payload_bytes,
    sign_document,
    verify_document,
)
from hub.model import EnvelopeFields, Receipt, rfc3339

__all__ = [
    "SealedMessage",
    "Sealer",
    "Senders",
    "ack_items",
    "check_receipts",
    "referral_fields",
    "seal_messages",
    "submit_items",
]


def referral_fields() -> EnvelopeFields:
    """The demo's lawful Prevent referral: a power to share, Art 6 and Art 9 bases with their
    Sch 1 condition, consent not sought and why, the health confidentiality exception.

    Without the demo's data sharing agreement: it names the demo's three nodes as its
    parties, and the bench has more senders (``bench.federation.SENDERS``), so citing it
    would be refused (DSA-03); a referral need not cite one, and then the DSA rules have
    nothing to check."""
    envelope = json.loads(json.dumps(DEMO_REFERRAL_DRAFT["envelope"]))
    del envelope["legal_basis"]["agreement"]
    return EnvelopeFields.model_validate_json(json.dumps(envelope))


@dataclass(frozen=True, slots=True)
class SealedMessage:
    message_id: str
    envelope_sha256: str
    body: bytes
    # The payload's ciphertext: what an anchor without envelopes (MESH) is sent instead.
    ciphertext: bytes


class Sealer:
    """Seals messages from one node: the directory fetched and the fields pre-flighted
    once (:meth:`open`), then :meth:`seal` as often as needed, with no hub round trip."""

    def __init__(
        self,
        node_id: str,
        signing: SigningKey,
        fields: EnvelopeFields,
        readers: dict[str, bytes],
    ) -> None:
        """``readers``: every recipient's and the sender's public encryption key."""
        self._node_id = node_id
        self._signing = signing
        self._readers = readers
        self._base = fields.model_dump(mode="json", exclude_none=True)

    @classmethod
    async def open(cls, profile: NodeProfile, fields: EnvelopeFields | None = None) -> Sealer:
        fields = fields or referral_fields()
        client = NodeClient(
            hub_url=profile.hub_url,
            node_id=profile.node_id,
            keys=profile.load_keys(),
            hub_signing_key=profile.hub_signing_key,
        )
        async with client:
            directory = await client.directory()
            refused = await client.preflight(fields)
        if refused:
            raise RuntimeError(f"the bench message fails pre-flight: {refused}")
        readers = {
            node: base64.b64decode(directory[node].encryption_key)
            for node in (*fields.recipients, profile.node_id)
        }
        return cls(profile.node_id, profile.load_keys().signing, fields, readers)

    def seal(self, count: int, payload_bytes: int) -> list[SealedMessage]:
        """``count`` distinct messages, each with a fresh random ``payload_bytes`` payload
        sealed to its recipients and the sender."""
        return [self._one(payload_bytes) for _ in range(count)]

    def _one(self, payload_bytes: int) -> SealedMessage:
        moment = datetime.now(UTC)
        # JSON text of exactly payload_bytes: the payload's media type is application/json.
        document = b'"' + base64.b64encode(os.urandom(payload_bytes))[: payload_bytes - 2] + b'"'
        sealed = seal_payload_bytes(document, self._readers)
        envelope: dict[str, Any] = {
            **self._base,
            "version": 1,
            "id": uuid7(moment),
            "sender": self._node_id,
            "created_at": rfc3339(moment),
            "payload": {
                "media_type": "application/json",
                "cipher": "xchacha20poly1305-secretstream/64k",
                "sha256": sealed.sha256,
                "size": len(sealed.ciphertext),
                "transport": "inline",
                "inline": base64.b64encode(sealed.ciphertext).decode("ascii"),
                "sealed_keys": sealed.sealed_keys,
            },
        }
        envelope["signature"] = sign_document(envelope, self._signing, SignatureContext.ENVELOPE)
        return SealedMessage(
            message_id=envelope["id"],
            envelope_sha256=canonical_sha256(envelope),
            body=json.dumps(envelope, separators=(",", ":")).encode(),
            ciphertext=sealed.ciphertext,
        )


async def seal_messages(
    profile: NodeProfile, count: int, payload_bytes: int
) -> list[SealedMessage]:
    """``count`` messages from ``profile``'s node (:class:`Sealer`, opened for them)."""
    return (await Sealer.open(profile)).seal(count, payload_bytes)


class Senders:
    """Several sending nodes: each one's :class:`Sealer` and request signing key, and the
    load generator's lanes (a node's requests, signed by that node)."""

    def __init__(self, sealers: dict[str, Sealer], keys: dict[str, SigningKey]) -> None:
        self._sealers = sealers
        self._keys = keys

    @classmethod
    async def open(cls, profiles: Sequence[NodeProfile]) -> Senders:
        sealers = {profile.node_id: await Sealer.open(profile) for profile in profiles}
        keys = {profile.node_id: profile.load_keys().signing for profile in profiles}
        return cls(sealers, keys)

    def seal(self, count: int, payload_bytes: int) -> dict[str, list[SealedMessage]]:
        """``count`` messages in all, shared out between the nodes in turn."""
        nodes = list(self._sealers)
        return {
            node: self._sealers[node].seal(len(range(i, count, len(nodes))), payload_bytes)
            for i, node in enumerate(nodes)
        }

    def lanes(self, batches: dict[str, list[SealedMessage]], *, port: int) -> list[Lane]:
        """One lane per node: ``POST /v1/messages`` of its messages, signed by it."""
        return [
            (submit_items(batch, host=f"127.0.0.1:{port}"), self._signer(node))
            for node, batch in batches.items()
        ]

    def _signer(self, node: str) -> Callable[[], RequestSigner]:
        key = self._keys[node]
        return lambda: RequestSigner(key, node)


def submit_items(messages: Sequence[SealedMessage], *, host: str) -> list[WorkItem]:
    """One ``POST /v1/messages`` per message, prepared for the signer."""
    return [
        WorkItem(
            (
                prepare(
                    "POST",
                    "/v1/messages",
                    host=host,
                    body=message.body,
                    headers=[("Content-Type", "application/json")],
                ),
            ),
            tag=message,
        )
        for message in messages
    ]


def ack_items(
    profile: NodeProfile, messages: Sequence[SealedMessage], *, host: str
) -> list[WorkItem]:
    """For each message: fetch it (``GET /v1/messages/{id}``), then acknowledge it with an
    acknowledgement signed here, before the clock (what ``NodeClient.acknowledge`` sends)."""
    keys = profile.load_keys()
    items = []
    for message in messages:
        ack: dict[str, Any] = {
            "message_id": message.message_id,
            "node": profile.node_id,
            "envelope_sha256": message.envelope_sha256,
            "acknowledged_at": rfc3339(datetime.now(UTC)),
        }
        ack["signature"] = sign_document(ack, keys.signing, SignatureContext.ACK)
        fetch: PreparedRequest = prepare("GET", f"/v1/messages/{message.message_id}", host=host)
        acknowledge = prepare(
            "POST",
            f"/v1/messages/{message.message_id}/ack",
            host=host,
            body=json.dumps(ack).encode(),
            headers=[("Content-Type", "application/json")],
        )
        items.append(WorkItem((fetch, acknowledge), tag=message))
    return items


def check_receipts(
    answers: Sequence[tuple[Any, int, bytes]], hub_signing_key: bytes
) -> tuple[int, list[str]]:
    """After the clock: every accepted answer must be a receipt signed by the hub for the
    message that was sent. Returns how many checked out and what did not."""
    good, bad = 0, []
    for tag, status, body in answers:
        if status not in (200, 201):
            continue
        message: SealedMessage = tag
        try:
            doc = json.loads(body)
            verify_document(doc, hub_signing_key, SignatureContext.RECEIPT)
            receipt = Receipt.model_validate_json(body)
        except (ValueError, CryptoError) as exc:
            bad.append(f"{message.message_id}: {type(exc).__name__}")
            continue
        if (
            receipt.message_id != message.message_id
            or receipt.envelope_sha256 != message.envelope_sha256
        ):
            bad.append(f"{message.message_id}: the receipt names another message")
            continue
        good += 1
    return good, bad
