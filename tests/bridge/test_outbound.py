"""Outbound through the real hub, the real gpg and a real SMTP server with STARTTLS.

A Channel chair (the local authority's node) sends a case pack to a panel member who has
no node: a university's safeguarding lead enrolled at the bridge. The pack must reach the
lead's mailbox as PGP/MIME that ``gpg --decrypt`` opens with the lead's own keyring, with
the bridge's good signature, the marking leading the subject and the body, and the PDF
marked on every page; and must not be sent to a revoked or expired key, after the
access expiry, or to a domain that may not carry its marking, each as a visible failure.
"""

from __future__ import annotations

import email
import json
import os
import shutil
import subprocess
from datetime import timedelta
from email.message import Message
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pypdf import PdfReader

from agency_adapters.email_pgp import (
    BridgeStore,
    SmtpTransport,
    add_partner,
    deliver_once,
    disable_partner,
    open_keyring,
    update_partner_key,
)
from agency_adapters.email_pgp.store import Partner
from hub.model.examples import synthetic_case_pack
from hub.policy.registry import Registry, SecureEmailDomain, load_registry
from tests.bridge.conftest import (
    BRIDGE_ADDRESS,
    Bridge,
    GpgHomes,
    GpgUser,
    SmtpServer,
    enrol_at_hub,
    partner_clients,
)
from tests.conftest import HubFixture
from tests.workflows.helpers import LA, POLICE, send
from tests.workflows.test_referral_and_case import case_doc

LEAD = "education.uni-bath"
LEAD_EMAIL = "ada.lead@safeguarding.example.ac.uk"
LEAD_NAME = "Dr Ada Lead (SYNTHETIC)"
LEAD_ORG = "University of Bath (SYNTHETIC)"
MARKING = "OFFICIAL-SENSITIVE - PERSONAL DATA"
CASE = "case-wilts-0001"
PANEL = {
    "chair": LA,
    "members": [{"node": POLICE, "role": "POLICE_PREVENT"}, {"node": LEAD, "role": "EDUCATION"}],
}

pytestmark = pytest.mark.filterwarnings(
    # aiosmtpd's threaded controller closes its loop's transports after the test's
    # loop checks ran; nothing of ours leaks.
    "ignore::ResourceWarning"
)


async def enrol_lead(
    hub: HubFixture, bridge: Bridge, lead: GpgUser, registry: Registry | None = None
) -> Partner:
    partner, public_keys = add_partner(
        bridge.folder,
        bridge.config,
        registry or load_registry(),
        node_id=LEAD,
        email=lead.email,
        name=LEAD_NAME,
        organisation=LEAD_ORG,
        agency_type="education",
        armored_key=lead.export_public(),
        fingerprint=lead.fingerprint,
        now=hub.clock(),
    )
    await enrol_at_hub(hub, public_keys, LEAD, "education")
    # The lead keeps the bridge's public key, to check the bridge's signature.
    lead.import_key(open_keyring(bridge.folder).export_own_public_key())
    return partner


async def send_case_pack(hub: HubFixture, *, days: int = 7) -> str:
    """The chair opens the case with the lead on its panel and sends the lead a pack."""
    async with hub.client(LA) as la:
        await send(la, case_doc("case_open", case=PANEL, recipients=[POLICE, LEAD]))
        await send(
            la, case_doc("consent_record", purpose="CHANNEL_SUPPORT", recipients=[POLICE, LEAD])
        )
        expires = (hub.clock() + timedelta(days=days)).isoformat().replace("+00:00", "Z")
        pack = case_doc("case_pack", access_expires_at=expires, recipients=[LEAD])
        receipt = await send(la, pack, json.loads(synthetic_case_pack(3).model_dump_json()))
    return receipt.message_id


async def run_bridge(
    hub: HubFixture, bridge: Bridge, *, registry: Registry | None = None, later: float = 0
) -> Any:
    return await deliver_once(
        bridge.folder,
        bridge.config,
        registry or load_registry(),
        open_keyring(bridge.folder),
        SmtpTransport(bridge.config.smtp),
        clock=lambda: hub.clock() + timedelta(seconds=later),
        clients=partner_clients(hub),
    )


def pack_mail(smtp: SmtpServer, address: str) -> list[Message]:
    return [m for m in smtp.mailbox.for_address(address) if "Channel case pack" in m["Subject"]]


def drawn_cover_darkness(pdf: bytes, folder: Path) -> float | None:
    """The share of dark pixels on the PDF's first page drawn by pdftoppm (None if absent)."""
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        return None
    (folder / "mailed.pdf").write_bytes(pdf)
    subprocess.run(
        [pdftoppm, "-png", "-r", "50", "-f", "1", "-l", "1", "-singlefile",
         str(folder / "mailed.pdf"), str(folder / "cover")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    with Image.open(folder / "cover.png") as image:
        histogram = image.convert("L").histogram()
    return sum(histogram[:100]) / sum(histogram)


def delivery_of(bridge: Bridge, message_id: str) -> Any:
    with BridgeStore.open(bridge.folder) as store:
        return store.delivery(message_id, LEAD)


async def test_a_case_pack_reaches_the_partner_as_pgp_mime_that_gpg_opens_and_verifies(
    hub: HubFixture, bridge: Bridge, smtp_server: SmtpServer, gpg_homes: GpgHomes, tmp_path: Path
) -> None:
    lead = gpg_homes.user(LEAD_EMAIL)
    await enrol_lead(hub, bridge, lead)
    pack_id = await send_case_pack(hub)

    report = await run_bridge(hub, bridge)
    assert pack_id in report.queued, report
    assert pack_id in report.sent, report
    assert report.failed == []
    assert report.retrying == []

    # The hub saw the partner's node acknowledge the pack.
    async with hub.client(LA) as la:
        status = await la.status(pack_id)
    assert {r.node: r.state for r in status.recipients}[LEAD] == "acknowledged"

    (mail,) = pack_mail(smtp_server, LEAD_EMAIL)
    assert all(smtp_server.mailbox.tls_seen), "every message came over STARTTLS"
    assert mail["From"] == BRIDGE_ADDRESS
    assert mail["Subject"].startswith(MARKING + ":")
    assert LEAD_NAME not in mail["Subject"]
    assert "Sam" not in mail.as_string()
    # RFC 3156 section 4: multipart/encrypted, the version part, then the ciphertext.
    assert mail.get_content_type() == "multipart/encrypted"
    assert mail.get_param("protocol") == "application/pgp-encrypted"
    version, body = mail.get_payload()
    assert version.get_content_type() == "application/pgp-encrypted"
    assert version.get_payload(decode=True).strip() == b"Version: 1"
    assert body.get_content_type() == "application/octet-stream"
    armored = body.get_payload(decode=True)
    assert armored.startswith(b"-----BEGIN PGP MESSAGE-----")

    opened = lead.decrypt(armored)
    assert opened.returncode == 0, opened.stderr
    status_lines = opened.stderr.decode()
    assert "[GNUPG:] DECRYPTION_OKAY" in status_lines
    assert "[GNUPG:] GOODSIG" in status_lines
    assert f"[GNUPG:] VALIDSIG {bridge.fingerprint}" in status_lines or (
        bridge.fingerprint in status_lines and "VALIDSIG" in status_lines
    )

    inner = email.message_from_bytes(opened.stdout)
    text_part, pdf_part = inner.get_payload()
    text = text_part.get_payload(decode=True).decode()
    assert text.splitlines()[0] == MARKING
    assert text.rstrip().splitlines()[-1] == MARKING
    assert f"Dear {LEAD_NAME}," in text
    assert pdf_part.get_content_type() == "application/pdf"
    assert pdf_part.get_filename() == f"case-pack-{CASE}.pdf"
    pdf = pdf_part.get_payload(decode=True)

    pages = PdfReader(BytesIO(pdf)).pages
    assert len(pages) >= 2
    for number, page in enumerate(pages, start=1):
        page_text = page.extract_text()
        assert page_text.count(MARKING) >= 2, f"page {number} lacks its top and bottom marking"
        assert f"Prepared for {LEAD_NAME}, {LEAD_ORG}" in page_text, number
    cover = " ".join(pages[0].extract_text().split())
    expires = delivery_of(bridge, pack_id).queued_at + timedelta(days=7)
    assert f"Access to this pack ends {expires.day} {expires:%B %Y}, " in cover

    darkness = drawn_cover_darkness(pdf, tmp_path)
    if darkness is not None:  # the page is drawn, not only text (poppler-utils)
        assert 0.03 < darkness < 0.5, "the cover is drawn: ink on white, not blank or black"

    delivery = delivery_of(bridge, pack_id)
    assert delivery.state == "sent"
    assert delivery.attempts == 1
    assert delivery.detail.startswith("accepted by 127.0.0.1: ")

    # Nothing decrypted is kept: no file under the bridge's folder holds the PDF or the
    # pack's text (the node store keeps ciphertext only).
    section_text = synthetic_case_pack(3).sections[0].content[:40].encode()
    for path in bridge.folder.root.rglob("*"):
        if path.is_file() and not path.is_socket():
            data = path.read_bytes()
            assert b"%PDF" not in data, path
            assert section_text not in data, path

    # A second run sends nothing again.
    again = await run_bridge(hub, bridge)
    assert again.queued == []
    assert again.sent == []
    assert len(pack_mail(smtp_server, LEAD_EMAIL)) == 1


async def test_a_revoked_partner_key_is_refused_at_send_time_and_shown(
    hub: HubFixture, bridge: Bridge, smtp_server: SmtpServer, gpg_homes: GpgHomes
) -> None:
    lead = gpg_homes.user(LEAD_EMAIL)
    await enrol_lead(hub, bridge, lead)
    # The lead's key is compromised: the lead revokes it and sends the revoked key.
    view = update_partner_key(bridge.folder, LEAD, lead.revoke(), hub.clock())
    assert view.key_state == "revoked"
    pack_id = await send_case_pack(hub)

    report = await run_bridge(hub, bridge)
    assert report.sent == []
    failed = dict(report.failed)
    assert "has been revoked" in failed[pack_id]
    assert smtp_server.mailbox.for_address(LEAD_EMAIL) == []
    delivery = delivery_of(bridge, pack_id)
    assert (delivery.state, delivery.attempts) == ("failed", 1)
    assert "revoked" in delivery.detail


async def test_an_expired_partner_key_is_refused_at_send_time(
    hub: HubFixture, bridge: Bridge, smtp_server: SmtpServer, gpg_homes: GpgHomes
) -> None:
    lead = gpg_homes.user(LEAD_EMAIL, expire="1d")
    await enrol_lead(hub, bridge, lead)
    pack_id = await send_case_pack(hub)

    # Two days on the key has expired; the pack (7 days) has not.
    report = await run_bridge(hub, bridge, later=2 * 24 * 3600)
    assert report.sent == []
    assert "expired at" in dict(report.failed)[pack_id]
    assert smtp_server.mailbox.for_address(LEAD_EMAIL) == []
    assert delivery_of(bridge, pack_id).state == "failed"


async def test_gpg_itself_refuses_a_revoked_key_the_clock_cannot_see(
    hub: HubFixture, bridge: Bridge, gpg_homes: GpgHomes
) -> None:
    """The bridge's own check is not the only one: GnuPG refuses the key too."""
    lead = gpg_homes.user(LEAD_EMAIL)
    partner = await enrol_lead(hub, bridge, lead)
    keyring = open_keyring(bridge.folder)
    keyring.import_partner_key(lead.revoke(), fingerprint=lead.fingerprint, now=hub.clock())
    from hub.crypto.openpgp import PartnerKey, PartnerKeyUnusable

    # Pretend our listing missed the revocation: gpg must still refuse.
    listed = keyring.partner_key(partner.fingerprint)
    assert listed is not None
    assert listed.revoked
    original = keyring.partner_key
    keyring.partner_key = lambda fpr: PartnerKey(fingerprint=fpr, uids=())  # type: ignore[method-assign]
    try:
        with pytest.raises(PartnerKeyUnusable, match="GnuPG refused"):
            keyring.encrypt_for_partner(partner.fingerprint, b"x", now=hub.clock())
    finally:
        keyring.partner_key = original  # type: ignore[method-assign]


async def test_a_case_pack_is_never_sent_after_its_access_expiry(
    hub: HubFixture, bridge: Bridge, smtp_server: SmtpServer, gpg_homes: GpgHomes
) -> None:
    lead = gpg_homes.user(LEAD_EMAIL, expire="1y")
    await enrol_lead(hub, bridge, lead)
    pack_id = await send_case_pack(hub, days=1)

    # The mail server was unreachable until after the access expiry.
    report = await run_bridge(hub, bridge, later=2 * 24 * 3600)
    assert pack_id not in report.sent
    assert "access ended" in dict(report.failed)[pack_id]
    assert smtp_server.mailbox.for_address(LEAD_EMAIL) == []
    delivery = delivery_of(bridge, pack_id)
    assert (delivery.state, delivery.kind) == ("failed", "case_pack")


async def test_a_marking_above_the_domain_s_highest_is_not_sent(
    hub: HubFixture, bridge: Bridge, smtp_server: SmtpServer, gpg_homes: GpgHomes
) -> None:
    lead = gpg_homes.user(LEAD_EMAIL)
    registry = load_registry()
    official_only = registry.model_copy(
        update={
            "secure_email_domains": [
                SecureEmailDomain(
                    domain="example.ac.uk",
                    subdomains=True,
                    highest_marking="OFFICIAL",
                    summary="test: OFFICIAL only",
                    source="test",
                )
            ]
        }
    )
    await enrol_lead(hub, bridge, lead, registry=official_only)
    pack_id = await send_case_pack(hub)

    report = await run_bridge(hub, bridge, registry=official_only)
    assert report.sent == []
    detail = dict(report.failed)[pack_id]
    assert detail.startswith("EM-02: a message marked OFFICIAL-SENSITIVE may not be emailed")
    assert smtp_server.mailbox.for_address(LEAD_EMAIL) == []


async def test_an_smtp_refusal_is_a_visible_failure_and_a_temporary_one_is_retried(
    hub: HubFixture, bridge: Bridge, smtp_server: SmtpServer, gpg_homes: GpgHomes
) -> None:
    lead = gpg_homes.user(LEAD_EMAIL)
    await enrol_lead(hub, bridge, lead)
    smtp_server.mailbox.refuse[LEAD_EMAIL] = "451 4.3.0 mailbox busy, try later"
    pack_id = await send_case_pack(hub)

    first = await run_bridge(hub, bridge)
    assert first.sent == []
    assert "451" in dict(first.retrying)[pack_id]
    delivery = delivery_of(bridge, pack_id)
    assert (delivery.state, delivery.attempts) == ("pending", 1)

    smtp_server.mailbox.refuse[LEAD_EMAIL] = "550 5.1.1 no such mailbox"
    second = await run_bridge(hub, bridge)
    assert "550 5.1.1 no such mailbox" in dict(second.failed)[pack_id]
    delivery = delivery_of(bridge, pack_id)
    assert (delivery.state, delivery.attempts) == ("failed", 2)
    assert smtp_server.mailbox.for_address(LEAD_EMAIL) == []


async def test_a_disabled_partner_gets_nothing_and_its_queue_fails_visibly(
    hub: HubFixture, bridge: Bridge, smtp_server: SmtpServer, gpg_homes: GpgHomes
) -> None:
    lead = gpg_homes.user(LEAD_EMAIL)
    await enrol_lead(hub, bridge, lead)
    smtp_server.mailbox.refuse[LEAD_EMAIL] = "451 4.3.0 try later"
    pack_id = await send_case_pack(hub)
    await run_bridge(hub, bridge)  # queued, not yet sent
    disable_partner(bridge.folder, LEAD, hub.clock())
    del smtp_server.mailbox.refuse[LEAD_EMAIL]

    report = await run_bridge(hub, bridge)
    assert report.sent == []
    assert report.queued == []
    assert delivery_of(bridge, pack_id).detail == "the partner was disabled before it could be sent"
    assert smtp_server.mailbox.for_address(LEAD_EMAIL) == []


async def test_a_server_without_starttls_is_never_sent_to_in_clear(
    hub: HubFixture, bridge: Bridge, gpg_homes: GpgHomes, tmp_path: Path
) -> None:
    from aiosmtpd.controller import Controller

    from agency_adapters.email_pgp import load_bridge_config
    from tests.bridge.conftest import Mailbox, _free_port, write_bridge_toml

    plain = Mailbox()
    port = _free_port()
    controller = Controller(plain, hostname="127.0.0.1", port=port)  # no TLS offered
    controller.start()
    try:
        server = SmtpServer(
            host="127.0.0.1", port=port, ca_file=bridge.config.smtp.ca_file or Path(), mailbox=plain
        )
        config = load_bridge_config(write_bridge_toml(tmp_path / "plain.toml", hub.url, server))
        lead = gpg_homes.user(LEAD_EMAIL)
        await enrol_lead(hub, bridge, lead)
        pack_id = await send_case_pack(hub)
        report = await deliver_once(
            bridge.folder,
            config,
            load_registry(),
            open_keyring(bridge.folder),
            SmtpTransport(config.smtp),
            clock=hub.clock,
            clients=partner_clients(hub),
        )
    finally:
        controller.stop()
    assert report.sent == []
    assert "STARTTLS" in dict(report.retrying)[pack_id]
    assert plain.messages == []


def test_the_bridge_folder_keeps_its_secrets_private(bridge: Bridge) -> None:
    assert os.stat(bridge.folder.passphrase_file).st_mode & 0o077 == 0
    assert os.stat(bridge.folder.gnupg_home).st_mode & 0o077 == 0
    assert os.stat(bridge.folder.database).st_mode & 0o077 == 0


async def test_the_partner_is_reminded_once_before_a_case_pack_s_access_ends(
    hub: HubFixture, bridge: Bridge, smtp_server: SmtpServer, gpg_homes: GpgHomes
) -> None:
    lead = gpg_homes.user(LEAD_EMAIL)
    await enrol_lead(hub, bridge, lead)
    pack_id = await send_case_pack(hub, days=7)
    first = await run_bridge(hub, bridge)
    assert pack_id in first.sent
    assert first.reminded == []  # seven days left: too early

    # Five and a half days on, less than the 48 hours remain.
    later = (5 * 24 + 12) * 3600
    second = await run_bridge(hub, bridge, later=later)
    assert second.reminded == [pack_id]
    reminders = [
        m for m in smtp_server.mailbox.for_address(LEAD_EMAIL) if "ends soon" in m["Subject"]
    ]
    (reminder,) = reminders
    assert reminder["Subject"].startswith(MARKING + ": your access to the case pack")
    opened = lead.decrypt(reminder.get_payload()[1].get_payload(decode=True))
    assert "[GNUPG:] GOODSIG" in opened.stderr.decode()
    text = email.message_from_bytes(opened.stdout).get_payload()[0].get_payload(decode=True)
    assert text.decode().splitlines()[0] == MARKING
    assert f"(message {pack_id}) ends at" in text.decode()
    assert delivery_of(bridge, pack_id).reminded_at is not None

    # Once only.
    third = await run_bridge(hub, bridge, later=later + 3600)
    assert third.reminded == []
    assert len(pack_mail(smtp_server, LEAD_EMAIL)) == 1
