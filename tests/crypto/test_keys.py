"""Tests for ``hub.crypto.keys``: key pairs, known answers and key files.

Every key here is an INSECURE TEST KEY derived from a public, fixed seed. The known
answers are checked against the ``cryptography`` package (OpenSSL), a second
implementation of Ed25519 (RFC 8032) and X25519 (RFC 7748).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hub.crypto import (
    KdfStrength,
    KeyFileError,
    KeyFilePermissionError,
    NodeKeys,
    PublicKeys,
    SignatureInvalid,
    SigningKey,
    read_key_file,
    verify_detached,
    write_key_file,
)

INSECURE_TEST_KAT_SEED = b"insecure-test-kat-seed-000000000"
INSECURE_TEST_KAT_SIGNING_PUBLIC = "Bpnm+Ovfm5CuKOaswk4d5wP6ytg2BIbUgmsmSUPaqfo="
INSECURE_TEST_KAT_ENCRYPTION_PUBLIC = "5lJamvf9DzlgI5paNmzgHNm6Nt/Ecl6vUWsJi1BxLGk="
INSECURE_TEST_PASSPHRASE = b"insecure test passphrase"
# Argon2id at libsodium's INTERACTIVE cost keeps these tests fast; real files use MODERATE.
FAST_KDF = KdfStrength.interactive()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture
def keys() -> NodeKeys:
    return NodeKeys.from_seed(INSECURE_TEST_KAT_SEED)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    # With umask 000 a file gets exactly the mode it was created with, so a test sees
    # whether the code asked for 0600 rather than inheriting a strict umask.
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------------------
# Known answers, proved with a second implementation
# --------------------------------------------------------------------------------------


def test_public_keys_known_answer(keys: NodeKeys) -> None:
    assert _b64(keys.public.signing) == INSECURE_TEST_KAT_SIGNING_PUBLIC
    assert _b64(keys.public.encryption) == INSECURE_TEST_KAT_ENCRYPTION_PUBLIC


def test_signing_public_key_matches_an_independent_ed25519() -> None:
    # RFC 8032 section 5.1.5: the public key is derived from the 32-byte seed.
    independent = Ed25519PrivateKey.from_private_bytes(INSECURE_TEST_KAT_SEED)
    assert _b64(independent.public_key().public_bytes_raw()) == INSECURE_TEST_KAT_SIGNING_PUBLIC


def test_encryption_public_key_matches_an_independent_x25519() -> None:
    # libsodium crypto_box_seed_keypair: the X25519 secret is SHA-512(seed)[:32], and the
    # public key is that scalar times the base point (RFC 7748 section 6.1).
    secret = hashlib.sha512(INSECURE_TEST_KAT_SEED).digest()[:32]
    independent = X25519PrivateKey.from_private_bytes(secret)
    assert _b64(independent.public_key().public_bytes_raw()) == INSECURE_TEST_KAT_ENCRYPTION_PUBLIC


def test_from_seed_is_deterministic_and_seed_dependent() -> None:
    again = NodeKeys.from_seed(INSECURE_TEST_KAT_SEED)
    other = NodeKeys.from_seed(b"insecure-test-kat-seed-000000001")
    assert again.public == NodeKeys.from_seed(INSECURE_TEST_KAT_SEED).public
    assert other.public.signing != again.public.signing
    assert other.public.encryption != again.public.encryption


def test_generated_keys_differ() -> None:
    first, second = NodeKeys.generate(), NodeKeys.generate()
    assert first.public.signing != second.public.signing
    assert first.public.encryption != second.public.encryption
    assert len(first.public.signing) == len(first.public.encryption) == 32


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_seeds_of_the_wrong_length_are_refused(length: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        NodeKeys.from_seed(b"\x00" * length)
    with pytest.raises(ValueError, match="32 bytes"):
        SigningKey(b"\x00" * length)
    with pytest.raises(ValueError, match="32 bytes"):
        NodeKeys(b"\x00" * 32, b"\x00" * length)


def test_sign_detached_and_verify_detached(keys: NodeKeys) -> None:
    signature = keys.signing.sign_detached(b"message")
    assert len(signature) == 64
    verify_detached(keys.public.signing, b"message", signature)
    with pytest.raises(SignatureInvalid):
        verify_detached(keys.public.signing, b"messagE", signature)
    with pytest.raises(SignatureInvalid):
        verify_detached(NodeKeys.generate().public.signing, b"message", signature)
    with pytest.raises(SignatureInvalid):
        verify_detached(b"\x01" * 16, b"message", signature)


# --------------------------------------------------------------------------------------
# Secrets never appear in repr or str
# --------------------------------------------------------------------------------------


def test_repr_and_str_never_show_secret_material(keys: NodeKeys) -> None:
    secrets = [keys.signing.seed, keys.encryption_secret]
    assert keys.signing.seed == INSECURE_TEST_KAT_SEED  # the seed really is the secret here
    shown = [repr(keys), str(keys), f"{keys}", repr(keys.signing), str(keys.signing)]
    for text in shown:
        for secret in secrets:
            assert _b64(secret) not in text
            assert _b64(secret).rstrip("=")[:16] not in text
            assert secret.hex() not in text
            assert repr(secret) not in text
    # The public key is what identifies a key pair in a log line.
    assert INSECURE_TEST_KAT_SIGNING_PUBLIC in repr(keys)


# --------------------------------------------------------------------------------------
# Public keys as published
# --------------------------------------------------------------------------------------


def test_public_keys_json_round_trip(keys: NodeKeys) -> None:
    published = keys.public.to_json()
    assert published == {
        "signing_key": INSECURE_TEST_KAT_SIGNING_PUBLIC,
        "encryption_key": INSECURE_TEST_KAT_ENCRYPTION_PUBLIC,
    }
    assert PublicKeys.from_json(published) == keys.public


@pytest.mark.parametrize(
    "published",
    [
        pytest.param([], id="not-an-object"),
        pytest.param({"signing_key": INSECURE_TEST_KAT_SIGNING_PUBLIC}, id="missing-field"),
        pytest.param(
            {"signing_key": "not base64!", "encryption_key": INSECURE_TEST_KAT_ENCRYPTION_PUBLIC},
            id="bad-base64",
        ),
        pytest.param(
            {"signing_key": _b64(b"\x00" * 31), "encryption_key": INSECURE_TEST_KAT_SIGNING_PUBLIC},
            id="short-key",
        ),
    ],
)
def test_public_keys_from_json_refuses_malformed_input(published: Any) -> None:
    with pytest.raises(KeyFileError):
        PublicKeys.from_json(published)


# --------------------------------------------------------------------------------------
# Key files: plain
# --------------------------------------------------------------------------------------


def _assert_same_keys(read: NodeKeys, written: NodeKeys) -> None:
    assert read.signing.seed == written.signing.seed
    assert read.encryption_secret == written.encryption_secret
    assert read.public == written.public


def test_key_file_round_trip(tmp_path: Path, keys: NodeKeys) -> None:
    path = tmp_path / "node.key"
    write_key_file(path, keys)
    _assert_same_keys(read_key_file(path), keys)


def test_key_file_is_written_0600_whatever_the_umask(
    tmp_path: Path, keys: NodeKeys, permissive_umask: None
) -> None:
    path = tmp_path / "nested" / "node.key"
    write_key_file(path, keys)
    assert _mode(path) == 0o600
    # The atomic write leaves no temporary file beside the key.
    assert [p.name for p in path.parent.iterdir()] == ["node.key"]


def test_generated_keys_survive_a_key_file(tmp_path: Path) -> None:
    keys = NodeKeys.generate()
    write_key_file(tmp_path / "node.key", keys)
    _assert_same_keys(read_key_file(tmp_path / "node.key"), keys)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o601, 0o610, 0o666])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, keys: NodeKeys, mode: int) -> None:
    path = tmp_path / "node.key"
    write_key_file(path, keys)
    path.chmod(mode)
    with pytest.raises(KeyFilePermissionError, match=f"{mode:04o}") as caught:
        read_key_file(path)
    assert _b64(keys.signing.seed) not in str(caught.value)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_owner_only_modes_are_accepted(tmp_path: Path, keys: NodeKeys, mode: int) -> None:
    path = tmp_path / "node.key"
    write_key_file(path, keys)
    path.chmod(mode)
    _assert_same_keys(read_key_file(path), keys)


def test_key_file_is_never_overwritten(tmp_path: Path, keys: NodeKeys) -> None:
    path = tmp_path / "node.key"
    write_key_file(path, keys)
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(path, NodeKeys.generate())
    assert path.read_bytes() == before
    _assert_same_keys(read_key_file(path), keys)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        read_key_file(tmp_path / "absent.key")


def _write_raw(path: Path, body: bytes) -> Path:
    path.write_bytes(body)
    path.chmod(0o600)
    return path


def _valid_doc(keys: NodeKeys) -> dict[str, Any]:
    return {
        "format": "seh-node-keys/1",
        "signing_seed": _b64(keys.signing.seed),
        "encryption_secret": _b64(keys.encryption_secret),
    }


def test_hand_written_plain_key_file_is_read(tmp_path: Path, keys: NodeKeys) -> None:
    # Pins the on-disk format, so a change to it cannot pass unnoticed.
    path = _write_raw(tmp_path / "node.key", json.dumps(_valid_doc(keys)).encode())
    _assert_same_keys(read_key_file(path), keys)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"", "not valid JSON", id="empty"),
        pytest.param(b"{not json", "not valid JSON", id="malformed-json"),
        pytest.param(b"\xff\xfe\x00", "not valid JSON", id="not-utf8"),
        pytest.param(b"[1, 2]", "not a key file", id="array"),
        pytest.param(b'"seh-node-keys/1"', "not a key file", id="string"),
        pytest.param(b"{}", "unknown format", id="no-format"),
        pytest.param(b'{"format": "seh-node-keys/2"}', "unknown format", id="future-format"),
        pytest.param(b'{"format": "openssh"}', "unknown format", id="foreign-format"),
    ],
)
def test_malformed_key_files_are_refused(tmp_path: Path, body: bytes, message: str) -> None:
    path = _write_raw(tmp_path / "node.key", body)
    with pytest.raises(KeyFileError, match=message):
        read_key_file(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"signing_seed": None}, "lacks 'signing_seed'", id="no-seed"),
        pytest.param({"encryption_secret": None}, "lacks 'encryption_secret'", id="no-secret"),
        pytest.param({"signing_seed": "%%%%"}, "signing_seed is not valid base64", id="bad-b64"),
        pytest.param({"signing_seed": _b64(b"\x00" * 31)}, "must be 32 bytes", id="short-seed"),
        pytest.param(
            {"encryption_secret": _b64(b"\x00" * 33)}, "must be 32 bytes", id="long-secret"
        ),
    ],
)
def test_key_files_with_bad_fields_are_refused(
    tmp_path: Path, keys: NodeKeys, change: dict[str, Any], message: str
) -> None:
    doc = _valid_doc(keys)
    for name, value in change.items():
        if value is None:
            del doc[name]
        else:
            doc[name] = value
    path = _write_raw(tmp_path / "node.key", json.dumps(doc).encode())
    with pytest.raises(KeyFileError, match=message):
        read_key_file(path)


# --------------------------------------------------------------------------------------
# Key files: encrypted at rest under a passphrase
# --------------------------------------------------------------------------------------


@pytest.fixture
def encrypted_key_file(tmp_path: Path, keys: NodeKeys) -> Path:
    path = tmp_path / "node.key"
    write_key_file(path, keys, passphrase=INSECURE_TEST_PASSPHRASE, kdf=FAST_KDF)
    return path


def test_encrypted_key_file_round_trip(encrypted_key_file: Path, keys: NodeKeys) -> None:
    assert _mode(encrypted_key_file) == 0o600
    _assert_same_keys(read_key_file(encrypted_key_file, passphrase=INSECURE_TEST_PASSPHRASE), keys)


def test_encrypted_key_file_holds_no_secret_in_the_clear(
    encrypted_key_file: Path, keys: NodeKeys
) -> None:
    body = encrypted_key_file.read_bytes()
    doc = json.loads(body)
    assert doc["format"] == "seh-node-keys-encrypted/1"
    assert doc["kdf"] == "argon2id"
    # The cost is recorded so that the file opens whatever the reader's default is.
    assert (doc["opslimit"], doc["memlimit"]) == (FAST_KDF.opslimit, FAST_KDF.memlimit)
    assert doc["public"] == keys.public.to_json()
    for secret in (keys.signing.seed, keys.encryption_secret):
        assert _b64(secret).encode() not in body
        assert secret.hex().encode() not in body
        assert secret not in body
    assert INSECURE_TEST_PASSPHRASE not in body


def test_two_encryptions_of_the_same_keys_differ(tmp_path: Path, keys: NodeKeys) -> None:
    # A fresh salt and nonce per file: equal files would reveal equal keys.
    for name in ("a.key", "b.key"):
        write_key_file(tmp_path / name, keys, passphrase=INSECURE_TEST_PASSPHRASE, kdf=FAST_KDF)
    first = json.loads((tmp_path / "a.key").read_bytes())
    second = json.loads((tmp_path / "b.key").read_bytes())
    assert first["salt"] != second["salt"]
    assert first["ciphertext"] != second["ciphertext"]


def test_wrong_passphrase_is_refused(encrypted_key_file: Path) -> None:
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        read_key_file(encrypted_key_file, passphrase=b"insecure test passphrasE")


def test_missing_passphrase_is_refused(encrypted_key_file: Path) -> None:
    with pytest.raises(KeyFileError, match="passphrase is needed"):
        read_key_file(encrypted_key_file)


def test_encrypted_key_file_permissions_are_checked_before_anything(
    encrypted_key_file: Path,
) -> None:
    encrypted_key_file.chmod(0o640)
    with pytest.raises(KeyFilePermissionError):
        read_key_file(encrypted_key_file, passphrase=INSECURE_TEST_PASSPHRASE)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"salt": None}, "lacks 'salt'", id="no-salt"),
        pytest.param({"ciphertext": None}, "lacks 'ciphertext'", id="no-ciphertext"),
        pytest.param({"opslimit": None}, "lacks 'opslimit'", id="no-opslimit"),
        pytest.param({"salt": _b64(b"\x00" * 8)}, "salt must be 16 bytes", id="short-salt"),
        pytest.param({"ciphertext": "@@@@"}, "ciphertext is not valid base64", id="bad-b64"),
        pytest.param({"ciphertext": _b64(b"\x00" * 10)}, "wrong passphrase", id="short-box"),
        pytest.param({"opslimit": "many"}, "opslimit", id="opslimit-not-a-number"),
        pytest.param({"memlimit": [64]}, "memlimit", id="memlimit-not-a-number"),
    ],
)
def test_damaged_encrypted_key_files_are_refused(
    encrypted_key_file: Path, change: dict[str, Any], message: str
) -> None:
    doc = json.loads(encrypted_key_file.read_bytes())
    for name, value in change.items():
        if value is None:
            del doc[name]
        else:
            doc[name] = value
    encrypted_key_file.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError, match=message):
        read_key_file(encrypted_key_file, passphrase=INSECURE_TEST_PASSPHRASE)


def test_tampered_ciphertext_in_an_encrypted_key_file_is_refused(encrypted_key_file: Path) -> None:
    doc = json.loads(encrypted_key_file.read_bytes())
    sealed = bytearray(base64.b64decode(doc["ciphertext"]))
    sealed[-1] ^= 0x01
    doc["ciphertext"] = _b64(bytes(sealed))
    encrypted_key_file.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError):
        read_key_file(encrypted_key_file, passphrase=INSECURE_TEST_PASSPHRASE)
