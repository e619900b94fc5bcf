"""OpenPGP for partners still on secure email: the email bridge's keyring.

GnuPG runs one process per call (~110 calls/s, DESIGN.md section 10), so it stays off the
hub's per-message path: only the email bridge (``agency_adapters.email_pgp``) calls this.
This is the only module that imports ``gnupg`` (STYLE.md rule 3); backend failures become
:class:`OpenPGPError` here, naming what failed and never key material or plaintext.

The keyring is a GnuPG home directory under the bridge's folder (0700). It holds the
bridge's own key pair (its secret key protected by a passphrase the bridge keeps in a 0600
file) and the partners' public keys. What it relies on:

- A partner's key enters only through :meth:`OpenPGPKeyring.import_partner_key`, which
  reads the armoured text *before* importing it and refuses anything but exactly one
  public key whose fingerprint is the one confirmed with the partner out of band; a key
  that is revoked, expired or cannot encrypt is refused too.
- Encryption is always to one enrolled fingerprint, signed by the bridge's key, and only
  after :meth:`PartnerKey.unusable_reason` found the key usable at the caller's clock;
  GnuPG's own refusal (a revocation it knows of) is reported the same way.
- Trust is by fingerprint, not by the web of trust: the bridge passes ``always_trust``
  because the operator confirmed the fingerprint at enrolment, and a verified signature
  counts only when it was made by the key enrolled for that partner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import gnupg

from hub.crypto.errors import CryptoError

__all__ = [
    "OpenPGPError",
    "OpenPGPKeyring",
    "OpenedMessage",
    "PartnerKey",
    "PartnerKeyUnusable",
    "normalise_fingerprint",
]

_S2K_COUNT: Final = 30_000_000
_FINGERPRINT: Final = re.compile(r"^[0-9A-F]{40}$|^[0-9A-F]{64}$")


class OpenPGPError(CryptoError):
    """GnuPG refused an operation; the message names what, never key material."""


class PartnerKeyUnusable(OpenPGPError):
    """A partner's key is revoked, expired or cannot encrypt: nothing may be sent to it."""


def normalise_fingerprint(text: str) -> str:
    """``text`` as 40 (v4) or 64 (v5) upper-case hex digits; spaces and ``0x`` dropped.

    Raises :class:`OpenPGPError` for anything else: a short key id is never enough to
    confirm a key (it can be forged; the full fingerprint is what is read out).
    """
    cleaned = re.sub(r"\s+", "", text).upper().removeprefix("0X")
    if not _FINGERPRINT.match(cleaned):
        raise OpenPGPError(
            "a fingerprint is the key's full 40 hexadecimal digits (spaces allowed), "
            "as 'gpg --fingerprint' shows it; a short key id is not enough"
        )
    return cleaned


@dataclass(frozen=True, slots=True)
class PartnerKey:
    """A public key in the bridge's keyring, as GnuPG lists it."""

    fingerprint: str
    uids: tuple[str, ...]
    expires_at: datetime | None = None
    revoked: bool = False
    can_encrypt: bool = True

    def unusable_reason(self, now: datetime) -> str | None:
        """Why nothing may be encrypted to this key at ``now``, or None if it is usable."""
        if self.revoked:
            return f"the OpenPGP key {self.fingerprint} has been revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return (
                f"the OpenPGP key {self.fingerprint} expired at "
                f"{self.expires_at.isoformat().replace('+00:00', 'Z')}"
            )
        if not self.can_encrypt:
            return f"the OpenPGP key {self.fingerprint} has no usable encryption subkey"
        return None


@dataclass(frozen=True, slots=True)
class OpenedMessage:
    """What :meth:`OpenPGPKeyring.open_from_partner` made of an OpenPGP message.

    ``signer`` is the primary-key fingerprint of a *good* signature, or None when the
    message was unsigned or its signature did not verify against any key in the keyring.
    ``plaintext`` is the decrypted content (the caller keeps it in memory only).
    """

    plaintext: bytes
    signer: str | None
    signature_problem: str | None


def _key_from_listing(entry: dict[str, Any]) -> PartnerKey:
    expires = str(entry.get("expires") or "")
    capabilities = str(entry.get("cap") or "")
    return PartnerKey(
        fingerprint=str(entry["fingerprint"]),
        uids=tuple(str(u) for u in entry.get("uids", [])),
        expires_at=datetime.fromtimestamp(int(expires), UTC) if expires.isdigit() else None,
        revoked=entry.get("trust") == "r",
        # Upper-case letters are the capabilities of the whole key, its subkeys included.
        can_encrypt="E" in capabilities,
    )


class OpenPGPKeyring:
    """The bridge's GnuPG home: its own key pair and its partners' public keys."""

    def __init__(self, home: Path, *, passphrase: str | None = None) -> None:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        home.chmod(0o700)  # GnuPG warns about, and partners' trust rests on, a private home
        agent_conf = home / "gpg-agent.conf"
        if not agent_conf.exists():
            # A fixed work factor for protecting the bridge's secret key (about 0.1 s of
            # hashing per unlock) instead of gpg-agent calibrating one when it starts:
            # generating the key took 10 to 12 s with calibration on a busy 2-core machine
            # and about 1 s with this.
            agent_conf.write_text(f"s2k-count {_S2K_COUNT}\n", encoding="ascii")
        self._home = home
        self._passphrase = passphrase
        self._gpg = gnupg.GPG(gnupghome=str(home))
        self._gpg.encoding = "utf-8"

    @property
    def home(self) -> Path:
        return self._home

    # --- The bridge's own key ------------------------------------------------------------

    def generate_own_key(self, *, name: str, email: str, passphrase: str) -> str:
        """Create the bridge's signing and encryption key pair; its fingerprint."""
        if self.own_fingerprint() is not None:
            raise OpenPGPError(f"the keyring in {self._home} already holds the bridge's key")
        spec = self._gpg.gen_key_input(
            key_type="EDDSA",
            key_curve="ed25519",
            key_usage="sign",
            subkey_type="ECDH",
            subkey_curve="cv25519",
            subkey_usage="encrypt",
            name_real=name,
            name_email=email,
            passphrase=passphrase,
            expire_date=0,
        )
        result = self._gpg.gen_key(spec)
        if not result.fingerprint:
            raise OpenPGPError("GnuPG could not generate the bridge's key pair")
        self._passphrase = passphrase
        return str(result.fingerprint)

    def own_fingerprint(self) -> str | None:
        secret = self._gpg.list_keys(secret=True)
        return str(secret[0]["fingerprint"]) if secret else None

    def _require_own(self) -> str:
        own = self.own_fingerprint()
        if own is None:
            raise OpenPGPError(
                f"the keyring in {self._home} has no bridge key; run hub bridge init"
            )
        if self._passphrase is None:
            raise OpenPGPError("the bridge key's passphrase was not given")
        return own

    def export_own_public_key(self) -> str:
        own = self.own_fingerprint()
        if own is None:
            raise OpenPGPError(
                f"the keyring in {self._home} has no bridge key; run hub bridge init"
            )
        return str(self._gpg.export_keys(own, armor=True))

    # --- Partners' keys ------------------------------------------------------------------

    def import_partner_key(self, armored: str, *, fingerprint: str, now: datetime) -> PartnerKey:
        """Import the one public key in ``armored`` if it is the confirmed ``fingerprint``.

        Read before importing: more than one key, a secret key, or a different fingerprint
        is refused and leaves the keyring as it was. A key GnuPG knows to be revoked or
        expired at ``now`` is refused after import and removed again. Importing a newer
        copy of an enrolled key (a revocation, an extended expiry) is the same call.
        """
        expected = normalise_fingerprint(fingerprint)
        scanned = self._gpg.scan_keys_mem(armored)
        if not scanned:
            raise OpenPGPError("no OpenPGP public key was found in the key file")
        if any(entry.get("type") == "sec" for entry in scanned):
            raise OpenPGPError(
                "the key file holds a secret key; ask the partner for the public key only"
            )
        if len(scanned) != 1:
            raise OpenPGPError(f"the key file holds {len(scanned)} keys; enrol exactly one")
        found = str(scanned[0]["fingerprint"])
        if found != expected:
            raise OpenPGPError(
                f"the key's fingerprint is {found}, not the {expected} confirmed with the "
                "partner; do not enrol it until the partner confirms the right one"
            )
        known_before = self.partner_key(found) is not None
        result = self._gpg.import_keys(armored)
        if found not in {str(f) for f in result.fingerprints if f}:
            raise OpenPGPError(f"GnuPG could not import the key {found}")
        key = self.partner_key(found)
        if key is None:
            raise OpenPGPError(f"GnuPG did not list the imported key {found}")
        problem = key.unusable_reason(now)
        if problem is not None and not (known_before and key.revoked):
            # A new key that cannot be used is not kept; a revocation of an enrolled key
            # is kept, so that the bridge refuses to send to it.
            if not known_before:
                self._gpg.delete_keys(found)
            raise PartnerKeyUnusable(problem)
        return key

    def remove_partner_key(self, fingerprint: str) -> None:
        """Delete a partner's public key (an enrolment that did not complete)."""
        if self.partner_key(fingerprint) is not None:
            self._gpg.delete_keys(fingerprint)

    def partner_key(self, fingerprint: str) -> PartnerKey | None:
        # Listing every key, not asking gpg for one: an unknown fingerprint is not an error.
        for entry in self._gpg.list_keys():
            if entry.get("fingerprint") == fingerprint:
                return _key_from_listing(entry)
        return None

    # --- Messages ------------------------------------------------------------------------

    def encrypt_for_partner(self, partner_fingerprint: str, data: bytes, *, now: datetime) -> bytes:
        """``data`` signed by the bridge and encrypted to the partner, ASCII-armoured.

        One OpenPGP message that both encrypts and signs (RFC 3156 section 6.2, the
        combined form). Raises :class:`PartnerKeyUnusable` for a revoked, expired or
        unknown key, checked at ``now`` and again by GnuPG.
        """
        own = self._require_own()
        key = self.partner_key(partner_fingerprint)
        if key is None:
            raise PartnerKeyUnusable(f"the OpenPGP key {partner_fingerprint} is not in the keyring")
        problem = key.unusable_reason(now)
        if problem is not None:
            raise PartnerKeyUnusable(problem)
        result = self._gpg.encrypt(
            data,
            [partner_fingerprint],
            sign=own,
            passphrase=self._passphrase,
            always_trust=True,
            armor=True,
        )
        if not result.ok:
            if "INV_RECP" in str(result.stderr) or "invalid recipient" in str(result.status):
                raise PartnerKeyUnusable(
                    f"GnuPG refused the OpenPGP key {partner_fingerprint} as unusable "
                    "(revoked or expired)"
                )
            raise OpenPGPError(
                f"OpenPGP encryption for {partner_fingerprint} failed: {result.status}"
            )
        return bytes(result.data)

    def open_from_partner(self, data: bytes) -> OpenedMessage:
        """Decrypt an OpenPGP message to the bridge and check its signature.

        Raises :class:`OpenPGPError` if it cannot be decrypted with the bridge's key (not
        encrypted, or encrypted to someone else). A missing or bad signature is not an
        error here: :attr:`OpenedMessage.signer` is None and the caller refuses it.
        """
        self._require_own()
        result = self._gpg.decrypt(data, passphrase=self._passphrase, always_trust=True)
        if not result.ok:
            raise OpenPGPError(
                f"the message could not be decrypted with the bridge's key: {result.status}"
            )
        # GnuPG's status lines say whether there was a signature at all (NEWSIG, or an
        # ERRSIG for a key the keyring lacks) and whether it was good (GOODSIG + VALIDSIG).
        status = str(result.stderr or "")
        tokens = {line.split()[1] for line in status.splitlines() if line.startswith("[GNUPG:] ")}
        signer: str | None = None
        problem: str | None = None
        if not tokens & {
            "NEWSIG",
            "GOODSIG",
            "BADSIG",
            "ERRSIG",
            "EXPSIG",
            "EXPKEYSIG",
            "REVKEYSIG",
        }:
            problem = "the message is not signed"
        elif result.valid and result.pubkey_fingerprint and "GOODSIG" in tokens:
            signer = str(result.pubkey_fingerprint)
        elif "ERRSIG" in tokens:
            problem = "signed by a key the bridge does not know"
        elif "BADSIG" in tokens:
            problem = "the signature is bad (the message was changed after signing)"
        else:
            problem = f"the signature did not verify ({result.status})"
        return OpenedMessage(plaintext=bytes(result.data), signer=signer, signature_problem=problem)
