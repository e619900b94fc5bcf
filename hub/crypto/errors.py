"""Errors raised at the crypto boundary; backend (libsodium, gpg) errors never escape."""

from __future__ import annotations

__all__ = [
    "CryptoError",
    "DecryptionFailed",
    "KeyFileError",
    "KeyFilePermissionError",
    "SignatureInvalid",
]


class CryptoError(Exception):
    """Base class for every error raised by ``hub.crypto``."""


class SignatureInvalid(CryptoError):
    """A signature did not verify against the expected key and bytes."""


class DecryptionFailed(CryptoError):
    """A payload or sealed key could not be opened: wrong key, tampering or truncation."""


class KeyFileError(CryptoError):
    """A key file is missing, malformed, or its passphrase is wrong."""


class KeyFilePermissionError(KeyFileError):
    """A key file is readable or writable by someone other than its owner."""
