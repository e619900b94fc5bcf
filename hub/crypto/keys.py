"""Node and hub key pairs, and key files that never leave their owner's hands.

Every node holds two key pairs (DESIGN.md section 2): Ed25519 for signing and X25519 for
receiving sealed payload keys. A key file holds both secrets, is written with mode 0600,
is refused when its permissions are looser, and may be encrypted at rest under a
passphrase with Argon2id (libsodium ``crypto_pwhash``) and XSalsa20-Poly1305.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.public
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils

from hub.crypto.errors import KeyFileError, KeyFilePermissionError, SignatureInvalid

__all__ = [
    "KdfStrength",
    "NodeKeys",
    "PublicKeys",
    "SigningKey",
    "key_fingerprint",
    "public_key_sha256",
    "read_key_file",
    "verify_detached",
    "write_key_file",
]

_KEY_FILE_FORMAT = "seh-node-keys/1"
_ENCRYPTED_KEY_FILE_FORMAT = "seh-node-keys-encrypted/1"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, *, what: str, length: int | None = None) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{what} is not valid base64") from exc
    if length is not None and len(raw) != length:
        raise KeyFileError(f"{what} must be {length} bytes, got {len(raw)}")
    return raw


def public_key_sha256(public_key: bytes) -> str:
    """SHA-256 of a raw public key, hex: how the audit log names a key."""
    return hashlib.sha256(public_key).hexdigest()


def key_fingerprint(public_key: bytes) -> str:
    """A public key's fingerprint to read aloud: the first 160 bits of its SHA-256, in
    ten groups of four hex digits (``3f2a 9c01 ...``), a prefix of :func:`public_key_sha256`.

    Checked by phone or in person when a key is enrolled or rotated (deploy/key-ceremony.md).
    """
    digest = public_key_sha256(public_key)[:40]
    return " ".join(digest[i : i + 4] for i in range(0, 40, 4))


class SigningKey:
    """An Ed25519 signing key. Only ``hub.crypto`` sees the libsodium object."""

    __slots__ = ("_key",)

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        self._key = nacl.signing.SigningKey(seed)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(nacl.utils.random(32))

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    @property
    def public_bytes(self) -> bytes:
        return bytes(self._key.verify_key)

    def sign_detached(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._key.sign(message).signature

    def __repr__(self) -> str:  # never print key material
        return f"SigningKey(public={_b64(self.public_bytes)})"


def verify_detached(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Verify an Ed25519 signature; raise :class:`SignatureInvalid` when it does not hold."""
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError) as exc:
        raise SignatureInvalid("signature does not verify") from exc


@dataclass(frozen=True, slots=True)
class PublicKeys:
    """The public half of a node's keys, as published in the hub directory."""

    signing: bytes  # Ed25519, 32 bytes
    encryption: bytes  # X25519, 32 bytes

    def to_json(self) -> dict[str, str]:
        return {"signing_key": _b64(self.signing), "encryption_key": _b64(self.encryption)}

    @classmethod
    def from_json(cls, doc: Any) -> PublicKeys:
        if not isinstance(doc, dict):
            raise KeyFileError("public keys must be a JSON object")
        try:
            signing, encryption = doc["signing_key"], doc["encryption_key"]
        except KeyError as exc:
            raise KeyFileError(f"public keys lack {exc.args[0]!r}") from exc
        return cls(
            signing=_unb64(str(signing), what="signing_key", length=32),
            encryption=_unb64(str(encryption), what="encryption_key", length=32),
        )


class NodeKeys:
    """A node's (or the hub's) secret keys: Ed25519 for signing, X25519 for receiving.

    After a key rotation a node still holds its earlier X25519 secrets (``previous``,
    newest first), so a payload sealed to an old encryption key still opens; it signs
    only with its current key.
    """

    __slots__ = ("_box", "_previous", "signing")

    def __init__(
        self,
        signing_seed: bytes,
        encryption_secret: bytes,
        *,
        previous_encryption_secrets: tuple[bytes, ...] = (),
    ) -> None:
        if len(encryption_secret) != 32 or any(len(s) != 32 for s in previous_encryption_secrets):
            raise ValueError("an X25519 secret key is 32 bytes")
        self.signing = SigningKey(signing_seed)
        self._box = nacl.public.PrivateKey(encryption_secret)
        self._previous = tuple(nacl.public.PrivateKey(s) for s in previous_encryption_secrets)

    def with_previous(self, earlier: tuple[NodeKeys, ...]) -> NodeKeys:
        """These keys, also able to open what was sealed to ``earlier`` keys' X25519 keys
        (and to the keys those remembered): what a node holds after rotating."""
        secrets: list[bytes] = []
        for keys in earlier:
            for box in (keys._box, *keys._previous):
                if bytes(box) != bytes(self._box) and bytes(box) not in secrets:
                    secrets.append(bytes(box))
        return NodeKeys(
            self.signing.seed, bytes(self._box), previous_encryption_secrets=tuple(secrets)
        )

    @property
    def previous_encryption_keys(self) -> tuple[bytes, ...]:
        """The public X25519 keys of the earlier secrets this holds, newest first."""
        return tuple(bytes(box.public_key) for box in self._previous)

    @classmethod
    def generate(cls) -> NodeKeys:
        return cls(nacl.utils.random(32), nacl.utils.random(32))

    @classmethod
    def from_seed(cls, seed: bytes) -> NodeKeys:
        """Deterministic keys for tests and known-answer vectors. Never for real nodes."""
        if len(seed) != 32:
            raise ValueError("a seed is 32 bytes")
        box = nacl.public.PrivateKey.from_seed(seed)
        return cls(seed, bytes(box))

    @property
    def public(self) -> PublicKeys:
        return PublicKeys(signing=self.signing.public_bytes, encryption=bytes(self._box.public_key))

    @property
    def encryption_secret(self) -> bytes:
        return bytes(self._box)

    def _private_box_key(self) -> nacl.public.PrivateKey:
        return self._box

    def _private_box_keys(self) -> tuple[nacl.public.PrivateKey, ...]:
        """The current X25519 secret first, then the earlier ones, newest first."""
        return (self._box, *self._previous)

    def __repr__(self) -> str:
        return f"NodeKeys(signing_public={_b64(self.signing.public_bytes)})"


@dataclass(frozen=True, slots=True)
class KdfStrength:
    """Argon2id cost (libsodium ``crypto_pwhash``): key files at rest, console passwords."""

    opslimit: int
    memlimit: int

    @classmethod
    def moderate(cls) -> KdfStrength:
        # libsodium's MODERATE: 3 passes, 256 MiB; about a second on a 2-core machine.
        return cls(nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE)

    @classmethod
    def interactive(cls) -> KdfStrength:
        return cls(
            nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE, nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
        )

    @classmethod
    def insecure_minimum(cls) -> KdfStrength:
        """INSECURE, for tests only: one pass over 8 KiB, so tests hash in microseconds."""
        return cls(nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)


def write_key_file(
    path: Path,
    keys: NodeKeys,
    *,
    passphrase: bytes | None = None,
    kdf: KdfStrength | None = None,
) -> None:
    """Write ``keys`` to ``path`` with mode 0600, atomically; refuse to overwrite a file."""
    secret_doc = {
        "format": _KEY_FILE_FORMAT,
        "signing_seed": _b64(keys.signing.seed),
        "encryption_secret": _b64(keys.encryption_secret),
    }
    plain = json.dumps(secret_doc).encode()
    if passphrase is None:
        body = plain
    else:
        strength = kdf or KdfStrength.moderate()
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        wrapping_key = nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE,
            passphrase,
            salt,
            opslimit=strength.opslimit,
            memlimit=strength.memlimit,
        )
        sealed = nacl.secret.SecretBox(wrapping_key).encrypt(plain)
        body = json.dumps(
            {
                "format": _ENCRYPTED_KEY_FILE_FORMAT,
                "kdf": "argon2id",
                "opslimit": strength.opslimit,
                "memlimit": strength.memlimit,
                "salt": _b64(salt),
                "ciphertext": _b64(bytes(sealed)),
                "public": keys.public.to_json(),
            }
        ).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key file")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        # link() fails if the target exists, so a file created since the check above is
        # never overwritten (os.replace would silently replace it).
        try:
            os.link(tmp, path)
        except FileExistsError as exc:
            raise KeyFileError(f"{path} already exists; refusing to overwrite a key file") from exc
        finally:
            tmp.unlink(missing_ok=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


_KDF_CEILING = {
    "opslimit": nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE,
    "memlimit": nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE,
}


def _kdf_limit(doc: dict[str, Any], name: str, path: Path) -> int:
    # write_key_file records the Argon2id cost as JSON integers; anything else is damage,
    # and int() on it would raise ValueError or TypeError past the KeyFileError boundary.
    value = doc[name]
    if type(value) is not int:
        raise KeyFileError(f"key file {path} has a {name} that is not an integer")
    # The cost is read from the file, so a damaged or hostile file could ask for any
    # amount of memory or time: accept nothing beyond libsodium's SENSITIVE level.
    ceiling = _KDF_CEILING[name]
    if not 1 <= value <= ceiling:
        raise KeyFileError(f"key file {path} has a {name} outside 1..{ceiling}")
    return value


def read_key_file(path: Path, *, passphrase: bytes | None = None) -> NodeKeys:
    """Read a key file written by :func:`write_key_file`.

    Refuses a file that group or others may read or write (SecureDrop does the same for
    its keys), and names what is wrong without ever echoing key material.
    """
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file {path} does not exist") from exc
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise KeyFilePermissionError(
            f"key file {path} has mode {stat.S_IMODE(info.st_mode):04o}; "
            "it must be readable by its owner only (chmod 600)"
        )
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"key file {path} is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise KeyFileError(f"key file {path} is not a key file")
    fmt = doc.get("format")
    if fmt == _ENCRYPTED_KEY_FILE_FORMAT:
        if passphrase is None:
            raise KeyFileError(f"key file {path} is encrypted; a passphrase is needed")
        try:
            wrapping_key = nacl.pwhash.argon2id.kdf(
                nacl.secret.SecretBox.KEY_SIZE,
                passphrase,
                _unb64(str(doc["salt"]), what="salt", length=nacl.pwhash.argon2id.SALTBYTES),
                opslimit=_kdf_limit(doc, "opslimit", path),
                memlimit=_kdf_limit(doc, "memlimit", path),
            )
            plain = nacl.secret.SecretBox(wrapping_key).decrypt(
                _unb64(str(doc["ciphertext"]), what="ciphertext")
            )
        except KeyError as exc:
            raise KeyFileError(f"key file {path} lacks {exc.args[0]!r}") from exc
        except nacl.exceptions.CryptoError as exc:
            raise KeyFileError(f"wrong passphrase for key file {path}") from exc
        try:
            doc = json.loads(plain)
        except ValueError as exc:
            raise KeyFileError(f"key file {path} holds no valid key document") from exc
        fmt = doc.get("format") if isinstance(doc, dict) else None
    if fmt != _KEY_FILE_FORMAT or not isinstance(doc, dict):
        raise KeyFileError(f"key file {path} has unknown format {fmt!r}")
    try:
        return NodeKeys(
            _unb64(str(doc["signing_seed"]), what="signing_seed", length=32),
            _unb64(str(doc["encryption_secret"]), what="encryption_secret", length=32),
        )
    except KeyError as exc:
        raise KeyFileError(f"key file {path} lacks {exc.args[0]!r}") from exc
