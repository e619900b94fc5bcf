"""Tests for ``hub.crypto.payload``: chunked secretstream encryption and sealed content keys.

A payload's ciphertext is a 24-byte header and one sealed chunk per 64 KiB of plaintext,
the last tagged FINAL. Every way of damaging that layout (a flipped byte, a dropped or
cut chunk, bytes after the end, chunks swapped) must end in ``DecryptionFailed``.

Every key here is an INSECURE TEST KEY derived from a public, fixed seed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import random
from collections.abc import Iterable

import pytest

from hub.crypto import (
    CHUNK_SIZE,
    ContentKey,
    DecryptionFailed,
    NodeKeys,
    PayloadDecryptor,
    PayloadEncryptor,
    ciphertext_size,
    open_content_key,
    open_payload_bytes,
    seal_content_key,
    seal_payload_bytes,
)
from hub.crypto.payload import CIPHERTEXT_CHUNK_SIZE, HEADER_SIZE

INSECURE_TEST_READERS = {
    "health.bsw-icb": NodeKeys.from_seed(b"insecure-test-payload-health-000"),
    "police.ctp-sw": NodeKeys.from_seed(b"insecure-test-payload-police-000"),
    "la.wiltshire": NodeKeys.from_seed(b"insecure-test-payload-la-0000000"),
}
INSECURE_TEST_OUTSIDER = NodeKeys.from_seed(b"insecure-test-payload-outsider-0")
ABYTES = CIPHERTEXT_CHUNK_SIZE - CHUNK_SIZE

# Seeded so the "random" sizes are the same on every run; they are sizes, not secrets.
_RANDOM = random.Random(20240601)
RANDOM_SIZES = sorted(_RANDOM.randrange(2, 5 * CHUNK_SIZE) for _ in range(4))
EDGE_SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE, 3 * CHUNK_SIZE]


def _plaintext(size: int) -> bytes:
    # Distinct bytes per position, so a swapped or repeated chunk cannot look right.
    return hashlib.shake_256(size.to_bytes(8, "big")).digest(size) if size else b""


def _encrypt(plaintext: bytes, key: ContentKey) -> tuple[bytes, PayloadEncryptor]:
    encryptor = PayloadEncryptor(key)
    return b"".join(encryptor.encrypt_stream(io.BytesIO(plaintext))), encryptor


def _pieces(data: bytes, size: int) -> Iterable[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


def _decrypt(
    key: ContentKey,
    ciphertext: bytes,
    *,
    piece: int | None = None,
    expected_sha256: str | None = None,
) -> bytes:
    decryptor = PayloadDecryptor(key, expected_sha256=expected_sha256)
    out: list[bytes] = []
    for chunk in _pieces(ciphertext, piece or max(1, len(ciphertext))):
        out.extend(decryptor.feed(chunk))
    out.extend(decryptor.finish())
    return b"".join(out)


def _chunks(ciphertext: bytes) -> tuple[bytes, list[bytes]]:
    """Split a ciphertext into its header and its sealed chunks."""
    body = ciphertext[HEADER_SIZE:]
    return ciphertext[:HEADER_SIZE], list(_pieces(body, CIPHERTEXT_CHUNK_SIZE))


@pytest.fixture
def key() -> ContentKey:
    return ContentKey.generate()


# --------------------------------------------------------------------------------------
# Layout and round trips
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, 24 + 17),
        (1, 24 + 1 + 17),
        (CHUNK_SIZE - 1, 24 + 65535 + 17),
        (CHUNK_SIZE, 24 + 65536 + 17),
        (CHUNK_SIZE + 1, 24 + 65537 + 2 * 17),
        (3 * CHUNK_SIZE, 24 + 3 * 65536 + 3 * 17),
        (3 * CHUNK_SIZE + 1, 24 + 3 * 65536 + 1 + 4 * 17),
    ],
)
def test_ciphertext_size_known_answers(size: int, expected: int) -> None:
    # libsodium secretstream: a 24-byte header, and 17 bytes (1 tag + 16 MAC) per chunk.
    assert (HEADER_SIZE, ABYTES) == (24, 17)
    assert ciphertext_size(size) == expected


@pytest.mark.parametrize("size", EDGE_SIZES + RANDOM_SIZES)
def test_round_trip(key: ContentKey, size: int) -> None:
    plaintext = _plaintext(size)
    ciphertext, encryptor = _encrypt(plaintext, key)
    assert len(ciphertext) == ciphertext_size(size) == encryptor.size
    assert encryptor.sha256 == hashlib.sha256(ciphertext).hexdigest()
    assert _decrypt(key, ciphertext, expected_sha256=encryptor.sha256) == plaintext


def test_ciphertext_hides_the_plaintext_and_differs_per_key() -> None:
    plaintext = b"Synthetic test concern text. No real person. " * 50
    first, _ = _encrypt(plaintext, ContentKey.generate())
    second, _ = _encrypt(plaintext, ContentKey.generate())
    assert first != second
    assert b"Synthetic" not in first


@pytest.mark.parametrize("piece", [1, 7, 100_000, CIPHERTEXT_CHUNK_SIZE, CIPHERTEXT_CHUNK_SIZE + 1])
def test_decryption_does_not_depend_on_how_the_ciphertext_is_cut(
    key: ContentKey, piece: int
) -> None:
    plaintext = _plaintext(3 * CHUNK_SIZE + 5)
    ciphertext, encryptor = _encrypt(plaintext, key)
    assert _decrypt(key, ciphertext, piece=piece, expected_sha256=encryptor.sha256) == plaintext


def test_decryptor_streams_in_bounded_pieces(key: ContentKey) -> None:
    plaintext = _plaintext(4 * CHUNK_SIZE + 10)
    ciphertext, _ = _encrypt(plaintext, key)
    decryptor = PayloadDecryptor(key)
    # Two full chunks in: at least the first is released before the stream ends.
    early = list(decryptor.feed(ciphertext[: HEADER_SIZE + 2 * CIPHERTEXT_CHUNK_SIZE]))
    assert early
    assert b"".join(early) == plaintext[: len(b"".join(early))]
    rest = list(decryptor.feed(ciphertext[HEADER_SIZE + 2 * CIPHERTEXT_CHUNK_SIZE :]))
    rest.extend(decryptor.finish())
    pieces = early + rest
    assert max(len(p) for p in pieces) <= CHUNK_SIZE
    assert b"".join(pieces) == plaintext


def test_encryptor_refuses_oversized_chunks_and_pushes_after_final(key: ContentKey) -> None:
    encryptor = PayloadEncryptor(key)
    with pytest.raises(ValueError, match="at most"):
        encryptor.push(b"\x00" * (CHUNK_SIZE + 1), final=False)
    encryptor.push(b"last", final=True)
    with pytest.raises(ValueError, match="already finished"):
        encryptor.push(b"more", final=True)


def test_content_key_is_32_bytes_and_never_shown(key: ContentKey) -> None:
    assert len(key.raw()) == 32
    assert repr(key) == "ContentKey(<hidden>)"
    assert base64.b64encode(key.raw()).decode() not in repr(key)
    assert key.raw().hex() not in str(key)
    with pytest.raises(ValueError, match="32 bytes"):
        ContentKey(b"\x00" * 16)


# --------------------------------------------------------------------------------------
# Tampering, truncation, extension, reordering
# --------------------------------------------------------------------------------------

THREE_CHUNKS = 2 * CHUNK_SIZE + 1000  # two full MESSAGE chunks and a short FINAL one


@pytest.fixture
def three_chunk_stream(key: ContentKey) -> bytes:
    ciphertext, _ = _encrypt(_plaintext(THREE_CHUNKS), key)
    _header, chunks = _chunks(ciphertext)
    assert [len(c) for c in chunks] == [CIPHERTEXT_CHUNK_SIZE, CIPHERTEXT_CHUNK_SIZE, 1000 + ABYTES]
    return ciphertext


def _flip(data: bytes, index: int) -> bytes:
    damaged = bytearray(data)
    damaged[index] ^= 0x01
    return bytes(damaged)


@pytest.mark.parametrize(
    "index",
    [
        pytest.param(0, id="header-first-byte"),
        pytest.param(HEADER_SIZE - 1, id="header-last-byte"),
        pytest.param(HEADER_SIZE, id="first-chunk-tag"),
        pytest.param(HEADER_SIZE + CIPHERTEXT_CHUNK_SIZE + 500, id="middle-chunk"),
        pytest.param(HEADER_SIZE + 2 * CIPHERTEXT_CHUNK_SIZE, id="last-chunk-tag"),
        pytest.param(-1, id="last-chunk-last-byte"),
    ],
)
def test_a_flipped_byte_anywhere_is_detected(
    key: ContentKey, three_chunk_stream: bytes, index: int
) -> None:
    with pytest.raises(DecryptionFailed):
        _decrypt(key, _flip(three_chunk_stream, index))


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE])
def test_a_flipped_byte_in_a_single_chunk_payload_is_detected(key: ContentKey, size: int) -> None:
    ciphertext, _ = _encrypt(_plaintext(size), key)
    for index in (0, HEADER_SIZE, len(ciphertext) - 1):
        with pytest.raises(DecryptionFailed):
            _decrypt(key, _flip(ciphertext, index))


def test_dropping_the_final_chunk_is_detected(key: ContentKey, three_chunk_stream: bytes) -> None:
    header, chunks = _chunks(three_chunk_stream)
    with pytest.raises(DecryptionFailed, match="truncated"):
        _decrypt(key, header + b"".join(chunks[:-1]))
    with pytest.raises(DecryptionFailed, match="truncated"):
        _decrypt(key, header + chunks[0])


def test_dropping_a_full_size_final_chunk_is_detected(key: ContentKey) -> None:
    # Here every remaining chunk is full-size and authentic; only the FINAL tag is missing.
    ciphertext, _ = _encrypt(_plaintext(3 * CHUNK_SIZE), key)
    with pytest.raises(DecryptionFailed, match="truncated"):
        _decrypt(key, ciphertext[:-CIPHERTEXT_CHUNK_SIZE])


@pytest.mark.parametrize(
    "keep",
    [
        pytest.param(0, id="nothing"),
        pytest.param(HEADER_SIZE - 1, id="inside-header"),
        pytest.param(HEADER_SIZE, id="header-only"),
        pytest.param(HEADER_SIZE + 1000, id="inside-first-chunk"),
        pytest.param(HEADER_SIZE + CIPHERTEXT_CHUNK_SIZE + 1, id="one-byte-into-second"),
        pytest.param(-1, id="last-byte-missing"),
        pytest.param(-ABYTES, id="final-mac-missing"),
    ],
)
def test_a_ciphertext_cut_short_is_detected(
    key: ContentKey, three_chunk_stream: bytes, keep: int
) -> None:
    with pytest.raises(DecryptionFailed):
        _decrypt(key, three_chunk_stream[:keep])


@pytest.mark.parametrize("size", [0, 10, CHUNK_SIZE, THREE_CHUNKS])
@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(b"\x00", id="one-byte"),
        pytest.param(b"\x00" * ABYTES, id="an-empty-chunk's-worth"),
        pytest.param(b"\x00" * (CIPHERTEXT_CHUNK_SIZE + 1), id="more-than-a-chunk"),
    ],
)
def test_bytes_after_the_final_chunk_are_detected(key: ContentKey, size: int, extra: bytes) -> None:
    ciphertext, _ = _encrypt(_plaintext(size), key)
    with pytest.raises(DecryptionFailed):
        _decrypt(key, ciphertext + extra)


def test_a_repeated_final_chunk_is_detected(key: ContentKey) -> None:
    ciphertext, _ = _encrypt(_plaintext(2 * CHUNK_SIZE), key)
    header, chunks = _chunks(ciphertext)
    with pytest.raises(DecryptionFailed):
        _decrypt(key, header + b"".join(chunks) + chunks[-1])


def test_a_second_stream_appended_is_detected(key: ContentKey) -> None:
    ciphertext, _ = _encrypt(_plaintext(100), key)
    with pytest.raises(DecryptionFailed):
        _decrypt(key, ciphertext + ciphertext)


def test_reordered_chunks_are_detected(key: ContentKey) -> None:
    ciphertext, _ = _encrypt(_plaintext(3 * CHUNK_SIZE), key)
    header, chunks = _chunks(ciphertext)
    assert len(chunks) == 3
    for order in ([1, 0, 2], [0, 2, 1], [2, 1, 0]):
        with pytest.raises(DecryptionFailed):
            _decrypt(key, header + b"".join(chunks[i] for i in order))


def test_a_chunk_from_another_stream_is_detected(key: ContentKey) -> None:
    first, _ = _encrypt(_plaintext(THREE_CHUNKS), key)
    second, _ = _encrypt(_plaintext(THREE_CHUNKS), key)  # same key, fresh header
    header, chunks = _chunks(first)
    _, foreign = _chunks(second)
    with pytest.raises(DecryptionFailed):
        _decrypt(key, header + chunks[0] + foreign[1] + chunks[2])


def test_the_wrong_content_key_is_detected(three_chunk_stream: bytes) -> None:
    with pytest.raises(DecryptionFailed):
        _decrypt(ContentKey.generate(), three_chunk_stream)


def test_expected_sha256_is_enforced(key: ContentKey) -> None:
    plaintext = _plaintext(CHUNK_SIZE + 1)
    ciphertext, encryptor = _encrypt(plaintext, key)
    assert _decrypt(key, ciphertext, expected_sha256=encryptor.sha256) == plaintext
    for wrong in (hashlib.sha256(plaintext).hexdigest(), "0" * 64, encryptor.sha256.upper()):
        with pytest.raises(DecryptionFailed, match="sha256"):
            _decrypt(key, ciphertext, expected_sha256=wrong)


# --------------------------------------------------------------------------------------
# Sealed content keys and whole small payloads
# --------------------------------------------------------------------------------------

READER_PUBLIC = {node: keys.public.encryption for node, keys in INSECURE_TEST_READERS.items()}


def test_sealed_keys_open_for_every_reader(key: ContentKey) -> None:
    sealed = seal_content_key(key, READER_PUBLIC)
    assert list(sealed) == sorted(READER_PUBLIC)
    assert len(set(sealed.values())) == len(sealed)  # an ephemeral key per sealed box
    for node, keys in INSECURE_TEST_READERS.items():
        assert open_content_key(keys, sealed[node]).raw() == key.raw()


def test_a_sealed_key_opens_only_for_its_reader(key: ContentKey) -> None:
    sealed = seal_content_key(key, READER_PUBLIC)
    with pytest.raises(DecryptionFailed, match="not sealed to this node"):
        open_content_key(INSECURE_TEST_OUTSIDER, sealed["police.ctp-sw"])
    with pytest.raises(DecryptionFailed, match="not sealed to this node"):
        open_content_key(INSECURE_TEST_READERS["health.bsw-icb"], sealed["police.ctp-sw"])


@pytest.mark.parametrize(
    "sealed_b64",
    [
        pytest.param("", id="empty"),
        pytest.param("not base64!", id="bad-alphabet"),
        pytest.param("\u00e9t\u00e9", id="non-ascii"),
        pytest.param(base64.b64encode(b"\x00" * 10).decode(), id="too-short"),
        pytest.param(base64.b64encode(b"\x00" * 80).decode(), id="garbage"),
    ],
)
def test_malformed_sealed_keys_are_refused(sealed_b64: str) -> None:
    with pytest.raises(DecryptionFailed):
        open_content_key(INSECURE_TEST_READERS["la.wiltshire"], sealed_b64)


class _ShortKey:
    """Stands in for a content key of the wrong length, as a faulty sender might seal."""

    def raw(self) -> bytes:
        return b"\x00" * 16


def test_a_sealed_key_of_the_wrong_length_is_refused() -> None:
    reader = INSECURE_TEST_READERS["la.wiltshire"]
    sealed = seal_content_key(_ShortKey(), {"la.wiltshire": reader.public.encryption})  # type: ignore[arg-type]
    with pytest.raises(DecryptionFailed):
        open_content_key(reader, sealed["la.wiltshire"])


@pytest.mark.parametrize("size", [0, 1, 1000, CHUNK_SIZE - ABYTES - HEADER_SIZE, CHUNK_SIZE + 1])
def test_sealed_payload_opens_for_every_reader(size: int) -> None:
    plaintext = _plaintext(size)
    sealed = seal_payload_bytes(plaintext, READER_PUBLIC)
    assert sealed.sha256 == hashlib.sha256(sealed.ciphertext).hexdigest()
    assert len(sealed.ciphertext) == ciphertext_size(size)
    assert set(sealed.sealed_keys) == set(READER_PUBLIC)
    for node, keys in INSECURE_TEST_READERS.items():
        opened = open_payload_bytes(
            keys, node, sealed.sealed_keys, sealed.ciphertext, expected_sha256=sealed.sha256
        )
        assert opened == plaintext


def test_open_payload_bytes_refuses_the_wrong_recipient() -> None:
    sealed = seal_payload_bytes(
        b'{"concern": "synthetic"}', {"la.wiltshire": READER_PUBLIC["la.wiltshire"]}
    )
    # A node absent from sealed_keys.
    with pytest.raises(DecryptionFailed, match="no key sealed to this node"):
        open_payload_bytes(
            INSECURE_TEST_READERS["police.ctp-sw"],
            "police.ctp-sw",
            sealed.sealed_keys,
            sealed.ciphertext,
        )
    # A node that claims another reader's sealed key.
    with pytest.raises(DecryptionFailed, match="not sealed to this node"):
        open_payload_bytes(
            INSECURE_TEST_READERS["police.ctp-sw"],
            "la.wiltshire",
            sealed.sealed_keys,
            sealed.ciphertext,
        )


def test_open_payload_bytes_detects_tampering_and_hash_mismatch() -> None:
    reader = INSECURE_TEST_READERS["health.bsw-icb"]
    sealed = seal_payload_bytes(b"payload", {"health.bsw-icb": reader.public.encryption})
    with pytest.raises(DecryptionFailed):
        open_payload_bytes(
            reader, "health.bsw-icb", sealed.sealed_keys, _flip(sealed.ciphertext, -1)
        )
    with pytest.raises(DecryptionFailed, match="sha256"):
        open_payload_bytes(
            reader,
            "health.bsw-icb",
            sealed.sealed_keys,
            sealed.ciphertext,
            expected_sha256=hashlib.sha256(b"other").hexdigest(),
        )
