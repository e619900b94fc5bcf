"""The email bridge's test world: the real ``gpg``, a real SMTP server, the real hub.

- Partners' OpenPGP keys are INSECURE test keys generated here, in the test, with
  ``gpg --batch --passphrase '' --quick-gen-key`` into a GnuPG home of the partner's own
  (never committed). ``gpg --decrypt`` with that home is how a test reads its mail.
- The SMTP server is aiosmtpd on loopback that requires STARTTLS, with a self-signed
  certificate made here with ``cryptography``; the bridge trusts it through
  ``smtp.ca_file``. It keeps every message it accepts, and refuses RCPT for addresses a
  test lists.
- The hub is the shared ``hub`` fixture (tests/conftest.py); partners are enrolled in it
  as nodes with the public keys their bridge generated.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agency_adapters.email_pgp import BridgeFolder, init_bridge, load_bridge_config
from agency_adapters.email_pgp.config import BridgeConfig
from hub.client import NodeClient, NodeProfile
from hub.crypto import PublicKeys
from hub.registry import enrol_node
from tests.conftest import INSECURE_TEST_HUB_KEYS, HubFixture

if shutil.which("gpg") is None:  # .ci/run installs it; a developer may not have it
    pytest.skip("the gpg binary is not installed (apt-get install gnupg)", allow_module_level=True)

BRIDGE_ADDRESS = "prevent-bridge@wiltshire.gov.uk"


def run_gpg(
    home: Path, *args: str, data: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--yes", "--status-fd", "2", *args],
        input=data,
        capture_output=True,
        check=False,
        timeout=60,
    )


@dataclass
class GpgUser:
    """Someone outside the bridge with a GnuPG home of their own (a partner, a forger)."""

    home: Path
    email: str
    fingerprint: str

    def export_public(self) -> str:
        return run_gpg(self.home, "--armor", "--export", self.fingerprint).stdout.decode()

    def revoke(self) -> str:
        """Revoke the key with the certificate gpg made at generation; the revoked key."""
        certificate = (self.home / "openpgp-revocs.d" / f"{self.fingerprint}.rev").read_text()
        # gpg writes the certificate with its first line escaped by a colon.
        imported = run_gpg(
            self.home, "--import", data=certificate.replace(":-----BEGIN", "-----BEGIN").encode()
        )
        assert imported.returncode == 0, imported.stderr
        return self.export_public()

    def decrypt(self, armored: bytes) -> subprocess.CompletedProcess[bytes]:
        return run_gpg(self.home, "--decrypt", data=armored)

    def import_key(self, armored: str) -> None:
        assert run_gpg(self.home, "--import", data=armored.encode()).returncode == 0


class GpgHomes:
    """Makes GnuPG homes with short paths (gpg-agent's socket path is limited) and ends
    their agents afterwards."""

    def __init__(self) -> None:
        self.made: list[Path] = []

    def new(self) -> Path:
        home = Path(tempfile.mkdtemp(prefix="seh-gpg-", dir="/tmp"))
        home.chmod(0o700)
        self.made.append(home)
        return home

    def user(
        self, email_address: str, *, expire: str = "1y", faked_time: str | None = None
    ) -> GpgUser:
        home = self.new()
        uid = f"Insecure test key <{email_address}>"
        extra = ["--faked-system-time", faked_time] if faked_time else []
        made = run_gpg(
            home,
            *extra,
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            "future-default",
            "default",
            expire,
        )
        assert made.returncode == 0, made.stderr
        listing = run_gpg(home, "--with-colons", "--list-keys", email_address).stdout.decode()
        fingerprint = next(
            line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
        )
        return GpgUser(home=home, email=email_address, fingerprint=fingerprint)

    def close(self) -> None:
        for home in self.made:
            subprocess.run(
                ["gpgconf", "--homedir", str(home), "--kill", "all"],
                check=False,
                capture_output=True,
            )
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def gpg_homes() -> Iterator[GpgHomes]:
    homes = GpgHomes()
    try:
        yield homes
    finally:
        homes.close()


# --- SMTP ---------------------------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "insecure test SMTP server")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Mailbox:
    """What the SMTP server accepted, by recipient; and whom it refuses."""

    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    tls_seen: list[bool] = field(default_factory=list)

    def for_address(self, address: str) -> list[Message]:
        return [
            email.message_from_bytes(data)
            for _, recipients, data in self.messages
            if address in recipients
        ]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.tls_seen.append(session.ssl is not None)
        content = envelope.original_content or b""
        self.messages.append((str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class SmtpServer:
    host: str
    port: int
    ca_file: Path
    mailbox: Mailbox


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
    )
    controller.start()
    try:
        yield SmtpServer(host="127.0.0.1", port=port, ca_file=cert, mailbox=mailbox)
    finally:
        controller.stop()


# --- The bridge ------------------------------------------------------------------------------


def write_bridge_toml(path: Path, hub_url: str, smtp: SmtpServer, **smtp_extra: Any) -> Path:
    key = base64.b64encode(INSECURE_TEST_HUB_KEYS.public.signing).decode()
    lines = [
        "[hub]",
        f'url = "{hub_url}"',
        'id = "hub.test"',
        f'signing_key = "{key}"',
        "",
        "[bridge]",
        f'address = "{BRIDGE_ADDRESS}"',
        'name = "Wiltshire Council Prevent email bridge (TEST)"',
        "",
        "[smtp]",
        f'host = "{smtp.host}"',
        f"port = {smtp.port}",
        f'ca_file = "{smtp.ca_file}"',
        "timeout_seconds = 10",
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in smtp_extra.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Bridge:
    folder: BridgeFolder
    config: BridgeConfig
    config_path: Path
    fingerprint: str


@pytest.fixture
def bridge(
    tmp_path: Path, hub: HubFixture, smtp_server: SmtpServer, gpg_homes: GpgHomes
) -> Iterator[Bridge]:
    # A short root: the bridge's GnuPG home lives under it (gpg-agent socket paths).
    root = gpg_homes.new() / "b"
    config_path = write_bridge_toml(tmp_path / "bridge.toml", hub.url, smtp_server)
    config = load_bridge_config(config_path)
    folder = BridgeFolder(root)
    fingerprint = init_bridge(folder, config)
    try:
        yield Bridge(folder=folder, config=config, config_path=config_path, fingerprint=fingerprint)
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(folder.gnupg_home), "--kill", "all"],
            check=False,
            capture_output=True,
        )


def partner_clients(hub: HubFixture) -> Any:
    """The bridge's client factory for partners' nodes, on the test hub and its clock."""

    def build(profile: NodeProfile) -> NodeClient:
        return NodeClient(
            hub_url=hub.url,
            node_id=profile.node_id,
            keys=profile.load_keys(),
            hub_signing_key=INSECURE_TEST_HUB_KEYS.public.signing,
            spool_dir=profile.spool_dir,
            clock=hub.clock,
        )

    return build


def read_public_keys(path: Path) -> PublicKeys:
    return PublicKeys.from_json(json.loads(path.read_text()))


async def enrol_at_hub(hub: HubFixture, public_keys_file: Path, node_id: str, agency: str) -> None:
    """What the hub operator does with the file ``partners add`` wrote (hub admin enrol)."""
    public_keys = read_public_keys(public_keys_file)
    await enrol_node(
        hub.store,
        node_id=node_id,
        agency_type=agency,
        display_name=node_id,
        public_keys=public_keys,
        accreditation="OFFICIAL-SENSITIVE",
        now=hub.clock(),
    )
