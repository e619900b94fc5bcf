"""Inbound: a partner's signed, encrypted mail becomes a hub message, or is refused.

The bridge's SMTP listener (``hub bridge serve``, aiosmtpd, STARTTLS required) hands each
accepted mail to :func:`receive_mail`, which decides in this order and stops at the
first refusal:

1. **Who.** The envelope sender and the ``From:`` header are the same address, and it is
   an active enrolled partner. Otherwise the mail is refused at SMTP (550) and logged,
   with no reply: the bridge never writes to an address it has no key for.
2. **Encrypted.** The mail is PGP/MIME ``multipart/encrypted`` (RFC 3156 section 4) and
   decrypts with the bridge's key. Plain mail is refused as *unencrypted*.
3. **Signed by the partner.** The decrypted message carries a good signature by the key
   enrolled for that partner (RFC 3156 section 6.2, signed and encrypted in one). No
   signature is *unsigned*; a signature by any other key, or one that does not verify,
   is *forged*.
4. **Structured.** The decrypted MIME message has one ``application/json`` attachment (or
   a body) holding a draft in the format of ``hub node draft`` (the template the bridge
   sends partners; ``schemas/json/draft.schema.json``). Anything else is *malformed*.
5. **Marked within bounds.** The draft's marking is no higher than the partner's mail
   domain may carry (EM-02) and than the hub carries (MK-09): else *over-marked*.
6. **Pre-flight**, as any node runs it (``check_draft_at_node``: the hub's envelope rules
   and the payload rules), then the submission as the partner's node. The bridge fills
   in what a node vouches for: the sender is the partner's node and the author's user id
   is the partner's opaque id; the role is the partner's to give and the rules check it.

Every outcome is recorded in the bridge's ``inbound`` table (``hub bridge inbound``) and
answered by mail signed by the bridge and encrypted to the partner's enrolled key: the
hub's message id when accepted, or the rules broken and what to do. Whatever is
refused leaves nothing in the hub, and nothing decrypted is written anywhere.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.utils import parseaddr
from typing import Final

from pydantic import ValidationError

from agency_adapters.email_pgp.config import BridgeConfig
from agency_adapters.email_pgp.mime import inner_message, pgp_mime_message
from agency_adapters.email_pgp.smtp import MailRefused, MailTransport
from agency_adapters.email_pgp.store import BridgeFolder, BridgeStore, Partner
from agency_adapters.node.checks import check_draft_at_node
from hub.client import HubProblem, NodeClient, NodeProfile, PayloadSource, load_node_profile
from hub.client.errors import ClientError
from hub.crypto.openpgp import OpenPGPError, OpenPGPKeyring
from hub.model import EnvelopeFields, Violation
from hub.model.draft import Draft
from hub.model.jsonio import StrictJSONError, loads_strict, without_comments
from hub.policy.marking import marking_level
from hub.policy.marking_text import resolve_draft_marking
from hub.policy.registry import Registry
from hub.policy.secure_email import domain_entry, email_domain

__all__ = ["InboundOutcome", "receive_mail"]

_log = logging.getLogger("seh.bridge")

Clock = Callable[[], datetime]
ClientFactory = Callable[[NodeProfile], NodeClient]

_RANK: Final = {"OFFICIAL": 0, "OFFICIAL-SENSITIVE": 1, "SECRET": 2, "TOP SECRET": 3}
# A draft by mail is a form, not a document store: larger mail is refused as malformed.
_DRAFT_MAX_BYTES: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class InboundOutcome:
    """What became of one mail: ``accepted`` with the hub's message id, or ``refused``
    (``reason`` one of unknown-sender, unencrypted, unsigned, forged, malformed,
    over-marked, preflight, hub-refused, hub-unreachable) with the rules broken."""

    outcome: str
    reason: str
    partner: str | None
    message_id: str | None = None
    violations: tuple[Violation, ...] = ()
    replied: bool = False

    @property
    def smtp_reply(self) -> str:
        if self.reason == "unknown-sender":
            return "550 5.7.1 not an enrolled partner of this bridge"
        return "250 OK: received; the bridge answers by encrypted mail"


class _Refusal(Exception):
    def __init__(self, reason: str, violations: list[Violation]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.violations = tuple(violations)


def _violation(rule: str, path: str, message: str) -> list[Violation]:
    return [Violation(rule=rule, path=path, message=message)]


def partner_user_ref(partner: Partner) -> str:
    """The opaque author id the bridge vouches for: stable per partner, never the name."""
    digest = hashlib.sha256(f"{partner.node_id}\n{partner.email}".encode()).hexdigest()
    return f"mail-{digest[:16]}"


def _encrypted_part(message: Message) -> bytes:
    if (
        message.get_content_type() != "multipart/encrypted"
        or message.get_param("protocol") != "application/pgp-encrypted"
    ):
        raise _Refusal(
            "unencrypted",
            _violation(
                "EM-03",
                "$.mail",
                "the mail is not OpenPGP encrypted (PGP/MIME, RFC 3156): encrypt it to the "
                "bridge's key and sign it with your own",
            ),
        )
    parts = message.get_payload()
    if not isinstance(parts, list) or len(parts) != 2:
        raise _Refusal(
            "malformed", _violation("EM-05", "$.mail", "a PGP/MIME mail has exactly two parts")
        )
    second = parts[1]
    body = second.get_payload(decode=True) if isinstance(second, Message) else None
    if not isinstance(body, bytes) or b"-----BEGIN PGP MESSAGE-----" not in body:
        raise _Refusal(
            "malformed",
            _violation("EM-05", "$.mail", "the second part holds no OpenPGP message"),
        )
    return body


def _draft_document(inner: Message) -> bytes:
    candidates: list[bytes] = []
    for part in inner.walk():
        if part.is_multipart():
            continue
        content = part.get_payload(decode=True)
        if not isinstance(content, bytes):
            continue
        if part.get_content_type() == "application/json":
            candidates.append(content)
    if not candidates:
        # A body that is itself the JSON draft (a mail client without attachments).
        for part in inner.walk():
            if part.get_content_type() == "text/plain":
                content = part.get_payload(decode=True)
                if isinstance(content, bytes) and content.lstrip().startswith(b"{"):
                    candidates.append(content)
    if len(candidates) != 1:
        raise _Refusal(
            "malformed",
            _violation(
                "EM-05",
                "$.mail",
                f"the mail must carry exactly one draft (a JSON attachment), found "
                f"{len(candidates)}; use the template the bridge sent you",
            ),
        )
    if len(candidates[0]) > _DRAFT_MAX_BYTES:
        raise _Refusal(
            "malformed", _violation("EM-05", "$.draft", "the draft is larger than 1 MiB")
        )
    # The template (hub node draft KIND) keeps its // comments, as hub node submit reads it.
    return without_comments(candidates[0])


def _parse_draft(raw: bytes, registry: Registry) -> Draft:
    try:
        document = loads_strict(raw)
    except StrictJSONError as exc:
        raise _Refusal(
            "malformed", _violation("EM-05", "$.draft", f"the draft is not JSON: {exc}")
        ) from None
    if not isinstance(document, dict):
        raise _Refusal("malformed", _violation("EM-05", "$.draft", "a draft is a JSON object"))
    try:
        draft = Draft.model_validate_json(raw)
    except ValidationError as exc:
        problems = [
            Violation(
                rule="EM-05",
                path="$." + ".".join(str(p) for p in err["loc"]),
                message=str(err["msg"]),
            )
            for err in exc.errors(include_url=False)[:20]
        ]
        raise _Refusal("malformed", problems) from None
    resolution = resolve_draft_marking(draft.envelope, registry)
    if resolution.envelope is None:
        above_hub = any(v.rule in ("MK-09", "MK-13") for v in resolution.violations)
        raise _Refusal("over-marked" if above_hub else "malformed", list(resolution.violations))
    return draft.model_copy(update={"envelope": resolution.envelope})


def _fields_for(draft: Draft, partner: Partner, profile: NodeProfile) -> EnvelopeFields:
    envelope = draft.envelope
    if envelope.sender is not None and envelope.sender != profile.node_id:
        raise _Refusal(
            "malformed",
            _violation(
                "EM-05",
                "$.envelope.sender",
                f"the sender must be your node, {profile.node_id}, or left out",
            ),
        )
    author = envelope.author.model_copy(update={"user_ref": partner_user_ref(partner)})
    return EnvelopeFields.model_validate_json(
        envelope.model_copy(update={"author": author}).model_dump_json(
            exclude={"id", "sender", "created_at"}
        )
    )


def _check_marking(fields: EnvelopeFields, partner: Partner, registry: Registry) -> None:
    level = marking_level(fields.marking)
    if _RANK[level] > _RANK["OFFICIAL-SENSITIVE"]:
        raise _Refusal(
            "over-marked",
            _violation(
                "MK-09",
                "$.envelope.marking",
                f"the hub carries nothing above OFFICIAL-SENSITIVE; {level} material must "
                "never be sent by email or through the hub",
            ),
        )
    entry = domain_entry(registry, partner.email)
    highest = entry.highest_marking if entry is not None else "OFFICIAL"
    if _RANK[level] > _RANK[highest]:
        raise _Refusal(
            "over-marked",
            _violation(
                "EM-02",
                "$.envelope.marking",
                f"mail from your domain may carry at most {highest}; this draft is {level}",
            ),
        )


async def receive_mail(
    raw: bytes,
    *,
    mail_from: str,
    folder: BridgeFolder,
    config: BridgeConfig,
    registry: Registry,
    keyring: OpenPGPKeyring,
    transport: MailTransport,
    clock: Clock,
    clients: ClientFactory,
) -> InboundOutcome:
    """Decide on one mail (module docstring), record it and answer it."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    header_from = parseaddr(str(message.get("From", "")))[1].lower()
    with BridgeStore.open(folder) as store:
        partner = store.partner_by_email(mail_from) if mail_from else None
        if partner is None or partner.status != "active" or header_from != partner.email:
            outcome = InboundOutcome("refused", "unknown-sender", None)
            # The address is kept in the inbound record; the log names only its domain.
            _log.warning(
                "bridge: refused mail from a sender at %s: not an enrolled partner",
                email_domain(mail_from) or "no domain",
            )
            store.record_inbound(
                mail_from, outcome.outcome, outcome.reason, None, "", None, clock()
            )
            return outcome
        try:
            outcome = await _decide(
                raw, message, partner, folder, config, registry, keyring, clock, clients
            )
        except _Refusal as refusal:
            outcome = InboundOutcome(
                "refused", refusal.reason, partner.node_id, violations=refusal.violations
            )
        rules = ",".join(dict.fromkeys(v.rule for v in outcome.violations))
        replied = await _reply(config, keyring, transport, partner, outcome, registry, clock())
        outcome = InboundOutcome(
            outcome.outcome,
            outcome.reason,
            outcome.partner,
            outcome.message_id,
            outcome.violations,
            replied,
        )
        store.record_inbound(
            mail_from,
            outcome.outcome,
            outcome.reason,
            partner.node_id,
            rules,
            outcome.message_id,
            clock(),
        )
    level = logging.INFO if outcome.outcome == "accepted" else logging.WARNING
    _log.log(
        level,
        "bridge: mail from %s %s (%s%s)",
        partner.node_id,
        outcome.outcome,
        outcome.reason,
        f": {rules}" if rules else "",
    )
    return outcome


async def _decide(
    raw: bytes,
    message: Message,
    partner: Partner,
    folder: BridgeFolder,
    config: BridgeConfig,
    registry: Registry,
    keyring: OpenPGPKeyring,
    clock: Clock,
    clients: ClientFactory,
) -> InboundOutcome:
    armored = _encrypted_part(message)
    try:
        opened = keyring.open_from_partner(armored)
    except OpenPGPError:
        raise _Refusal(
            "unencrypted",
            _violation("EM-03", "$.mail", "the mail could not be decrypted with the bridge's key"),
        ) from None
    if opened.signer is None:
        unsigned = opened.signature_problem == "the message is not signed"
        raise _Refusal(
            "unsigned" if unsigned else "forged",
            _violation(
                "EM-04",
                "$.mail.signature",
                "the mail is not signed: sign it with your enrolled OpenPGP key"
                if unsigned
                else f"the signature does not verify ({opened.signature_problem})",
            ),
        )
    if opened.signer != partner.fingerprint:
        raise _Refusal(
            "forged",
            _violation(
                "EM-04",
                "$.mail.signature",
                "the mail is signed by a key that is not the one enrolled for this address",
            ),
        )
    inner = email.message_from_bytes(opened.plaintext, policy=email.policy.compat32)
    draft = _parse_draft(_draft_document(inner), registry)
    profile = load_node_profile(folder.partner_dir(partner.node_id))
    fields = _fields_for(draft, partner, profile)
    _check_marking(fields, partner, registry)
    if draft.payload.content is None:
        raise _Refusal(
            "malformed",
            _violation("EM-05", "$.payload", "a draft by mail carries its payload as 'content'"),
        )
    payload = PayloadSource.json(draft.payload.content, draft.payload.media_type)
    async with clients(profile) as client:
        try:
            problems = await check_draft_at_node(client, fields, payload)
            if problems:
                raise _Refusal("preflight", problems)
            receipt = await client.send(fields, payload, preflight=False)
        except HubProblem as exc:
            raise _Refusal("hub-refused", list(exc.problem.violations)) from None
        except ClientError as exc:
            _log.warning("bridge: the hub could not be reached for %s: %s", partner.node_id, exc)
            raise _Refusal("hub-unreachable", []) from None
    return InboundOutcome("accepted", "accepted", partner.node_id, message_id=receipt.message_id)


_ADVICE: Final = {
    "unencrypted": "Encrypt your mail to the bridge's OpenPGP key (PGP/MIME) and sign it.",
    "unsigned": "Sign your mail with the OpenPGP key you enrolled, and encrypt it.",
    "forged": (
        "The mail was not signed with the key enrolled for your address. If you did not send "
        "it, tell the bridge's operator: someone may be using your address."
    ),
    "malformed": "Fill in the draft template the bridge sent you and attach it as JSON.",
    "over-marked": (
        "Do not send material above the marking your mail domain may carry, and never "
        "anything above OFFICIAL-SENSITIVE."
    ),
    "preflight": "Correct each rule named below in the draft and send it again.",
    "hub-refused": "Correct each rule named below in the draft and send it again.",
    "hub-unreachable": "Nothing was sent; send the same mail again later.",
}


async def _reply(
    config: BridgeConfig,
    keyring: OpenPGPKeyring,
    transport: MailTransport,
    partner: Partner,
    outcome: InboundOutcome,
    registry: Registry,
    now: datetime,
) -> bool:
    entry = domain_entry(registry, partner.email)
    marking = entry.highest_marking if entry is not None else "OFFICIAL"
    if outcome.outcome == "accepted":
        subject = f"{marking}: your message was accepted by the hub"
        lines = [
            marking,
            "",
            f"Dear {partner.name},",
            "",
            f"Your message reached the Safeguarding Exchange Hub as message {outcome.message_id}.",
            "Its recipients will see it in their inboxes.",
        ]
    else:
        subject = f"{marking}: your message was refused and did not reach the hub"
        lines = [
            marking,
            "",
            f"Dear {partner.name},",
            "",
            f"The bridge refused your message ({outcome.reason}); nothing of it reached the hub.",
            _ADVICE.get(outcome.reason, ""),
            "",
            *(f"- {v.rule} at {v.path}: {v.message}" for v in outcome.violations),
        ]
    lines += ["", config.name, "", marking]
    try:
        armored = keyring.encrypt_for_partner(
            partner.fingerprint, inner_message("\n".join(lines) + "\n"), now=now
        )
        mail = pgp_mime_message(
            sender=config.address,
            recipient=partner.email,
            subject=subject,
            armored=armored,
            date=now,
        )
        await transport.send(mail, sender=config.address, recipient=partner.email)
    except (OpenPGPError, MailRefused) as exc:
        _log.warning("bridge: could not answer %s: %s", partner.node_id, exc)
        return False
    return True
