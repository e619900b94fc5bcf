"""Outbound: what arrives at the hub for a partner leaves the bridge as PGP/MIME mail.

One run (:func:`deliver_once`; ``hub bridge serve`` repeats it) does two things:

1. For every *active* partner, the partner's node syncs its inbox exactly as any node
   does (``agency_adapters.node.sync``): fetch, verify the sender's signature and the
   hub's receipt, check the payload against its kind and envelope, acknowledge or reject
   at the hub, keep the ciphertext. Each acknowledged message is queued for mailing
   (``agency_adapters.email_pgp.store`` explains the queue).
2. Every queued delivery is attempted. Before anything is decrypted the bridge refuses,
   as a ``failed`` delivery with the reason: a partner disabled since; a case pack whose
   access expiry has passed (it is never sent after it; DESIGN.md section 6); a marking
   above what the partner's mail domain may carry (EM-02); a partner key that is revoked
   or expired. Otherwise the payload is opened in memory, the mail built (a case pack as
   the console's PDF, ``agency_adapters.node.casepack_pdf``, prepared for the partner by
   name), signed and encrypted to the partner's key, and handed to SMTP over STARTTLS.
   The SMTP server's reply is recorded as ``sent``; a permanent refusal is ``failed``; a
   temporary one stays ``pending`` for the next run. Each failure is logged at WARNING
   with the message id, partner and reason (never content).

Nothing decrypted is written anywhere: the payload, the PDF and the inner mail exist only
in memory for the one send, and what the partner's node keeps is the ciphertext that
arrived (purged at the case pack's expiry like on any node).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Final

from pydantic import ValidationError

from agency_adapters.email_pgp.config import BridgeConfig
from agency_adapters.email_pgp.mime import Attachment, inner_message, pgp_mime_message
from agency_adapters.email_pgp.smtp import MailRefused, MailTransport
from agency_adapters.email_pgp.store import BridgeFolder, BridgeStore, Delivery, Partner
from agency_adapters.node.casepack_pdf import CasePackRenderError, render_case_pack_pdf
from agency_adapters.node.store import NodeStore, NodeStoreError, StoredMessage, open_node_store
from agency_adapters.node.sync import sync_inbox
from hub.client import HubProblem, NodeClient, NodeProfile, load_node_profile
from hub.client.errors import ClientError
from hub.crypto.openpgp import OpenPGPError, OpenPGPKeyring, PartnerKeyUnusable
from hub.model import Envelope
from hub.model.payloads import CasePackPayload
from hub.policy.registry import Registry
from hub.policy.secure_email import email_transport_violations

__all__ = ["ClientFactory", "DeliveryReport", "default_clients", "deliver_once", "mail_for"]

_log = logging.getLogger("seh.bridge")

Clock = Callable[[], datetime]
ClientFactory = Callable[[NodeProfile], NodeClient]

# A partner is reminded this long before a case pack's access ends, to delete it then
# (issue 11; the period is LOCAL POLICY: the sources set none).
REMINDER_BEFORE: Final = timedelta(hours=48)

# Larger payloads do not go by email (most mail systems refuse messages over 10-25 MB,
# and base64 and armour add about a third).
MAIL_PAYLOAD_MAX_BYTES: Final = 8 << 20

_KIND_LABELS: Final = {
    "referral": "Prevent referral",
    "referral_outcome": "Referral outcome",
    "information_request": "Information request",
    "decision": "Decision on an information request",
    "release": "Information released",
    "case_open": "Channel case opened",
    "consent_record": "Consent record",
    "case_pack": "Channel case pack",
    "panel_outcome": "Channel panel outcome",
    "case_review": "Channel case review",
    "withdrawal": "Withdrawal",
    "note": "Note",
}


@dataclass
class DeliveryReport:
    """What one run did: queued message ids, and each attempt's outcome."""

    queued: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    retrying: list[tuple[str, str]] = field(default_factory=list)
    sync_errors: list[tuple[str, str]] = field(default_factory=list)
    reminded: list[str] = field(default_factory=list)


def _utc(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"{utc.day} {utc:%B %Y}, {utc:%H:%M} UTC"  # GOV.UK style: 7 December 2026


def default_clients(config: BridgeConfig) -> ClientFactory:
    """Partners' node clients on the hub ``config`` names, its key pinned."""

    def build(profile: NodeProfile) -> NodeClient:
        return NodeClient(
            hub_url=config.hub.url,
            node_id=profile.node_id,
            keys=profile.load_keys(),
            hub_signing_key=config.hub.signing_key,
            spool_dir=profile.spool_dir,
        )

    return build


async def deliver_once(
    folder: BridgeFolder,
    config: BridgeConfig,
    registry: Registry,
    keyring: OpenPGPKeyring,
    transport: MailTransport,
    *,
    clock: Clock,
    clients: ClientFactory | None = None,
) -> DeliveryReport:
    """Sync every active partner's inbox, then attempt every queued delivery."""
    report = DeliveryReport()
    build = clients or default_clients(config)
    with BridgeStore.open(folder) as store:
        for partner in store.partners():
            if partner.status != "active":
                continue
            try:
                await _sync_partner(folder, store, partner, build, clock, report)
            except (ClientError, HubProblem, NodeStoreError, OSError) as exc:
                # The hub is unreachable or refused this node: nothing was acknowledged,
                # so nothing is lost; the next run tries again.
                _log.warning("bridge: could not sync %s: %s", partner.node_id, exc)
                report.sync_errors.append((partner.node_id, str(exc)))
        for delivery in store.pending():
            await _attempt(
                folder, config, registry, keyring, transport, store, delivery, build, clock, report
            )
        for delivery in store.sent_case_packs_not_reminded():
            await _remind(folder, config, keyring, transport, store, delivery, clock, report)
    return report


async def _remind(
    folder: BridgeFolder,
    config: BridgeConfig,
    keyring: OpenPGPKeyring,
    transport: MailTransport,
    store: BridgeStore,
    delivery: Delivery,
    clock: Clock,
    report: DeliveryReport,
) -> None:
    """Remind the partner, once, when a sent case pack's access is about to end.

    The reminder holds no content of the pack: its reference, when access ends and what
    to do. It goes signed and encrypted like everything else; if it cannot go now (the
    key was revoked since, the server refused it) it is logged and tried on the next run.
    """
    partner = store.partner(delivery.node_id)
    if partner is None or partner.status != "active":
        return
    with open_node_store(load_node_profile(folder.partner_dir(partner.node_id))) as node_store:
        stored = node_store.get(delivery.message_id)
    now = clock()
    expiry = None if stored is None else stored.access_expires_at
    if stored is None or expiry is None or expiry <= now:
        store.mark_reminded(delivery, now)  # nothing left to remind of
        return
    if now < expiry - REMINDER_BEFORE:
        return
    marking = stored.marking
    reference = stored.case_ref or stored.id
    body = "\n".join(
        [
            marking,
            "",
            f"Dear {partner.name},",
            "",
            f"Your access to the Channel case pack for case {reference} (message "
            f"{stored.id}) ends at {_utc(expiry)}. By then, delete the PDF and the email "
            "that brought it, and any copy you made.",
            "",
            config.name,
            "",
            marking,
        ]
    )
    try:
        armored = keyring.encrypt_for_partner(
            partner.fingerprint, inner_message(body + "\n"), now=now
        )
        mail = pgp_mime_message(
            sender=config.address,
            recipient=partner.email,
            subject=f"{marking}: your access to the case pack, reference {reference}, ends soon",
            armored=armored,
            date=now,
        )
        await transport.send(mail, sender=config.address, recipient=partner.email)
    except (OpenPGPError, MailRefused) as exc:
        _log.warning("bridge: could not remind %s of %s: %s", partner.node_id, stored.id, exc)
        return
    store.mark_reminded(delivery, now)
    report.reminded.append(stored.id)


async def _sync_partner(
    folder: BridgeFolder,
    store: BridgeStore,
    partner: Partner,
    build: ClientFactory,
    clock: Clock,
    report: DeliveryReport,
) -> None:
    profile = load_node_profile(folder.partner_dir(partner.node_id))
    async with build(profile) as client:
        with open_node_store(profile) as node_store:
            results = await sync_inbox(client, profile, node_store, now=clock())
            for result in results:
                if result.state != "acknowledged" or result.answered_before:
                    continue
                stored = node_store.get(result.message_id)
                if stored is None:
                    continue
                if store.queue(
                    message_id=stored.id,
                    node_id=partner.node_id,
                    kind=stored.kind,
                    marking=stored.marking,
                    now=clock(),
                ):
                    report.queued.append(stored.id)


def _fail(
    store: BridgeStore, delivery: Delivery, detail: str, clock: Clock, report: DeliveryReport
) -> None:
    _log.warning(
        "bridge: delivery of %s to %s failed: %s", delivery.message_id, delivery.node_id, detail
    )
    store.finish(delivery, "failed", detail, clock())
    report.failed.append((delivery.message_id, detail))


async def _attempt(
    folder: BridgeFolder,
    config: BridgeConfig,
    registry: Registry,
    keyring: OpenPGPKeyring,
    transport: MailTransport,
    store: BridgeStore,
    delivery: Delivery,
    build: ClientFactory,
    clock: Clock,
    report: DeliveryReport,
) -> None:
    partner = store.partner(delivery.node_id)
    if partner is None or partner.status != "active":
        _fail(store, delivery, "the partner was disabled before it could be sent", clock, report)
        return
    profile = load_node_profile(folder.partner_dir(partner.node_id))
    with open_node_store(profile) as node_store:
        stored = node_store.get(delivery.message_id)
        if stored is None:
            _fail(store, delivery, "the message is no longer kept at the bridge", clock, report)
            return
        now = clock()
        refusal = _refusal_before_opening(registry, keyring, partner, stored, now)
        if refusal is not None:
            _fail(store, delivery, refusal, clock, report)
            return
        try:
            message = await _build_mail(
                config, keyring, partner, node_store, profile, stored, build, now
            )
        except PartnerKeyUnusable as exc:
            _fail(store, delivery, str(exc), clock, report)
            return
        except (NodeStoreError, CasePackRenderError, OpenPGPError, ValidationError) as exc:
            _fail(store, delivery, f"the mail could not be built: {exc}", clock, report)
            return
    try:
        reply = await transport.send(message, sender=config.address, recipient=partner.email)
    except MailRefused as exc:
        if exc.permanent:
            _fail(store, delivery, str(exc), clock, report)
        else:
            _log.warning(
                "bridge: delivery of %s to %s will be retried: %s",
                delivery.message_id,
                delivery.node_id,
                exc,
            )
            store.finish(delivery, "pending", str(exc), clock())
            report.retrying.append((delivery.message_id, str(exc)))
        return
    store.finish(delivery, "sent", f"accepted {reply}", clock())
    report.sent.append(delivery.message_id)
    _log.info("bridge: sent %s to %s", delivery.message_id, delivery.node_id)


def _refusal_before_opening(
    registry: Registry,
    keyring: OpenPGPKeyring,
    partner: Partner,
    stored: StoredMessage,
    now: datetime,
) -> str | None:
    if stored.kind == "case_pack":
        expiry = stored.access_expires_at
        if expiry is None or expiry <= now or stored.purged_at is not None:
            when = "its access expiry" if expiry is None else _utc(expiry)
            return f"the case pack's access ended at {when} before it could be sent; not sent"
    envelope = stored.envelope
    problems = email_transport_violations(registry, partner.email, envelope.marking)
    if problems:
        return f"{problems[0].rule}: {problems[0].message}"
    key = keyring.partner_key(partner.fingerprint)
    if key is None:
        return f"the partner's OpenPGP key {partner.fingerprint} is missing from the keyring"
    return key.unusable_reason(now)


async def _build_mail(
    config: BridgeConfig,
    keyring: OpenPGPKeyring,
    partner: Partner,
    node_store: NodeStore,
    profile: NodeProfile,
    stored: StoredMessage,
    build: ClientFactory,
    now: datetime,
) -> Message:
    if stored.size > MAIL_PAYLOAD_MAX_BYTES:
        raise NodeStoreError(
            f"the payload is {stored.size} bytes, more than the {MAIL_PAYLOAD_MAX_BYTES} "
            "that go by email; the partner needs a node for it"
        )
    keys = profile.load_keys()
    plaintext = node_store.open_payload(stored.id, keys, profile.node_id)
    sender = stored.sender
    async with build(profile) as client:
        try:
            entry = (await client.directory()).get(sender)
        except (ClientError, HubProblem):
            entry = None
    sender_name = entry.display_name if entry is not None else sender
    return mail_for(
        config,
        keyring,
        partner,
        stored.envelope,
        plaintext,
        sender_name=sender_name,
        now=now,
    )


def mail_for(
    config: BridgeConfig,
    keyring: OpenPGPKeyring,
    partner: Partner,
    envelope: Envelope,
    plaintext: bytes,
    *,
    sender_name: str,
    now: datetime,
) -> Message:
    """The PGP/MIME mail carrying one message to ``partner`` (built in memory)."""
    marking = envelope.marking.render()
    label = _KIND_LABELS.get(envelope.kind, envelope.kind)
    reference = envelope.case_ref or envelope.subject_ref or envelope.id
    attachments: list[Attachment] = []
    lines = [
        marking,
        "",
        f"Dear {partner.name},",
        "",
        f"{sender_name} has sent you a {label.lower()} through the Safeguarding Exchange "
        f"Hub, reference {reference}. It is protectively marked {marking}: keep it to the "
        "people who need it for this case, do not forward it outside your organisation, "
        "and store it only where your organisation allows information at this marking.",
        "",
    ]
    if envelope.kind == "case_pack":
        expiry = envelope.access_expires_at
        assert expiry is not None  # the hub refuses a case pack without one (WF-10)
        pack = CasePackPayload.model_validate_json(plaintext)
        pdf = render_case_pack_pdf(
            pack,
            marking=marking,
            reader_name=partner.name,
            reader_organisation=partner.organisation,
            case_ref=envelope.case_ref or reference,
            message_id=envelope.id,
            access_expires_at=expiry,
            generated_at=now,
        )
        attachments.append(
            Attachment(f"case-pack-{envelope.case_ref or 'channel'}.pdf", "application/pdf", pdf)
        )
        lines += [
            f"The case pack is attached as a PDF prepared for you. Your access to it ends at "
            f"{_utc(expiry)}: after that, delete the PDF and this email, and do not keep "
            "copies. Bring it to the panel meeting; do not print more copies than you need.",
            "",
        ]
    else:
        attachments.append(
            Attachment(
                f"{envelope.kind}-{envelope.id}.json",
                "application/json",
                json.dumps(json.loads(plaintext), indent=2, ensure_ascii=False).encode("utf-8")
                if envelope.payload.media_type.endswith("json")
                else plaintext,
            )
        )
        lines += ["The message is attached as a structured (JSON) document.", ""]
    lines += [
        f"Message id: {envelope.id}",
        "",
        f"To answer, reply to {config.address} with mail signed with your enrolled OpenPGP "
        "key and encrypted to the bridge's key. Mail that is not signed and encrypted is "
        "refused and does not reach the hub.",
        "",
        f"{config.name}",
        "",
        marking,
    ]
    inner = inner_message("\n".join(lines) + "\n", attachments)
    armored = keyring.encrypt_for_partner(partner.fingerprint, inner, now=now)
    return pgp_mime_message(
        sender=config.address,
        recipient=partner.email,
        subject=f"{marking}: {label}, reference {reference}",
        armored=armored,
        date=now,
    )
