"""Password hashes for the people who sign in to a node console, and random tokens.

A password is kept only as the Argon2id string libsodium's ``crypto_pwhash_str`` returns
(``$argon2id$v=19$m=<KiB>,t=<passes>,p=1$<salt>$<hash>``): it carries its own salt and
cost, so a stored hash made at an older cost still verifies, and
:func:`password_needs_rehash` says when to replace it after a successful sign-in.

The production cost is libsodium's MODERATE (3 passes over 256 MiB; about 0.7 s on one
core), well above the OWASP Password Storage Cheat Sheet's minimum for Argon2id
(19 MiB, 2 passes, parallelism 1:
https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html#argon2id).
Hashing is CPU- and memory-bound and blocks: a web handler runs it in an executor with a
few workers, which also bounds the memory concurrent sign-ins take.

Passwords are NFKC-normalised before hashing, so the same password typed on two keyboards
(composed or decomposed accents) verifies (NIST SP 800-63B section 5.1.1.2).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import unicodedata

import nacl.exceptions
import nacl.pwhash.argon2id

from hub.crypto.errors import CryptoError
from hub.crypto.keys import KdfStrength

__all__ = [
    "PasswordHashError",
    "hash_password",
    "new_token",
    "password_needs_rehash",
    "token_digest",
    "verify_password",
]

# What crypto_pwhash_str writes for Argon2id (libsodium's argon2-encoding.c): version 19,
# memory in KiB, passes, lanes, then unpadded standard base64 of the salt and the hash.
_ARGON2ID = re.compile(
    r"^\$argon2id\$v=19\$m=(?P<m>[0-9]{1,10}),t=(?P<t>[0-9]{1,10}),p=(?P<p>[0-9]{1,3})"
    r"\$[A-Za-z0-9+/]{11,}\$[A-Za-z0-9+/]{11,}$"
)


class PasswordHashError(CryptoError):
    """A stored password hash is not an Argon2id hash this module made (corrupt or foreign)."""


def _password_bytes(password: str) -> bytes:
    return unicodedata.normalize("NFKC", password).encode("utf-8")


def _parse(stored: str) -> re.Match[str]:
    match = _ARGON2ID.match(stored) if isinstance(stored, str) else None
    if match is None:
        raise PasswordHashError("the stored password hash is not an Argon2id hash")
    return match


def hash_password(password: str, *, strength: KdfStrength | None = None) -> str:
    """Argon2id hash of ``password`` with a fresh random salt, at ``strength`` (MODERATE)."""
    cost = strength or KdfStrength.moderate()
    try:
        stored = nacl.pwhash.argon2id.str(
            _password_bytes(password), opslimit=cost.opslimit, memlimit=cost.memlimit
        )
    except nacl.exceptions.CryptoError as exc:
        raise CryptoError("password hashing failed (cost out of libsodium's range?)") from exc
    return stored.decode("ascii")


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches ``stored``; False for a wrong one, never an exception.

    Raises :class:`PasswordHashError` when ``stored`` is not an Argon2id hash at all, so a
    corrupted row is an error to look into rather than a refusal nobody notices.
    """
    _parse(stored)
    try:
        return bool(nacl.pwhash.argon2id.verify(stored.encode("ascii"), _password_bytes(password)))
    except nacl.exceptions.InvalidkeyError:
        return False
    except nacl.exceptions.CryptoError as exc:
        raise PasswordHashError("the stored password hash could not be checked") from exc


def password_needs_rehash(stored: str, *, strength: KdfStrength | None = None) -> bool:
    """Whether ``stored`` was made at another cost than ``strength`` (default MODERATE)."""
    match = _parse(stored)
    cost = strength or KdfStrength.moderate()
    return (
        int(match["m"]) * 1024 != cost.memlimit
        or int(match["t"]) != cost.opslimit
        or int(match["p"]) != 1
    )


def new_token() -> str:
    """32 random bytes from the OS CSPRNG, URL-safe base64 without padding (43 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def token_digest(token: str) -> str:
    """SHA-256 (hex) of a bearer token: what is stored in place of the token itself.

    A token has 256 bits of entropy, so an unsalted fast hash is enough: nobody can guess
    a token from its digest, and a lookup by digest stays an index search.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
