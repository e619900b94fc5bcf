"""The demo's partners on email: a university safeguarding lead and a Channel mentor.

``hub demo`` sets up an email bridge for the local authority (``DIR/bridge``) with two
partners who have no node, each with an INSECURE demo OpenPGP key in a GnuPG home of
their own (``DIR/mail/<who>/gnupg``, made with the real ``gpg``). Then:

- the university's safeguarding lead emails a signed, encrypted referral of a student;
  the bridge verifies, decrypts and pre-flights it and submits it as the lead's node, and
  the local authority and the police receive it;
- the local authority opens a Channel case with the mentor on its panel and sends the
  mentor a case pack; the bridge mails it, encrypted and signed, with the PDF, and the
  mentor opens it with ``gpg``.

The demo runs with nothing but this package, so mail goes to a mailbox folder
(``DIR/mail/<address>/``) instead of an SMTP server; the tests send the same mail over
SMTP with STARTTLS (tests/bridge/). Without ``gpg`` installed the episode is skipped and
says so.
"""

from __future__ import annotations

import base64
import email
import json
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP
from pathlib import Path
from typing import Any, Final

from agency_adapters.email_pgp import (
    BridgeFolder,
    BridgeStore,
    add_partner,
    deliver_once,
    init_bridge,
    load_bridge_config,
    open_keyring,
)
from agency_adapters.email_pgp.inbound import receive_mail
from agency_adapters.email_pgp.mime import pgp_mime_message
from agency_adapters.email_pgp.outbound import default_clients
from agency_adapters.email_pgp.smtp import MailboxFolder
from agency_adapters.email_pgp.store import Partner
from hub.client import NodeClient, PayloadSource
from hub.crypto import PublicKeys
from hub.model import EnvelopeFields
from hub.model.examples import (
    synthetic_case_open,
    synthetic_case_pack,
    synthetic_consent_record,
    synthetic_referral_form,
)
from hub.policy.registry import Registry, SecureEmailDomain, load_registry

__all__ = ["EnrolledPartner", "create_demo_bridge", "run_email_episode"]

Say = Callable[[str, str], None]

BRIDGE_ADDRESS: Final = "prevent-bridge@wiltshire.gov.uk"
LA, POLICE = "la.wiltshire", "police.ctp-sw"
LEAD: Final = "education.uni-bath"
MENTOR: Final = "voluntary.channel-mentors"
CASE: Final = "case-wilts-demo-0002"
OS_PERSONAL: Final = {"tier": "OFFICIAL", "sensitive": True, "descriptors": ["PERSONAL_DATA"]}


@dataclass(frozen=True, slots=True)
class DemoPartner:
    node_id: str
    agency: str
    email: str
    name: str
    organisation: str


@dataclass(frozen=True, slots=True)
class EnrolledPartner:
    """A partner the bridge enrolled, for the hub to enrol its node."""

    node_id: str
    agency: str
    organisation: str
    public_keys: PublicKeys


PARTNERS: Final = (
    DemoPartner(
        LEAD,
        "education",
        "safeguarding@uni-bath.example.ac.uk",
        "Dr Ada Lead (SYNTHETIC)",
        "University of Bath safeguarding team (SYNTHETIC)",
    ),
    DemoPartner(
        MENTOR,
        "voluntary",
        "j.mentor@channel-mentors.example.org.uk",
        "Jo Mentor (SYNTHETIC)",
        "Channel Mentors South West (SYNTHETIC)",
    ),
)


_HOMES: Final = {LEAD: "lead", MENTOR: "mentor"}
# gpg-agent puts its sockets in the GnuPG home, and a Unix socket path has at most 107
# bytes; the longest socket name is S.gpg-agent.browser.
_HOME_PATH_MAX: Final = 107 - len("/S.gpg-agent.browser")


def _home(root: Path, node_id: str) -> Path:
    """The partner's own GnuPG home (their mail client's keyring, in the demo)."""
    return root / "mail" / _HOMES[node_id] / "gnupg"


def demo_registry() -> Registry:
    """The registry plus the demo's one local-policy domain: the mentors' organisation."""
    registry = load_registry()
    mentors = SecureEmailDomain(
        domain="channel-mentors.example.org.uk",
        highest_marking="OFFICIAL-SENSITIVE",
        summary="The demo's Channel intervention provider (SYNTHETIC).",
        source="Local policy for the demo",
    )
    return registry.model_copy(
        update={"secure_email_domains": [*registry.secure_email_domains, mentors]}
    )


def _gpg(home: Path, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # noqa: S603 - a fixed gpg command line, no shell
        ["gpg", "--homedir", str(home), "--batch", "--yes", "--status-fd", "2", *args],  # noqa: S607
        input=data,
        capture_output=True,
        check=False,
        timeout=60,
    )


def _partner_key(partner: DemoPartner, root: Path) -> tuple[str, str]:
    """The partner's own INSECURE demo key pair (no passphrase): fingerprint, public key."""
    home = _home(root, partner.node_id)
    home.mkdir(mode=0o700, parents=True)
    uid = f"{partner.name} <{partner.email}>"
    made = _gpg(home, "--passphrase", "", "--quick-gen-key", uid, "future-default", "default", "1y")
    if made.returncode != 0:
        raise RuntimeError(f"gpg could not make the demo key for {partner.node_id}")
    listing = _gpg(home, "--with-colons", "--list-keys", partner.email).stdout.decode()
    fingerprint = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
    )
    return fingerprint, _gpg(home, "--armor", "--export", fingerprint).stdout.decode()


def create_demo_bridge(
    root: Path, *, hub_url: str, hub_id: str, hub_signing_key: bytes, say: Say
) -> list[EnrolledPartner]:
    """The bridge's folder, its config and both partners enrolled at it (not yet at the
    hub: the caller enrols each partner's node with its ``public_keys``)."""
    if shutil.which("gpg") is None:
        say("bridge", "gpg is not installed: the partners on email are left out of the demo")
        return []
    homes = [BridgeFolder(root / "bridge").gnupg_home, *(_home(root, p.node_id) for p in PARTNERS)]
    if any(len(str(home.resolve())) > _HOME_PATH_MAX for home in homes):
        say(
            "bridge",
            f"the demo folder's path is too long for gpg-agent's sockets (a GnuPG home of at "
            f"most {_HOME_PATH_MAX} characters): the partners on email are left out",
        )
        return []
    config_path = root / "bridge.toml"
    config_path.write_text(
        "# The demo's email bridge. Mail goes to the mailbox folder mail/ instead of this\n"
        "# SMTP server (see docs/email-bridge.md for a real set-up).\n"
        f'[hub]\nurl = "{hub_url}"\nid = "{hub_id}"\n'
        f'signing_key = "{base64.b64encode(hub_signing_key).decode()}"\n\n'
        f'[bridge]\naddress = "{BRIDGE_ADDRESS}"\n'
        'name = "Wiltshire Council Prevent email bridge (demo)"\n\n'
        '[smtp]\nhost = "smtp.wiltshire.example"\nport = 587\n',
        encoding="utf-8",
    )
    config = load_bridge_config(config_path)
    folder = BridgeFolder(root / "bridge")
    fingerprint = init_bridge(folder, config)
    say("bridge", f"the local authority's email bridge; its OpenPGP key {fingerprint}")
    registry = demo_registry()
    bridge_public = open_keyring(folder).export_own_public_key()
    enrolled: list[EnrolledPartner] = []
    for partner in PARTNERS:
        fingerprint, armored = _partner_key(partner, root)
        # The partner keeps the bridge's key, its fingerprint read to them by phone.
        _gpg(_home(root, partner.node_id), "--import", data=bridge_public.encode())
        # Enrolled with the fingerprint the partner read out to the bridge's operator.
        _, public_file = add_partner(
            folder,
            config,
            registry,
            node_id=partner.node_id,
            email=partner.email,
            name=partner.name,
            organisation=partner.organisation,
            agency_type=partner.agency,
            armored_key=armored,
            fingerprint=fingerprint,
            now=datetime.now(UTC),
        )
        public_keys = PublicKeys.from_json(json.loads(public_file.read_text()))
        enrolled.append(
            EnrolledPartner(partner.node_id, partner.agency, partner.organisation, public_keys)
        )
        say("bridge", f"enrolled {partner.node_id} <{partner.email}>, key {fingerprint}")
    return enrolled


def _referral_mail(root: Path, lead: Partner, bridge_fingerprint: str) -> bytes:
    """The lead's mail: the bridge's draft template filled in, signed and encrypted."""
    form = json.loads(synthetic_referral_form(2).model_dump_json())
    draft = {
        "envelope": {
            "kind": "referral",
            "author": {"user_ref": "set-by-bridge", "role": "SAFEGUARDING_LEAD", "vetting": "BPSS"},
            "recipients": [LA, POLICE],
            "marking": "OFFICIAL-SENSITIVE",
            "subject_ref": "subj-demo-0002",
            "purpose": "PREVENT_REFERRAL",
            "legal_basis": {
                "powers": ["CDA1998-s115"],
                "art6": "UKGDPR-A6-1e",
                "art9": "UKGDPR-A9-2g",
                "sch1": "DPA2018-S1P2p18",
            },
            "consent": {
                "state": "NOT_SOUGHT",
                "reason_code": "WOULD_PREJUDICE_OUTCOME",
                "subject_age": "ADULT",
            },
        },
        "payload": {"content": form},
    }
    inner = MIMEMultipart("mixed")
    inner.attach(MIMEText("OFFICIAL-SENSITIVE\n\nOur referral is attached.\n", "plain", "utf-8"))
    attachment = MIMEApplication(json.dumps(draft, indent=2).encode(), "json")
    attachment.add_header("Content-Disposition", "attachment", filename="referral.json")
    inner.attach(attachment)
    made = _gpg(
        _home(root, lead.node_id),
        "--armor", "--trust-model", "always", "--encrypt", "-r", bridge_fingerprint,
        "--sign", "-u", lead.fingerprint,
        data=inner.as_bytes(policy=SMTP),
    )  # fmt: skip
    outer = pgp_mime_message(
        sender=lead.email,
        recipient=BRIDGE_ADDRESS,
        subject="OFFICIAL-SENSITIVE: Prevent referral",
        armored=made.stdout,
        date=datetime.now(UTC),
    )
    return outer.as_bytes(policy=SMTP)


def _payload(model: Any) -> PayloadSource:
    return PayloadSource.json(json.loads(model.model_dump_json()))


async def run_email_episode(root: Path, clients: Mapping[str, NodeClient], say: Say) -> None:
    folder = BridgeFolder(root / "bridge")
    if not folder.passphrase_file.exists():
        return  # no gpg: create_demo_bridge said so
    try:
        await _episode(root, folder, clients, say)
    finally:
        _stop_agents(root, folder)


def _stop_agents(root: Path, folder: BridgeFolder) -> None:
    """The demo's gpg-agents (the bridge's and each partner's) end with the demo."""
    for home in (folder.gnupg_home, *(_home(root, p.node_id) for p in PARTNERS)):
        subprocess.run(  # noqa: S603 - a fixed command line, no shell
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],  # noqa: S607
            capture_output=True,
            check=False,
            timeout=30,
        )


async def _episode(
    root: Path, folder: BridgeFolder, clients: Mapping[str, NodeClient], say: Say
) -> None:
    with BridgeStore.open(folder) as store:
        lead, mentor = store.partner(LEAD), store.partner(MENTOR)
    assert lead is not None
    assert mentor is not None
    config = load_bridge_config(root / "bridge.toml")
    keyring = open_keyring(folder)
    bridge_fingerprint = keyring.own_fingerprint() or ""
    mailbox = MailboxFolder(root / "mail")
    registry = demo_registry()

    # 1. The university's safeguarding lead refers a student by email.
    say(lead.node_id, "emailed a referral, signed with the lead's key and encrypted to the bridge")
    outcome = await receive_mail(
        _referral_mail(root, lead, bridge_fingerprint),
        mail_from=lead.email,
        folder=folder,
        config=config,
        registry=registry,
        keyring=keyring,
        transport=mailbox,
        clock=lambda: datetime.now(UTC),
        clients=default_clients(config),
    )
    if outcome.message_id is None:
        rules = ", ".join(f"{v.rule} {v.message}" for v in outcome.violations)
        raise RuntimeError(f"the bridge refused the demo referral ({outcome.reason}): {rules}")
    say(
        "bridge",
        f"verified the lead's signature, decrypted and pre-flighted the referral: submitted as "
        f"{lead.node_id}, accepted {outcome.message_id[:13]}…; the lead's reply is encrypted "
        "in mail/",
    )
    for node in (LA, POLICE):
        message = await clients[node].fetch(outcome.message_id)
        await clients[node].open_payload(message)
        await clients[node].acknowledge(message)
        say(node, f"received the referral from {message.envelope.sender} (by email)")

    # 2. The local authority sends the Channel mentor a case pack; the bridge mails it.
    members = [
        {"node": POLICE, "role": "POLICE_PREVENT"},
        {"node": mentor.node_id, "role": "INTERVENTION_PROVIDER"},
    ]
    base: dict[str, Any] = {
        "author": {"user_ref": "usr-demo-0004", "role": "CHANNEL_CHAIR", "vetting": "BPSS"},
        "recipients": [POLICE, mentor.node_id],
        "marking": OS_PERSONAL,
        "subject_ref": "subj-demo-0002",
        "case_ref": CASE,
        "consent": {"state": "OBTAINED", "given_by": "SUBJECT", "subject_age": "ADULT"},
    }
    la = clients[LA]
    opening = {
        **base,
        "kind": "case_open",
        "purpose": "CHANNEL_ASSESSMENT",
        "case": {"chair": LA, "members": members},
        "consent": {
            "state": "NOT_SOUGHT",
            "reason_code": "DECONFLICTION_STAGE",
            "subject_age": "ADULT",
        },
    }
    await la.send(_fields(opening), _payload(synthetic_case_open(2)))
    consent = {**base, "kind": "consent_record", "purpose": "CHANNEL_SUPPORT"}
    await la.send(_fields(consent), _payload(synthetic_consent_record(2)))
    expires = datetime.now(UTC) + timedelta(days=14)
    pack = {
        **base,
        "kind": "case_pack",
        "purpose": "CHANNEL_ASSESSMENT",
        "recipients": [mentor.node_id],
        "legal_basis": {
            "powers": ["LGA1972-s111"],
            "art6": "UKGDPR-A6-1e",
            "art9": "UKGDPR-A9-2g",
            "sch1": "DPA2018-S1P2p18",
        },
        "access_expires_at": expires.isoformat().replace("+00:00", "Z"),
    }
    receipt = await la.send(_fields(pack), _payload(synthetic_case_pack(2)))
    say(LA, f"opened {CASE} with {mentor.node_id} on the panel; case pack -> {mentor.node_id}")
    report = await deliver_once(
        folder,
        config,
        registry,
        keyring,
        mailbox,
        clock=lambda: datetime.now(UTC),
        clients=default_clients(config),
    )
    if receipt.message_id not in report.sent:
        raise RuntimeError(f"the bridge did not mail the case pack: {report.failed}")
    say("bridge", f"mailed the case pack to {mentor.email} as signed PGP/MIME with its PDF")

    # 3. The mentor opens it with their own gpg.
    mails = sorted((root / "mail" / mentor.email).glob("*.eml"))
    mail = email.message_from_bytes(mails[-1].read_bytes())
    armored = next(
        part.get_payload(decode=True)
        for part in mail.walk()
        if part.get_content_type() == "application/octet-stream"
    )
    assert isinstance(armored, bytes)
    opened = _gpg(_home(root, mentor.node_id), "--decrypt", data=armored)
    signed = f"VALIDSIG {bridge_fingerprint}" in opened.stderr.decode()
    inner = email.message_from_bytes(opened.stdout)
    pdf = next(p for p in inner.walk() if p.get_content_type() == "application/pdf")
    say(
        mentor.node_id,
        f"opened '{' '.join(str(mail['Subject']).split())}' with gpg: "
        f"{'good signature by the bridge' if signed else 'NO GOOD SIGNATURE'}; "
        f"{pdf.get_filename()} ({len(pdf.get_payload(decode=True))} bytes, prepared for "
        f"{mentor.name}, readable until {expires:%Y-%m-%d})",
    )
    if not signed:
        raise RuntimeError("the mentor could not verify the bridge's signature")


def _fields(document: dict[str, Any]) -> EnvelopeFields:
    return EnvelopeFields.model_validate_json(json.dumps(document))
