"""End-to-end payload encryption in bounded memory (DESIGN.md section 4).

A payload is encrypted once under a fresh 32-byte content key with libsodium
``crypto_secretstream_xchacha20poly1305`` in 64 KiB chunks; the content key is sealed
(X25519 sealed box) to each reader. The ciphertext is the 24-byte stream header followed
by one sealed chunk per 64 KiB of plaintext, the last tagged FINAL, so truncation,
reordering and extension are all detected. Memory use is one chunk whatever the size.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

import nacl.bindings as sodium
import nacl.exceptions
import nacl.public
import nacl.utils

from hub.crypto.errors import DecryptionFailed
from hub.crypto.keys import NodeKeys

__all__ = [
    "CHUNK_SIZE",
    "CIPHERTEXT_CHUNK_SIZE",
    "HEADER_SIZE",
    "ContentKey",
    "PayloadDecryptor",
    "PayloadEncryptor",
    "SealedPayload",
    "ciphertext_size",
    "open_content_key",
    "open_payload_bytes",
    "seal_content_key",
    "seal_payload_bytes",
]

CHUNK_SIZE = 64 * 1024
HEADER_SIZE: int = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
_ABYTES: int = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
CIPHERTEXT_CHUNK_SIZE = CHUNK_SIZE + _ABYTES
_TAG_MESSAGE: int = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL: int = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL


def ciphertext_size(plaintext_size: int) -> int:
    """The exact ciphertext length for a plaintext of ``plaintext_size`` bytes."""
    # The last non-empty chunk carries the FINAL tag; an empty plaintext is one empty chunk.
    chunks = max(1, -(-plaintext_size // CHUNK_SIZE))
    return HEADER_SIZE + plaintext_size + chunks * _ABYTES


class ContentKey:
    """A fresh symmetric key for one payload. Never logged, never stored in the clear."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != sodium.crypto_secretstream_xchacha20poly1305_KEYBYTES:
            raise ValueError("a content key is 32 bytes")
        self._key = key

    @classmethod
    def generate(cls) -> ContentKey:
        return cls(sodium.crypto_secretstream_xchacha20poly1305_keygen())

    def raw(self) -> bytes:
        return self._key

    def __repr__(self) -> str:
        return "ContentKey(<hidden>)"


def seal_content_key(
    key: ContentKey, reader_encryption_keys: Mapping[str, bytes]
) -> dict[str, str]:
    """Seal the content key to each reader's X25519 key: ``{node_id: base64 sealed box}``."""
    return {
        node: base64.b64encode(
            nacl.public.SealedBox(nacl.public.PublicKey(public)).encrypt(key.raw())
        ).decode("ascii")
        for node, public in sorted(reader_encryption_keys.items())
    }


def open_content_key(node_keys: NodeKeys, sealed_b64: str) -> ContentKey:
    """Open a content key sealed to this node; wrong key or tampering → DecryptionFailed.

    A sealed box names no recipient, but opens only under the key it was sealed to (its
    nonce is derived from that public key): the node's current X25519 key is tried first,
    then each key it held before a rotation, newest first; the first that opens it is the
    key the sender sealed to.
    """
    try:
        sealed = base64.b64decode(sealed_b64, validate=True)
    except ValueError as exc:  # binascii.Error, or text that is not ASCII
        raise DecryptionFailed("the content key is not sealed to this node") from exc
    for private in node_keys._private_box_keys():
        try:
            raw = nacl.public.SealedBox(private).decrypt(sealed)
        except (nacl.exceptions.CryptoError, ValueError):
            continue
        try:
            # A sender could seal a key of the wrong length (ValueError).
            return ContentKey(raw)
        except ValueError as exc:
            raise DecryptionFailed("the content key is not sealed to this node") from exc
    raise DecryptionFailed("the content key is not sealed to this node")


class PayloadEncryptor:
    """Streaming encryptor: feed plaintext chunks, get ciphertext pieces and a running hash.

    Call :meth:`header` first, then :meth:`push` for each chunk of at most ``CHUNK_SIZE``
    bytes with ``final=True`` on the last one (which may be empty).
    """

    def __init__(self, key: ContentKey) -> None:
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        self._header: bytes = sodium.crypto_secretstream_xchacha20poly1305_init_push(
            self._state, key.raw()
        )
        self._hash = hashlib.sha256(self._header)
        self._size = len(self._header)
        self._finished = False

    def header(self) -> bytes:
        return self._header

    def push(self, chunk: bytes, *, final: bool) -> bytes:
        if self._finished:
            raise ValueError("the stream is already finished")
        if len(chunk) > CHUNK_SIZE:
            raise ValueError(f"chunks are at most {CHUNK_SIZE} bytes")
        sealed: bytes = sodium.crypto_secretstream_xchacha20poly1305_push(
            self._state, chunk, None, _TAG_FINAL if final else _TAG_MESSAGE
        )
        self._hash.update(sealed)
        self._size += len(sealed)
        self._finished = final
        return sealed

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @property
    def size(self) -> int:
        return self._size

    def encrypt_stream(self, source: BinaryIO) -> Iterator[bytes]:
        """Yield the header and every sealed chunk of ``source``, one chunk in memory."""
        yield self.header()
        current = _read_full(source, CHUNK_SIZE)
        while True:
            following = _read_full(source, CHUNK_SIZE)
            if not following:
                yield self.push(current, final=True)
                return
            yield self.push(current, final=False)
            current = following


def _read_full(source: BinaryIO, size: int) -> bytes:
    """Read exactly ``size`` bytes unless the source ends first (pipes return less)."""
    data = source.read(size)
    if not data or len(data) == size:
        return data
    pieces = [data]
    remaining = size - len(data)
    while remaining:
        more = source.read(remaining)
        if not more:
            break
        pieces.append(more)
        remaining -= len(more)
    return b"".join(pieces)


class PayloadDecryptor:
    """Streaming decryptor over ciphertext pieces of any size; checks hash and FINAL tag."""

    def __init__(self, key: ContentKey, *, expected_sha256: str | None = None) -> None:
        self._key = key
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        self._buffer = bytearray()
        self._started = False
        self._finished = False
        self._hash = hashlib.sha256()
        self._expected = expected_sha256

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Accept ciphertext bytes; yield every plaintext chunk that is now complete."""
        self._hash.update(data)
        self._buffer += data
        if not self._started:
            if len(self._buffer) < HEADER_SIZE:
                return
            header = bytes(self._buffer[:HEADER_SIZE])
            del self._buffer[:HEADER_SIZE]
            try:
                sodium.crypto_secretstream_xchacha20poly1305_init_pull(
                    self._state, header, self._key.raw()
                )
            except (nacl.exceptions.CryptoError, ValueError) as exc:
                raise DecryptionFailed("payload header is invalid") from exc
            self._started = True
        # Keep the last full-size chunk buffered until we know whether more follows:
        # only then can a short last piece be told from the FINAL chunk.
        while len(self._buffer) > CIPHERTEXT_CHUNK_SIZE:
            yield self._pull(bytes(self._buffer[:CIPHERTEXT_CHUNK_SIZE]))
            del self._buffer[:CIPHERTEXT_CHUNK_SIZE]

    def finish(self) -> Iterator[bytes]:
        """Decrypt what remains; fail unless the stream ended exactly at its FINAL chunk."""
        if not self._started:
            raise DecryptionFailed("payload is shorter than its header")
        if self._buffer:
            yield self._pull(bytes(self._buffer))
            self._buffer.clear()
        if not self._finished:
            raise DecryptionFailed("payload is truncated: no final chunk")
        if self._expected is not None and self._hash.hexdigest() != self._expected:
            raise DecryptionFailed("payload ciphertext does not match the envelope's sha256")

    def _pull(self, sealed: bytes) -> bytes:
        if self._finished:
            raise DecryptionFailed("payload has data after its final chunk")
        try:
            message, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
                self._state, sealed, None
            )
        except (nacl.exceptions.CryptoError, ValueError, RuntimeError) as exc:
            raise DecryptionFailed("payload chunk failed authentication") from exc
        if tag == _TAG_FINAL:
            self._finished = True
        return bytes(message)


@dataclass(frozen=True, slots=True)
class SealedPayload:
    """A small payload encrypted in memory (inline transport)."""

    ciphertext: bytes
    sha256: str
    sealed_keys: dict[str, str]


def seal_payload_bytes(
    plaintext: bytes, reader_encryption_keys: Mapping[str, bytes]
) -> SealedPayload:
    """Encrypt a small document for every reader (for inline payloads)."""
    key = ContentKey.generate()
    encryptor = PayloadEncryptor(key)
    ciphertext = b"".join(encryptor.encrypt_stream(io.BytesIO(plaintext)))
    return SealedPayload(
        ciphertext=ciphertext,
        sha256=encryptor.sha256,
        sealed_keys=seal_content_key(key, reader_encryption_keys),
    )


def open_payload_bytes(
    node_keys: NodeKeys,
    node_id: str,
    sealed_keys: Mapping[str, str],
    ciphertext: bytes,
    *,
    expected_sha256: str | None = None,
) -> bytes:
    """Decrypt a small payload held in memory."""
    sealed = sealed_keys.get(node_id)
    if sealed is None:
        raise DecryptionFailed("the payload has no key sealed to this node")
    decryptor = PayloadDecryptor(
        open_content_key(node_keys, sealed), expected_sha256=expected_sha256
    )
    out = list(decryptor.feed(ciphertext))
    out.extend(decryptor.finish())
    return b"".join(out)
