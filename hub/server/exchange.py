"""The exchange service: accepts, stores, delivers and tracks messages.

It decides; handlers only translate HTTP, and repositories only do SQL (STYLE.md rule 1).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NoReturn

from hub.audit.entries import audit_entry
from hub.audit.log import AuditLog
from hub.config import Limits
from hub.crypto import (
    NodeKeys,
    SignatureContext,
    SignatureInvalid,
    canonical_json,
    canonical_sha256,
    sign_document,
    verify_document,
)
from hub.errors import Conflict, Gone, NotFound, Unprocessable
from hub.model import (
    Acknowledgement,
    AuditAction,
    AuditEntry,
    Envelope,
    InboxEntry,
    InboxPage,
    LogPosition,
    MessageStatus,
    Receipt,
    RecipientStatus,
    Rejection,
    Violation,
    rfc3339,
)
from hub.policy.engine import evaluate
from hub.policy.facts import Party, PolicyFacts
from hub.policy.manifest import check_record_kind
from hub.policy.registry import Registry
from hub.policy.routing import check_recipients
from hub.policy.workflow import WorkflowFacts
from hub.server.keys import directory_entries
from hub.server.nodes import NodeCache
from hub.server.notify import InboxNotifier
from hub.server.purged import purged_error
from hub.server.workflows import (
    load_workflow_facts,
    record_workflow,
    touches_existing_workflow,
    workflow_violations,
)
from hub.store import (
    BlobRecord,
    DeliveryRecord,
    GroupCommitter,
    NodeRecord,
    Store,
    StoredMessage,
    UnitOfWork,
)
from hub.validation import parse_wire

__all__ = ["Clock", "ExchangeService", "HubIdentity", "SubmitOutcome", "stored_envelope"]

log = logging.getLogger("hub.exchange")

Clock = Callable[[], datetime]
# A sealed box is the 32-byte content key plus 48 bytes of X25519 ephemeral key and MAC.
_SEALED_KEY_BYTES = 80


@dataclass(frozen=True, slots=True)
class HubIdentity:
    hub_id: str
    keys: NodeKeys


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    receipt: dict[str, Any]
    created: bool  # False when this is an idempotent resubmission


def _follow_up(
    message: StoredMessage,
    node_id: str,
    at: datetime,
    action: AuditAction,
    *,
    rules: tuple[str, ...] = (),
) -> AuditEntry:
    """A delivery, acknowledgement or rejection entry: who, when, which message, about whom.

    A rejection's entry carries the rule ids the recipient gave, so the log and the
    disclosure register show that a disclosure was refused on arrival, and why.
    """
    envelope = json.loads(message.envelope_json)
    return AuditEntry.model_validate(
        {
            "at": at,
            "action": action,
            "actor": node_id,
            "kind": message.kind,
            "message_id": message.id,
            "envelope_sha256": message.envelope_sha256,
            "subject_ref": envelope.get("subject_ref"),
            "case_ref": envelope.get("case_ref"),
            "rules": list(rules),
        },
        strict=False,
    )


def stored_envelope(message: StoredMessage) -> Envelope:
    """The stored envelope as the model, also once its inline ciphertext was purged.

    A purge keeps the envelope's metadata but removes ``payload.inline``; the model needs
    the field for an inline payload, so it reads as empty here (what the rules use is all
    still there). Read through the model, as it was validated on arrival.
    """
    if message.payload_purged_at is None or message.transport != "inline":
        return Envelope.model_validate_json(message.envelope_json)
    document = json.loads(message.envelope_json)
    document["payload"]["inline"] = ""
    return Envelope.model_validate_json(json.dumps(document))


# What a message row holds until its batch's last step signs and stores its receipt; no
# transaction commits with it (the step runs before the commit, or the batch rolls back).
_RECEIPT_PENDING = ""


@dataclass(eq=False, slots=True)
class _PendingReceipt:
    """A receipt signed once its entry has a log position, in the batch's last step."""

    message_id: str
    sign: Callable[[], dict[str, Any]]
    _signed: dict[str, Any] | None = None

    @property
    def signed(self) -> dict[str, Any]:
        if self._signed is None:
            raise RuntimeError("a receipt is signed in its batch's last step, not yet")
        return self._signed


@dataclass(eq=False, slots=True)
class _PendingReceipts:
    """End step after the log's append: sign the batch's receipts, store them in one go."""

    receipts: list[_PendingReceipt] = field(default_factory=list)

    async def run(self, tx: UnitOfWork) -> None:
        stored = []
        for receipt in self.receipts:
            receipt._signed = receipt.sign()
            stored.append((receipt.message_id, json.dumps(receipt._signed, separators=(",", ":"))))
        await tx.messages.set_receipts(stored)
        self.receipts.clear()


def _recipient_status(delivery: DeliveryRecord) -> RecipientStatus:
    """A delivery as the sender sees it; a rejection with the recipient's rules and reasons."""
    if delivery.state == "rejected" and delivery.ack_json is not None:
        rejection = Rejection.model_validate_json(delivery.ack_json)
        return RecipientStatus(
            node=delivery.recipient,
            state="rejected",
            delivered_at=delivery.delivered_at,
            rejected_at=delivery.acknowledged_at,
            rejection_rules=rejection.rules,
            rejection_reasons=rejection.reasons,
        )
    return RecipientStatus(
        node=delivery.recipient,
        state=delivery.state,  # type: ignore[arg-type]
        delivered_at=delivery.delivered_at,
        acknowledged_at=delivery.acknowledged_at,
    )


def _party(record: NodeRecord) -> Party:
    return Party(
        node_id=record.id, agency_type=record.agency_type, accreditation=record.accreditation
    )


class ExchangeService:
    def __init__(
        self,
        *,
        store: Store,
        nodes: NodeCache,
        writes: GroupCommitter,
        registry: Registry,
        audit: AuditLog,
        hub: HubIdentity,
        notifier: InboxNotifier,
        clock: Clock,
        limits: Limits,
    ) -> None:
        self._store = store
        self._nodes = nodes
        self._writes = writes
        self._registry = registry
        self._audit = audit
        self._hub = hub
        self._notifier = notifier
        self._clock = clock
        self._limits = limits

    # -- submission ---------------------------------------------------------------------

    async def submit(self, node: NodeRecord, raw: bytes) -> SubmitOutcome:
        """Check and accept one signed envelope; answer with the hub's signed receipt.

        Every check happens before anything is written, and the message and its
        deliveries are written in one transaction: a refused message leaves no trace
        in the store (its refusal goes to the log).
        """
        document, envelope = parse_wire(Envelope, raw, what="envelope")
        if envelope.sender != node.id:
            raise Unprocessable(
                "The envelope's sender must be the node that signed the request.",
                slug="sender-mismatch",
                violations=[
                    Violation(
                        rule="ROUTE-03",
                        path="$.sender",
                        message=f"sender is {envelope.sender!r} but the request came from "
                        f"{node.id!r}",
                    )
                ],
            )
        try:
            verify_document(document, node.signing_key, SignatureContext.ENVELOPE)
        except SignatureInvalid as exc:
            # The same bytes accepted before this node rotated its keys (a retry whose
            # answer was lost) were verified then: they get their original receipt.
            async with self._store.read() as view:
                accepted = await view.messages.get(envelope.id)
            envelope_sha256 = canonical_sha256(document)
            if (
                accepted is not None
                and accepted.sender == node.id
                and accepted.envelope_sha256 == envelope_sha256
            ):
                return self._resubmission(accepted, node, envelope_sha256)
            raise Unprocessable(
                "The envelope signature does not verify with the sender's signing key.",
                slug="envelope-signature-invalid",
                violations=[
                    Violation(
                        rule="SIG-01",
                        path="$.signature",
                        message="sign the JCS form of the envelope without 'signature'",
                    )
                ],
            ) from exc
        envelope_sha256 = canonical_sha256(document)

        recipients = await self._nodes.get_many(envelope.recipients)
        blob = None
        if envelope.payload.transport == "blob":
            async with self._store.read() as view:
                blob = await view.blobs.complete_by_sha256(envelope.payload.sha256, owner=node.id)

        received_at = self._clock()
        violations = self._routing_violations(envelope, recipients)
        violations += self._payload_violations(envelope, node, blob)
        facts = await self._policy_facts(envelope, node, recipients, received_at)
        violations += evaluate(envelope, facts, self._registry)
        agency_types = {n: r.agency_type for n, r in recipients.items() if r is not None}
        agency_types[node.id] = node.agency_type
        workflow_facts = WorkflowFacts()
        if touches_existing_workflow(envelope):  # no read for a message that starts afresh
            async with self._store.read() as view:
                workflow_facts = await load_workflow_facts(view, envelope, node.id)
        violations += workflow_violations(
            envelope,
            workflow_facts,
            agency_types=agency_types,
            registry=self._registry,
            now=received_at,
        )
        if violations:
            # An identical resubmission still gets its original receipt, even if, say, a
            # recipient has been suspended since: idempotency comes before routing.
            async with self._store.read() as view:
                existing = await view.messages.get(envelope.id)
            if existing is not None:
                return self._resubmission(existing, node, envelope_sha256)
            await self._refuse(envelope, envelope_sha256, received_at, violations)

        entry = audit_entry(envelope, envelope_sha256, received_at, "submitted")

        async def store_message(
            tx: UnitOfWork,
        ) -> StoredMessage | list[Violation] | _PendingReceipt:
            # Checked again inside the write transaction: a concurrent twin may have won,
            # or a concurrent message may have moved the workflow (a second decision).
            twin = await tx.messages.get(envelope.id)
            if twin is not None:
                return twin
            # Under a shared lock on the node's row: a key rotation that committed after
            # the signature was checked refuses the message (it would not verify with the
            # key valid at its receipt); one waiting on the lock takes its time after this.
            if await tx.nodes.signing_key_locked(node.id) != node.signing_key:
                return [
                    Violation(
                        rule="SIG-01",
                        path="$.signature",
                        message="this node's signing key was rotated while the message was "
                        "in flight: sign it again with the current key",
                    )
                ]
            if blob is not None and (
                await tx.blobs.complete_by_sha256(blob.sha256, owner=node.id, for_update=True)
                is None
            ):
                # Purged as unsent since it was read above (deploy/retention.md).
                return self._payload_violations(envelope, node, None)
            fresh = await load_workflow_facts(tx, envelope, node.id)
            raced = workflow_violations(
                envelope, fresh, agency_types=agency_types, registry=self._registry, now=received_at
            )
            if raced:
                return raced
            # The log entry, the message and the workflow change commit together; the
            # receipt names the entry and a signed tree head that includes it. The entry is
            # appended at the end of the batch (hub/audit/log.py), so the message is stored
            # first and its receipt is signed and filled in by the batch's last step.
            queued = await self._audit.append(tx, entry)
            await tx.messages.add(
                StoredMessage(
                    id=envelope.id,
                    sender=node.id,
                    kind=envelope.kind,
                    envelope_json=canonical_json(document).decode("utf-8"),
                    envelope_sha256=envelope_sha256,
                    receipt_json=_RECEIPT_PENDING,
                    received_at=received_at,
                    payload_sha256=envelope.payload.sha256,
                    payload_size=envelope.payload.size,
                    transport=envelope.payload.transport,
                ),
                envelope.recipients,
            )
            await record_workflow(tx, envelope, fresh, received_at)
            receipt = _PendingReceipt(
                envelope.id,
                lambda: self._sign_receipt(envelope, envelope_sha256, received_at, queued.position),
            )
            tx.at_end(_PendingReceipts, _PendingReceipts).receipts.append(receipt)
            return receipt

        outcome = await self._writes.run(store_message)
        if isinstance(outcome, StoredMessage):
            return self._resubmission(outcome, node, envelope_sha256)
        if isinstance(outcome, list):
            await self._refuse(envelope, envelope_sha256, received_at, outcome)
        receipt = outcome.signed  # the batch has committed: the receipt may leave the hub
        log.info("accepted message %s (%s) from %s", envelope.id, envelope.kind, node.id)
        for recipient in envelope.recipients:
            self._notifier.notify(recipient)
        return SubmitOutcome(receipt=receipt, created=True)

    async def _policy_facts(
        self,
        envelope: Envelope,
        sender: NodeRecord,
        recipients: dict[str, NodeRecord | None],
        received_at: datetime,
    ) -> PolicyFacts:
        """What the rules need beyond the envelope: the parties, the date, the answered message.

        The answered message (``in_reply_to``) counts only if this sender may see it; a
        message it may not see is treated exactly like one that does not exist.
        """
        answers: Envelope | None = None
        answers_sender: str | None = None
        if envelope.in_reply_to is not None:
            async with self._store.read() as view:
                readable = await view.messages.readable(envelope.in_reply_to, sender.id)
            if readable is not None:
                earlier = readable[0]
                answers = stored_envelope(earlier)
                answers_sender = earlier.sender
        return PolicyFacts(
            sender=_party(sender),
            recipients={
                node_id: _party(record)
                for node_id, record in recipients.items()
                if record is not None and record.status == "active"
            },
            today=received_at.date(),
            answers=answers,
            answers_sender=answers_sender,
        )

    def _resubmission(
        self, existing: StoredMessage, node: NodeRecord, envelope_sha256: str
    ) -> SubmitOutcome:
        if existing.sender == node.id and existing.envelope_sha256 == envelope_sha256:
            receipt: dict[str, Any] = json.loads(existing.receipt_json)
            return SubmitOutcome(receipt=receipt, created=False)
        raise Conflict(
            "A message with this id was already accepted with different content; "
            "choose a new id for a new message.",
            debug={"message_id": existing.id},
        )

    @staticmethod
    def _routing_violations(
        envelope: Envelope, recipients: dict[str, NodeRecord | None]
    ) -> list[Violation]:
        return check_recipients(
            envelope.recipients,
            {node: None if rec is None else rec.status for node, rec in recipients.items()},
        )

    def _payload_violations(
        self, envelope: Envelope, sender: NodeRecord, blob: BlobRecord | None
    ) -> list[Violation]:
        payload = envelope.payload
        violations = check_record_kind(envelope.kind, payload.media_type)
        for node_id, sealed in payload.sealed_keys.items():
            if len(base64.b64decode(sealed)) != _SEALED_KEY_BYTES:
                violations.append(
                    Violation(
                        rule="PAYLOAD-03",
                        path=f"$.payload.sealed_keys.{node_id}",
                        message=f"a sealed content key is {_SEALED_KEY_BYTES} bytes",
                    )
                )
        if payload.transport == "inline":
            ciphertext = payload.inline_bytes()
            if len(ciphertext) != payload.size:
                violations.append(
                    Violation(
                        rule="PAYLOAD-01",
                        path="$.payload.size",
                        message=f"size is {payload.size} but the inline ciphertext is "
                        f"{len(ciphertext)} bytes",
                    )
                )
            if hashlib.sha256(ciphertext).hexdigest() != payload.sha256:
                violations.append(
                    Violation(
                        rule="PAYLOAD-01",
                        path="$.payload.sha256",
                        message="sha256 does not match the inline ciphertext",
                    )
                )
        elif blob is None or blob.owner != sender.id:
            violations.append(
                Violation(
                    rule="PAYLOAD-02",
                    path="$.payload.sha256",
                    message="no completed blob upload by this node has this sha256; upload "
                    "the ciphertext through /v1/blobs first",
                )
            )
        elif blob.size != payload.size:
            violations.append(
                Violation(
                    rule="PAYLOAD-01",
                    path="$.payload.size",
                    message=f"size is {payload.size} but the uploaded blob is {blob.size} bytes",
                )
            )
        return violations

    async def _refuse(
        self,
        envelope: Envelope,
        envelope_sha256: str,
        at: datetime,
        violations: list[Violation],
    ) -> NoReturn:
        """Log the refusal (metadata and rule ids only), then answer 422; nothing else is kept."""
        rules = tuple(sorted({v.rule for v in violations}))
        entry = audit_entry(envelope, envelope_sha256, at, "refused", rules=rules)

        async def record(tx: UnitOfWork) -> None:
            await self._audit.append(tx, entry)

        await self._writes.run(record)
        log.info("refused message %s from %s: %s", envelope.id, envelope.sender, ",".join(rules))
        raise Unprocessable(
            "The message breaks the hub's rules; nothing was stored.",
            slug="message-refused",
            violations=violations,
        )

    def _sign_receipt(
        self,
        envelope: Envelope,
        envelope_sha256: str,
        received_at: datetime,
        position: LogPosition,
    ) -> dict[str, Any]:
        body = Receipt.model_construct(
            message_id=envelope.id,
            envelope_sha256=envelope_sha256,
            sender=envelope.sender,
            recipients=tuple(envelope.recipients),
            received_at=received_at,
            hub_id=self._hub.hub_id,
            log=position,
            signature="",
        ).model_dump(mode="json")
        body["signature"] = sign_document(body, self._hub.keys.signing, SignatureContext.RECEIPT)
        return body

    # -- reading ------------------------------------------------------------------------

    async def fetch(self, node: NodeRecord, message_id: str) -> dict[str, Any]:
        """The envelope and receipt, for the sender or a recipient; marks it delivered.

        Another node's message is found (not) by the same one query as a missing one.
        """
        async with self._store.read() as view:
            readable = await view.messages.readable(message_id, node.id)
        if readable is None:
            raise NotFound(message_id=message_id, node=node.id)
        message, delivery = readable
        if delivery is not None:
            self.refuse_if_expired(message)
        if message.payload_purged_at is not None:
            raise purged_error(
                "the payload of this message",
                message.payload_purged_at,
                message.purge_reason or "",
                message_id=message_id,
            )
        if delivery is not None and delivery.state == "pending":
            delivered_at = self._clock()

            delivered = _follow_up(message, node.id, delivered_at, "delivered")

            async def mark(tx: UnitOfWork) -> None:
                await tx.messages.mark_delivered(message_id, node.id, delivered_at)
                await self._audit.append(tx, delivered)

            await self._writes.run(mark)
        return {
            "envelope": json.loads(message.envelope_json),
            "receipt": json.loads(message.receipt_json),
        }

    async def refuse_expired_payload(self, node: NodeRecord, payload_sha256: str) -> None:
        """The blob of an expired case pack is not served to its recipients either."""
        async with self._store.read() as view:
            carriers = await view.messages.carrying_payload(payload_sha256)
        for message in carriers:
            if message.sender != node.id:
                self.refuse_if_expired(message)

    def refuse_if_expired(self, message: StoredMessage) -> None:
        """A case pack is not served to its members after its access expiry."""
        if message.kind != "case_pack":
            return
        # Read through the model, as it was validated on arrival, not by re-parsing text.
        expires = stored_envelope(message).access_expires_at
        if expires is None:
            return
        if expires <= self._clock():
            raise Gone(
                "Access to this case pack has expired; the hub no longer serves it and "
                "member nodes purge their copies.",
                debug={"message_id": message.id},
            )

    async def acknowledge(self, node: NodeRecord, message_id: str, raw: bytes) -> RecipientStatus:
        """Record a recipient's signed acknowledgement (idempotent)."""
        document, ack = parse_wire(Acknowledgement, raw, what="acknowledgement")
        return await self._answer(
            node, message_id, document, ack, SignatureContext.ACK, "acknowledged"
        )

    async def reject(self, node: NodeRecord, message_id: str, raw: bytes) -> RecipientStatus:
        """Record a recipient's signed rejection of a message's content (idempotent).

        The recipient opened the payload and found it does not match its envelope (a
        release holding more than its manifest says, rules MAN-*) or its kind's model; the
        rejection is logged with its rule ids and shown to the sender in the status.
        """
        document, rejection = parse_wire(Rejection, raw, what="rejection")
        return await self._answer(
            node,
            message_id,
            document,
            rejection,
            SignatureContext.REJECTION,
            "rejected",
            rules=rejection.rules,
        )

    async def _answer(
        self,
        node: NodeRecord,
        message_id: str,
        document: dict[str, Any],
        answer: Acknowledgement | Rejection,
        context: bytes,
        action: Literal["acknowledged", "rejected"],
        *,
        rules: tuple[str, ...] = (),
    ) -> RecipientStatus:
        """Check and record a recipient's signed answer; the first answer stands."""
        async with self._store.read() as view:
            addressed = await view.messages.addressed(message_id, node.id)
        if addressed is None:  # not a recipient, or no such message: the same one query
            raise NotFound(message_id=message_id, node=node.id)
        message, delivery = addressed
        problems = []
        if answer.message_id != message_id:
            problems.append(
                Violation(rule="ACK-01", path="$.message_id", message="must match the URL")
            )
        if answer.node != node.id:
            problems.append(
                Violation(rule="ACK-01", path="$.node", message="must be the answering node")
            )
        if answer.envelope_sha256 != message.envelope_sha256:
            problems.append(
                Violation(
                    rule="ACK-02",
                    path="$.envelope_sha256",
                    message="does not match the envelope the hub holds",
                )
            )
        try:
            verify_document(document, node.signing_key, context)
        except SignatureInvalid:
            problems.append(
                Violation(rule="SIG-01", path="$.signature", message="signature does not verify")
            )
        if problems:
            raise Unprocessable(
                f"The {'acknowledgement' if action == 'acknowledged' else 'rejection'} was "
                "refused.",
                slug="ack-refused",
                violations=problems,
            )
        if delivery.state in ("acknowledged", "rejected") and delivery.state != action:
            raise Conflict(
                f"This node has already {delivery.state} the message; its first answer stands.",
                debug={"message_id": message_id, "node": node.id},
            )
        if delivery.state != action:
            answered_at, answer_json = self._clock(), canonical_json(document).decode()
            entry = _follow_up(message, node.id, answered_at, action, rules=rules)

            async def record(tx: UnitOfWork) -> None:
                # The first answer is decided in the write itself: only the answer that
                # changed the delivery is logged, so racing answers cannot both stand.
                if await tx.messages.acknowledge(
                    message_id, node.id, answered_at, answer_json, state=action
                ):
                    await self._audit.append(tx, entry)

            await self._writes.run(record)
        async with self._store.read() as view:
            updated = await view.messages.delivery(message_id, node.id)
        assert updated is not None
        if updated.state != action:
            raise Conflict(
                f"This node has already {updated.state} the message; its first answer stands.",
                debug={"message_id": message_id, "node": node.id},
            )
        return _recipient_status(updated)

    async def status(self, node: NodeRecord, message_id: str) -> MessageStatus:
        """Per-recipient tracking, for the sender only (anyone else: as if it were missing)."""
        async with self._store.read() as view:
            message = await view.messages.sent_by(message_id, node.id)
            if message is None:
                raise NotFound(message_id=message_id, node=node.id)
            rows = await view.messages.deliveries(message_id)
        return MessageStatus(
            message_id=message_id,
            received_at=message.received_at,
            recipients=tuple(_recipient_status(r) for r in rows),
        )

    async def inbox(self, node: NodeRecord, *, after: int, limit: int, wait: float) -> InboxPage:
        """Deliveries after the cursor; waits up to ``wait`` seconds when there are none."""
        limit = max(1, min(limit, self._limits.inbox_page_max))
        wait = max(0.0, min(wait, self._limits.inbox_wait_max_seconds))
        loop_deadline = None
        while True:
            async with self._store.read() as view:
                rows = await view.messages.inbox(node.id, after=after, limit=limit)
            if rows or wait <= 0:
                break
            now = asyncio.get_running_loop().time()
            if loop_deadline is None:
                loop_deadline = now + wait
            remaining = loop_deadline - now
            if remaining <= 0:
                break
            # Re-poll at least every second so deliveries accepted by another hub
            # process sharing the database are seen too.
            await self._notifier.wait(node.id, min(remaining, 1.0))
        entries = [
            InboxEntry(
                cursor=r.seq,
                message_id=r.message_id,
                sender=r.sender,
                kind=r.kind,  # type: ignore[arg-type]
                received_at=r.received_at,
                state=r.state,  # type: ignore[arg-type]
                payload_size=r.payload_size,
                transport=r.transport,  # type: ignore[arg-type]
            )
            for r in rows
        ]
        return InboxPage(
            entries=tuple(entries), next_after=entries[-1].cursor if entries else after
        )

    async def directory(self) -> dict[str, Any]:
        """Every node with its keys and status, signed by the hub."""
        async with self._store.read() as view:
            nodes = await view.nodes.list_all()
            keys = await view.node_keys.all_nodes()
        body: dict[str, Any] = {
            "hub_id": self._hub.hub_id,
            "issued_at": rfc3339(self._clock()),
            # With every node's earlier keys, so signatures from before a rotation verify.
            "nodes": directory_entries(nodes, keys),
        }
        body["signature"] = sign_document(body, self._hub.keys.signing, SignatureContext.DIRECTORY)
        return body
