"""Console password hashes (Argon2id) and random tokens."""

from __future__ import annotations

import base64
import hashlib

import pytest

from hub.crypto import (
    CryptoError,
    KdfStrength,
    PasswordHashError,
    hash_password,
    new_token,
    password_needs_rehash,
    token_digest,
    verify_password,
)

FAST = KdfStrength.insecure_minimum()
PASSWORD = "correct horse battery staple"


def test_round_trip_and_wrong_password() -> None:
    stored = hash_password(PASSWORD, strength=FAST)
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD + "!")
    assert not verify_password(stored, "")


def test_the_stored_hash_is_argon2id_with_the_cost_asked_for() -> None:
    stored = hash_password(PASSWORD, strength=FAST)
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert PASSWORD not in stored
    interactive = hash_password(PASSWORD, strength=KdfStrength.interactive())
    assert interactive.startswith("$argon2id$v=19$m=65536,t=2,p=1$")


def test_each_hash_has_its_own_salt() -> None:
    assert hash_password(PASSWORD, strength=FAST) != hash_password(PASSWORD, strength=FAST)


def test_composed_and_decomposed_accents_are_the_same_password() -> None:
    stored = hash_password("caf\u00e9 au lait, s'il vous pla\u00eet", strength=FAST)
    assert verify_password(stored, "cafe\u0301 au lait, s'il vous pla\u0131\u0302t") is False
    assert verify_password(stored, "cafe\u0301 au lait, s'il vous pla\u00eet")


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$2b$12$abcdefghijklmnopqrstuv",
        "$argon2id$v=19$m=8,t=1,p=1$short$x",
    ],
)
def test_a_malformed_stored_hash_is_an_error_not_a_refusal(stored: str) -> None:
    with pytest.raises(PasswordHashError):
        verify_password(stored, PASSWORD)
    with pytest.raises(PasswordHashError):
        password_needs_rehash(stored)
    assert issubclass(PasswordHashError, CryptoError)


def test_a_truncated_hash_is_an_error() -> None:
    stored = hash_password(PASSWORD, strength=FAST)
    with pytest.raises(PasswordHashError):
        verify_password(stored.rsplit("$", 1)[0], PASSWORD)


def test_needs_rehash_when_the_cost_differs() -> None:
    fast = hash_password(PASSWORD, strength=FAST)
    assert not password_needs_rehash(fast, strength=FAST)
    assert password_needs_rehash(fast, strength=KdfStrength.interactive())
    assert password_needs_rehash(fast)  # the production default is MODERATE


def test_production_default_is_libsodium_moderate() -> None:
    moderate = KdfStrength.moderate()
    # OWASP's floor for Argon2id is 19 MiB and 2 passes; MODERATE is 256 MiB and 3.
    assert moderate.memlimit >= 19 * 1024 * 1024
    assert moderate.opslimit >= 2
    assert moderate.memlimit == 256 * 1024 * 1024


def test_new_token_is_32_random_bytes_urlsafe() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert len(token) == 43
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert len(base64.urlsafe_b64decode(token + "=")) == 32


def test_token_digest_is_sha256_hex() -> None:
    token = new_token()
    assert token_digest(token) == hashlib.sha256(token.encode()).hexdigest()
    assert token not in token_digest(token)
