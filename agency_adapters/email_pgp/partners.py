"""Setting up a bridge and enrolling its partners (``hub bridge init``, ``partners ...``).

**How a partner is a party at the hub.** Each partner is enrolled at the hub as a node of
its own agency type (``education.uni-bath``, a university's safeguarding lead), whose
keys the bridge generates and holds under ``DIR/partners/<node-id>/``. The hub's policy
therefore treats the partner like any other party: a case pack goes to it only if it
sits on that case's panel (WF-09), a referral from it is checked against its agency type
and author role, and the hub's receipts, delivery states and audit log name it. The
bridge is the partner's node runtime: it fetches, verifies and acknowledges what arrives
for the partner and re-sends it by OpenPGP mail. (A single bridge node receiving for
everybody would hide from the hub which partner a message is for, and no payload names
its email recipient.)

Enrolment checks, all before anything is written: the node id's form, the agency type is
one the registry defines, the address is on the secure email list (EM-01), the name and
organisation are one line each, neither the node id nor the address is enrolled already,
and the partner's public key is exactly one key whose fingerprint is the one confirmed
with the partner out of band (read aloud over the phone, from a letter), usable now.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agency_adapters.email_pgp.config import BridgeConfig
from agency_adapters.email_pgp.store import BridgeFolder, BridgeStore, BridgeStoreError, Partner
from hub.client import write_node_profile
from hub.crypto import NodeKeys, new_token, write_key_file
from hub.crypto.openpgp import OpenPGPError, OpenPGPKeyring, PartnerKey, normalise_fingerprint
from hub.model import is_node_id
from hub.policy.registry import Registry
from hub.policy.secure_email import email_transport_violations

__all__ = [
    "EnrolmentError",
    "PartnerView",
    "add_partner",
    "disable_partner",
    "init_bridge",
    "list_partners",
    "open_keyring",
    "update_partner_key",
]

_LINE_MAX = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class EnrolmentError(ValueError):
    """An enrolment the bridge refuses; the message names the field and how to fix it."""


@dataclass(frozen=True, slots=True)
class PartnerView:
    """A partner with its key's state now (what ``partners list`` shows)."""

    partner: Partner
    key_state: str


def open_keyring(folder: BridgeFolder) -> OpenPGPKeyring:
    try:
        passphrase = folder.read_passphrase()
    except BridgeStoreError as exc:
        raise EnrolmentError(str(exc)) from None
    return OpenPGPKeyring(folder.gnupg_home, passphrase=passphrase)


def init_bridge(folder: BridgeFolder, config: BridgeConfig) -> str:
    """Create the folder, the keyring and the bridge's own key pair; its fingerprint."""
    if folder.passphrase_file.exists() or (folder.gnupg_home / "pubring.kbx").exists():
        raise EnrolmentError(f"{folder.root} already holds a bridge; refusing to overwrite it")
    folder.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    passphrase = new_token()
    folder.write_passphrase(passphrase)
    keyring = OpenPGPKeyring(folder.gnupg_home)
    fingerprint = keyring.generate_own_key(
        name=config.name, email=config.address, passphrase=passphrase
    )
    BridgeStore.open(folder).close()
    return fingerprint


def _one_line(value: str, field: str) -> str:
    text = value.strip()
    if not text or len(text) > _LINE_MAX or _CONTROL.search(text):
        raise EnrolmentError(f"--{field} must be one line of 1 to {_LINE_MAX} printable characters")
    return text


def add_partner(
    folder: BridgeFolder,
    config: BridgeConfig,
    registry: Registry,
    *,
    node_id: str,
    email: str,
    name: str,
    organisation: str,
    agency_type: str,
    armored_key: str,
    fingerprint: str,
    now: datetime,
) -> tuple[Partner, Path]:
    """Enrol a partner (module docstring); the record and its public keys file for the hub."""
    if not is_node_id(node_id):
        raise EnrolmentError(
            f"--node-id {node_id!r} must look like '<agency>.<organisation>', lower case, "
            "e.g. 'education.uni-bath'"
        )
    if registry.agency(agency_type) is None:
        known = ", ".join(a.id for a in registry.agency_types)
        raise EnrolmentError(f"--agency-type {agency_type!r} is not one of: {known}")
    problems = email_transport_violations(registry, email)
    if problems:
        raise EnrolmentError(f"--email: {problems[0].rule} {problems[0].message}")
    name = _one_line(name, "name")
    organisation = _one_line(organisation, "organisation")
    try:
        confirmed = normalise_fingerprint(fingerprint)
    except OpenPGPError as exc:
        raise EnrolmentError(f"--fingerprint: {exc}") from None
    keyring = open_keyring(folder)
    with BridgeStore.open(folder) as store:
        try:
            store.check_new_partner(node_id, email)
        except BridgeStoreError as exc:
            raise EnrolmentError(str(exc)) from None
        node_dir = folder.partner_dir(node_id)
        if node_dir.exists():
            raise EnrolmentError(f"{node_dir} already exists; refusing to overwrite a node folder")
        holder = next((p for p in store.partners() if p.fingerprint == confirmed), None)
        if holder is not None:
            raise EnrolmentError(
                f"--fingerprint: the key {confirmed} is already enrolled for {holder.node_id}; "
                "each partner has a key of their own"
            )
        try:
            key = keyring.import_partner_key(armored_key, fingerprint=confirmed, now=now)
        except OpenPGPError as exc:
            raise EnrolmentError(f"--key: {exc}") from None
        try:
            partner = _write_partner(
                folder, config, store, node_id, email, name, organisation, agency_type, key, now
            )
        except BaseException:
            # Nothing half-written: the folder, the key and the row go together.
            shutil.rmtree(node_dir, ignore_errors=True)
            keyring.remove_partner_key(key.fingerprint)
            raise
    return partner, node_dir / "public-keys.json"


def _write_partner(
    folder: BridgeFolder,
    config: BridgeConfig,
    store: BridgeStore,
    node_id: str,
    email: str,
    name: str,
    organisation: str,
    agency_type: str,
    key: PartnerKey,
    now: datetime,
) -> Partner:
    node_dir = folder.partner_dir(node_id)
    keys = NodeKeys.generate()
    write_node_profile(
        node_dir,
        node_id=node_id,
        agency_type=agency_type,
        hub_url=config.hub.url,
        hub_id=config.hub.id,
        hub_signing_key=config.hub.signing_key,
    )
    write_key_file(node_dir / "keys" / "node.key", keys)
    public = node_dir / "public-keys.json"
    public.write_text(json.dumps(keys.public.to_json(), indent=2) + "\n", encoding="utf-8")
    os.chmod(node_dir, 0o700)
    partner = Partner(
        node_id=node_id,
        email=email.lower(),
        name=name,
        organisation=organisation,
        agency_type=agency_type,
        fingerprint=key.fingerprint,
        status="active",
        enrolled_at=now,
        updated_at=now,
    )
    store.add_partner(partner)
    return partner


def _key_state(key: PartnerKey | None, now: datetime) -> str:
    if key is None:
        return "missing from keyring"
    problem = key.unusable_reason(now)
    if problem is None:
        if key.expires_at is None:
            return "usable"
        return f"usable until {key.expires_at.isoformat().replace('+00:00', 'Z')}"
    if key.revoked:
        return "revoked"
    if not key.can_encrypt:
        return "cannot encrypt"
    return "expired"


def list_partners(folder: BridgeFolder, now: datetime) -> list[PartnerView]:
    keyring = open_keyring(folder)
    with BridgeStore.open(folder) as store:
        return [
            PartnerView(p, _key_state(keyring.partner_key(p.fingerprint), now))
            for p in store.partners()
        ]


def disable_partner(folder: BridgeFolder, node_id: str, now: datetime) -> Partner:
    with BridgeStore.open(folder) as store:
        try:
            return store.set_partner_status(node_id, "disabled", now)
        except BridgeStoreError as exc:
            raise EnrolmentError(str(exc)) from None


def update_partner_key(
    folder: BridgeFolder, node_id: str, armored_key: str, now: datetime
) -> PartnerView:
    """Import a newer copy of a partner's enrolled key (its revocation, a new expiry).

    Only the enrolled fingerprint is accepted: a partner with a new key is disabled and
    enrolled again, with the new fingerprint confirmed out of band.
    """
    keyring = open_keyring(folder)
    with BridgeStore.open(folder) as store:
        partner = store.partner(node_id)
        if partner is None:
            raise EnrolmentError(f"no partner {node_id} is enrolled")
        try:
            key = keyring.import_partner_key(armored_key, fingerprint=partner.fingerprint, now=now)
        except OpenPGPError as exc:
            refreshed = keyring.partner_key(partner.fingerprint)
            if refreshed is not None and refreshed.unusable_reason(now) is not None:
                return PartnerView(partner, _key_state(refreshed, now))
            raise EnrolmentError(f"--key: {exc}") from None
        store.set_partner_fingerprint(node_id, key.fingerprint, now)
    return PartnerView(partner, _key_state(key, now))
