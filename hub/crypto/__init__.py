"""The only package that imports ``nacl`` or ``gnupg`` (STYLE.md rules 3 and 4).

Everything else calls the names exported here: canonical JSON, signing and verifying
documents, sealing and opening payloads, key files, HTTP message signatures, password
hashes and random tokens.
"""

from hub.crypto.canonical import canonical_json, canonical_sha256
from hub.crypto.errors import (
    CryptoError,
    DecryptionFailed,
    KeyFileError,
    KeyFilePermissionError,
    SignatureInvalid,
)
from hub.crypto.keys import (
    KdfStrength,
    NodeKeys,
    PublicKeys,
    SigningKey,
    key_fingerprint,
    public_key_sha256,
    read_key_file,
    verify_detached,
    write_key_file,
)
from hub.crypto.passwords import (
    PasswordHashError,
    hash_password,
    new_token,
    password_needs_rehash,
    token_digest,
    verify_password,
)
from hub.crypto.payload import (
    CHUNK_SIZE,
    ContentKey,
    PayloadDecryptor,
    PayloadEncryptor,
    SealedPayload,
    ciphertext_size,
    open_content_key,
    open_payload_bytes,
    seal_content_key,
    seal_payload_bytes,
)
from hub.crypto.signing import SignatureContext, sign_document, signing_input, verify_document

__all__ = [
    "CHUNK_SIZE",
    "ContentKey",
    "CryptoError",
    "DecryptionFailed",
    "KdfStrength",
    "KeyFileError",
    "KeyFilePermissionError",
    "NodeKeys",
    "PasswordHashError",
    "PayloadDecryptor",
    "PayloadEncryptor",
    "PublicKeys",
    "SealedPayload",
    "SignatureContext",
    "SignatureInvalid",
    "SigningKey",
    "canonical_json",
    "canonical_sha256",
    "ciphertext_size",
    "hash_password",
    "key_fingerprint",
    "new_token",
    "open_content_key",
    "open_payload_bytes",
    "password_needs_rehash",
    "public_key_sha256",
    "read_key_file",
    "seal_content_key",
    "seal_payload_bytes",
    "sign_document",
    "signing_input",
    "token_digest",
    "verify_detached",
    "verify_document",
    "verify_password",
    "write_key_file",
]
