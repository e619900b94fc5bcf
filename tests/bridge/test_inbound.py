"""Inbound: a partner's signed, encrypted referral becomes a hub message; the rest is refused.

The university's safeguarding lead, enrolled at the bridge, refers a student by mail: a
draft in the bridge's template, signed with the lead's key and encrypted to the bridge's,
made with the real ``gpg``. It must reach the local authority and the police as a hub
message. Unsigned, forged, unencrypted, over-marked and malformed mail must be refused
with a signed, encrypted reply the lead can open, recorded, and leave nothing in the hub.
"""

from __future__ import annotations

import copy
import email
import json
from datetime import UTC, datetime, timedelta
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from agency_adapters.email_pgp import BridgeStore, SmtpTransport, open_keyring
from agency_adapters.email_pgp.config import ListenSettings
from agency_adapters.email_pgp.inbound import InboundOutcome, partner_user_ref, receive_mail
from agency_adapters.email_pgp.listener import start_listener
from agency_adapters.email_pgp.mime import pgp_mime_message
from agency_adapters.email_pgp.store import Partner
from hub.model.examples import synthetic_referral_form
from hub.policy.registry import Registry, SecureEmailDomain, load_registry
from tests.bridge.conftest import (
    BRIDGE_ADDRESS,
    Bridge,
    GpgHomes,
    GpgUser,
    SmtpServer,
    _free_port,
    partner_clients,
    run_gpg,
)
from tests.bridge.test_outbound import LEAD, LEAD_EMAIL, enrol_lead
from tests.conftest import REFERRAL_CONSENT, HubFixture
from tests.workflows.helpers import LA, POLICE

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

REFERRAL_DRAFT: dict[str, Any] = {
    "envelope": {
        "kind": "referral",
        "author": {"user_ref": "u-anything", "role": "SAFEGUARDING_LEAD", "vetting": "BPSS"},
        "recipients": [LA, POLICE],
        "marking": "OFFICIAL-SENSITIVE",
        "subject_ref": "subj-uni-0001",
        "purpose": "PREVENT_REFERRAL",
        "legal_basis": {
            "powers": ["CDA1998-s115"],
            "art6": "UKGDPR-A6-1e",
            "art9": "UKGDPR-A9-2g",
            "sch1": "DPA2018-S1P2p18",
        },
        "consent": REFERRAL_CONSENT,
    },
    "payload": {"content": json.loads(synthetic_referral_form(5).model_dump_json())},
}


def partner_mail(
    sender: GpgUser,
    bridge: Bridge,
    draft: Any = REFERRAL_DRAFT,
    *,
    sign_with: GpgUser | None = None,
    sign: bool = True,
    encrypt: bool = True,
    from_address: str | None = None,
) -> bytes:
    """Mail as a partner's mail client makes it, with the partner's own gpg."""
    inner = MIMEMultipart("mixed")
    inner.attach(MIMEText("OFFICIAL-SENSITIVE\n\nA referral, attached.\n", "plain", "utf-8"))
    content = draft if isinstance(draft, bytes) else json.dumps(draft).encode()
    attachment = MIMEApplication(content, "json")
    attachment.add_header("Content-Disposition", "attachment", filename="referral.json")
    inner.attach(attachment)
    address = from_address or sender.email
    if not encrypt:
        inner["From"], inner["To"], inner["Subject"] = address, BRIDGE_ADDRESS, "OFFICIAL-SENSITIVE"
        return inner.as_bytes(policy=SMTP_POLICY)
    signer = sign_with or sender
    args = ["--armor", "--trust-model", "always", "--encrypt", "-r", bridge.fingerprint]
    if sign:
        args += ["--sign", "-u", signer.fingerprint]
    made = run_gpg(signer.home, *args, data=inner.as_bytes(policy=SMTP_POLICY))
    assert made.returncode == 0, made.stderr
    outer = pgp_mime_message(
        sender=address,
        recipient=BRIDGE_ADDRESS,
        subject="OFFICIAL-SENSITIVE: referral",
        armored=made.stdout,
        date=datetime.now(UTC),
    )
    return outer.as_bytes(policy=SMTP_POLICY)


async def lead_ready(
    hub: HubFixture, bridge: Bridge, gpg_homes: GpgHomes
) -> tuple[GpgUser, Partner]:
    lead = gpg_homes.user(LEAD_EMAIL)
    partner = await enrol_lead(hub, bridge, lead)
    return lead, partner


async def receive(
    hub: HubFixture,
    bridge: Bridge,
    raw: bytes,
    mail_from: str = LEAD_EMAIL,
    registry: Registry | None = None,
) -> InboundOutcome:
    return await receive_mail(
        raw,
        mail_from=mail_from,
        folder=bridge.folder,
        config=bridge.config,
        registry=registry or load_registry(),
        keyring=open_keyring(bridge.folder),
        transport=SmtpTransport(bridge.config.smtp),
        clock=hub.clock,
        clients=partner_clients(hub),
    )


def reply_to(lead: GpgUser, smtp: SmtpServer) -> str:
    """The one reply the lead got, opened with the lead's gpg; its signature checked."""
    (mail,) = smtp.mailbox.for_address(lead.email)
    assert mail["From"] == BRIDGE_ADDRESS
    assert mail.get_content_type() == "multipart/encrypted"
    opened = lead.decrypt(mail.get_payload()[1].get_payload(decode=True))
    assert opened.returncode == 0, opened.stderr
    assert "[GNUPG:] GOODSIG" in opened.stderr.decode()
    body = email.message_from_bytes(opened.stdout).get_payload()[0].get_payload(decode=True)
    return f"{mail['Subject']}\n{body.decode()}"


async def inbox_kinds(hub: HubFixture, node: str) -> list[str]:
    async with hub.client(node) as client:
        page = await client.inbox(after=0, limit=100)
    return [entry.kind for entry in page.entries]


async def test_a_signed_encrypted_referral_reaches_the_la_and_the_police(
    hub: HubFixture, bridge: Bridge, smtp_server: SmtpServer, gpg_homes: GpgHomes
) -> None:
    lead, partner = await lead_ready(hub, bridge, gpg_homes)
    # Filled in from the template (hub node draft referral), its // comments kept.
    filled = b"// The referral, from the bridge's template\n" + json.dumps(REFERRAL_DRAFT).encode()
    outcome = await receive(hub, bridge, partner_mail(lead, bridge, filled))
    assert (outcome.outcome, outcome.reason) == ("accepted", "accepted"), outcome.violations
    assert outcome.message_id is not None
    assert outcome.replied

    for node in (LA, POLICE):
        async with hub.client(node) as client:
            message = await client.fetch(outcome.message_id)
            envelope = message.envelope
            assert (envelope.kind, envelope.sender) == ("referral", LEAD)
            # The bridge vouches for the author: the partner's opaque id, the role given.
            assert envelope.author.user_ref == partner_user_ref(partner)
            assert envelope.author.role == "SAFEGUARDING_LEAD"
            assert envelope.marking.sensitive
            assert envelope.marking_text == "OFFICIAL-SENSITIVE"
            payload = json.loads(await client.open_payload(message))
        assert payload == REFERRAL_DRAFT["payload"]["content"]

    reply = reply_to(lead, smtp_server)
    assert reply.startswith("OFFICIAL-SENSITIVE: your message was accepted by the hub")
    assert outcome.message_id in reply
    with BridgeStore.open(bridge.folder) as store:
        (record,) = store.inbound()
    assert (record.outcome, record.node_id, record.message_id) == (
        "accepted",
        LEAD,
        outcome.message_id,
    )


def _mutated(**envelope_changes: Any) -> dict[str, Any]:
    draft = copy.deepcopy(REFERRAL_DRAFT)
    draft["envelope"].update(envelope_changes)
    return draft


@pytest.mark.parametrize(
    ("case", "reason", "rule"),
    [
        ("unsigned", "unsigned", "EM-04"),
        ("forged", "forged", "EM-04"),
        ("unencrypted", "unencrypted", "EM-03"),
        ("over-marked", "over-marked", "MK-09"),
        ("not json", "malformed", "EM-05"),
        ("not a draft", "malformed", "EM-05"),
        ("breaks a rule", "preflight", "WF-01"),
    ],
)
async def test_bad_mail_is_refused_with_a_reply_and_leaves_nothing_in_the_hub(
    hub: HubFixture,
    bridge: Bridge,
    smtp_server: SmtpServer,
    gpg_homes: GpgHomes,
    case: str,
    reason: str,
    rule: str,
) -> None:
    lead, _ = await lead_ready(hub, bridge, gpg_homes)
    if case == "unsigned":
        raw = partner_mail(lead, bridge, sign=False)
    elif case == "forged":
        forger = gpg_homes.user("forger@example.ac.uk")
        forger.import_key(open_keyring(bridge.folder).export_own_public_key())
        raw = partner_mail(lead, bridge, sign_with=forger, from_address=LEAD_EMAIL)
    elif case == "unencrypted":
        raw = partner_mail(lead, bridge, encrypt=False)
    elif case == "over-marked":
        raw = partner_mail(lead, bridge, _mutated(marking="SECRET"))
    elif case == "not json":
        raw = partner_mail(lead, bridge, b"Dear bridge, please refer Sam.")
    elif case == "not a draft":
        raw = partner_mail(lead, bridge, {"referral": "Sam"})
    else:  # the police alone: a Prevent referral always goes to the local authority
        raw = partner_mail(lead, bridge, _mutated(recipients=[POLICE]))

    outcome = await receive(hub, bridge, raw)
    assert (outcome.outcome, outcome.reason) == ("refused", reason)
    assert rule in {v.rule for v in outcome.violations}
    assert outcome.message_id is None
    assert outcome.replied

    reply = reply_to(lead, smtp_server)
    assert reply.startswith("OFFICIAL-SENSITIVE: your message was refused")
    assert f"({reason})" in reply
    assert f"- {rule} at " in reply

    assert await inbox_kinds(hub, LA) == []
    assert await inbox_kinds(hub, POLICE) == []
    with BridgeStore.open(bridge.folder) as store:
        (record,) = store.inbound()
    assert (record.outcome, record.reason) == ("refused", reason)
    assert rule in record.rules.split(",")


async def test_mail_above_what_the_domain_may_carry_is_over_marked(
    hub: HubFixture, bridge: Bridge, smtp_server: SmtpServer, gpg_homes: GpgHomes
) -> None:
    registry = load_registry()
    official_only = registry.model_copy(
        update={
            "secure_email_domains": [
                SecureEmailDomain(
                    domain="example.ac.uk",
                    subdomains=True,
                    highest_marking="OFFICIAL",
                    summary="test",
                    source="test",
                )
            ]
        }
    )
    lead = gpg_homes.user(LEAD_EMAIL)
    await enrol_lead(hub, bridge, lead, registry=official_only)
    outcome = await receive(hub, bridge, partner_mail(lead, bridge), registry=official_only)
    assert (outcome.outcome, outcome.reason) == ("refused", "over-marked")
    assert [v.rule for v in outcome.violations] == ["EM-02"]
    # The reply itself is marked no higher than the domain may carry.
    assert reply_to(lead, smtp_server).startswith("OFFICIAL: your message was refused")
    assert await inbox_kinds(hub, LA) == []


async def test_mail_from_an_address_that_is_not_a_partner_is_refused_without_a_reply(
    hub: HubFixture,
    bridge: Bridge,
    smtp_server: SmtpServer,
    gpg_homes: GpgHomes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    lead, _ = await lead_ready(hub, bridge, gpg_homes)
    stranger = "someone@elsewhere.example.ac.uk"
    outcome = await receive(
        hub, bridge, partner_mail(lead, bridge, from_address=stranger), mail_from=stranger
    )
    assert (outcome.outcome, outcome.reason) == ("refused", "unknown-sender")
    assert outcome.smtp_reply.startswith("550 ")
    assert smtp_server.mailbox.messages == []
    # The log names the sender's domain, never the address (personal data).
    refusals = [
        r.getMessage() for r in caplog.records if "not an enrolled partner" in r.getMessage()
    ]
    assert refusals
    assert all("elsewhere.example.ac.uk" in m and "someone" not in m for m in refusals)
    # The envelope sender must match From: too.
    mismatch = await receive(hub, bridge, partner_mail(lead, bridge, from_address=stranger))
    assert mismatch.reason == "unknown-sender"
    assert await inbox_kinds(hub, LA) == []


async def test_the_listener_takes_mail_over_starttls_only(
    hub: HubFixture, bridge: Bridge, smtp_server: SmtpServer, gpg_homes: GpgHomes, tmp_path: Path
) -> None:
    lead, _ = await lead_ready(hub, bridge, gpg_homes)
    cert, key = smtp_server.ca_file, smtp_server.ca_file.with_name("smtp-key.pem")
    settings = ListenSettings(host="127.0.0.1", port=_free_port(), cert_file=cert, key_file=key)

    async def process(raw: bytes, mail_from: str) -> InboundOutcome:
        return await receive(hub, bridge, raw, mail_from=mail_from)

    server = await start_listener(settings, process)
    try:
        import ssl

        tls = ssl.create_default_context(cafile=str(cert))
        raw = partner_mail(lead, bridge)
        with pytest.raises(aiosmtplib.SMTPResponseException) as plain:
            await aiosmtplib.send(
                raw, sender=LEAD_EMAIL, recipients=[BRIDGE_ADDRESS], hostname="127.0.0.1",
                port=settings.port, start_tls=False, timeout=10,
            )  # fmt: skip
        assert plain.value.code == 530  # "Must issue a STARTTLS command first"
        _, reply = await aiosmtplib.send(
            raw, sender=LEAD_EMAIL, recipients=[BRIDGE_ADDRESS], hostname="127.0.0.1",
            port=settings.port, start_tls=True, tls_context=tls, timeout=30,
        )  # fmt: skip
    finally:
        server.close()
        await server.wait_closed()
    assert reply.startswith("OK: received")
    assert await inbox_kinds(hub, LA) == ["referral"]
    assert (hub.clock() - timedelta(minutes=1)) < hub.clock()


async def test_mail_signed_by_another_enrolled_partner_is_forged(
    hub: HubFixture, bridge: Bridge, smtp_server: SmtpServer, gpg_homes: GpgHomes
) -> None:
    """A key the bridge knows and trusts for someone else does not vouch for this address."""
    from agency_adapters.email_pgp import add_partner

    lead, _ = await lead_ready(hub, bridge, gpg_homes)
    mentor = gpg_homes.user("mentor@mentoring.example.ac.uk")
    add_partner(
        bridge.folder,
        bridge.config,
        load_registry(),
        node_id="voluntary.mentoring",
        email=mentor.email,
        name="A Mentor (SYNTHETIC)",
        organisation="Mentoring (SYNTHETIC)",
        agency_type="voluntary",
        armored_key=mentor.export_public(),
        fingerprint=mentor.fingerprint,
        now=hub.clock(),
    )
    mentor.import_key(open_keyring(bridge.folder).export_own_public_key())
    raw = partner_mail(lead, bridge, sign_with=mentor, from_address=LEAD_EMAIL)
    outcome = await receive(hub, bridge, raw)
    assert (outcome.outcome, outcome.reason) == ("refused", "forged")
    assert "not the one enrolled for this address" in outcome.violations[0].message
    # The reply goes to the address's enrolled partner, encrypted to the lead's key.
    assert "someone may be using your address" in reply_to(lead, smtp_server)
    assert await inbox_kinds(hub, LA) == []
