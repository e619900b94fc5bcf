"""OpenPGP for partners still on secure email (the email bridge, later exports).

GnuPG runs one process per call (~110 calls/s, DESIGN.md section 10), so it stays off the
hub's per-message path. This is the only module that imports ``gnupg``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gnupg

from hub.crypto.errors import CryptoError

__all__ = ["OpenPGPError", "OpenPGPKeyring", "PartnerKey"]


class OpenPGPError(CryptoError):
    """GnuPG refused an operation; the message names what, never key material."""


@dataclass(frozen=True, slots=True)
class PartnerKey:
    fingerprint: str
    uids: tuple[str, ...]


class OpenPGPKeyring:
    """A GnuPG home directory holding partners' public keys (and the node's own key)."""

    def __init__(self, home: Path) -> None:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._gpg = gnupg.GPG(gnupghome=str(home))

    def import_partner_key(self, armored: str) -> PartnerKey:
        result = self._gpg.import_keys(armored)
        if not result.fingerprints:
            raise OpenPGPError("no OpenPGP public key could be imported")
        fingerprint = str(result.fingerprints[0])
        uids: tuple[str, ...] = ()
        for key in self._gpg.list_keys():
            if key.get("fingerprint") == fingerprint:
                uids = tuple(str(u) for u in key.get("uids", []))
        return PartnerKey(fingerprint=fingerprint, uids=uids)

    def encrypt_for_partner(self, partner: PartnerKey, data: bytes) -> bytes:
        """ASCII-armoured OpenPGP message readable only by ``partner``."""
        result = self._gpg.encrypt(data, [partner.fingerprint], always_trust=True, armor=True)
        if not result.ok:
            raise OpenPGPError(f"OpenPGP encryption for {partner.fingerprint} failed")
        return bytes(result.data)
