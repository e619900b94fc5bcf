"""Tests for ``hub.crypto.signing`` and ``hub.crypto.canonical``.

The keys here are INSECURE TEST KEYS derived from public, fixed seeds. Ed25519 (RFC 8032)
is deterministic, so a fixed seed and document give one exact signature: the vector below
was computed once and is checked independently with the ``cryptography`` package (OpenSSL),
so it pins both our code and the libsodium binding against a second implementation.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.crypto import (
    CryptoError,
    NodeKeys,
    SignatureContext,
    SignatureInvalid,
    canonical_json,
    canonical_sha256,
    sign_document,
    signing_input,
    verify_document,
)

INSECURE_TEST_KAT_SEED = b"insecure-test-kat-seed-000000000"
INSECURE_TEST_KAT_KEYS = NodeKeys.from_seed(INSECURE_TEST_KAT_SEED)
INSECURE_TEST_OTHER_KEYS = NodeKeys.from_seed(b"insecure-test-other-seed-0000000")

KAT_DOCUMENT: dict[str, Any] = {
    "kind": "note",
    "sender": "health.bsw-icb",
    "recipients": ["la.wiltshire"],
    "size": 42,
}
KAT_CANONICAL = b'{"kind":"note","recipients":["la.wiltshire"],"sender":"health.bsw-icb","size":42}'
KAT_ENVELOPE_SIGNATURE = (
    "5qVIxQ4JnC7dJ6q7eGbmfj9rg+/cn6CGj26NRf+7VuOIhKnNX/98Md458xD3z3gHd5MgMNj3KqTbWtOwXGIkCQ=="
)


def _signed(document: dict[str, Any], context: bytes = SignatureContext.ENVELOPE) -> dict[str, Any]:
    return {
        **document,
        "signature": sign_document(document, INSECURE_TEST_KAT_KEYS.signing, context),
    }


# --------------------------------------------------------------------------------------
# RFC 8785 canonical JSON
# --------------------------------------------------------------------------------------


def test_canonical_json_rfc8785_section_3_2_2_example() -> None:
    # The worked example of RFC 8785 section 3.2.2 (numbers, escapes, literals, ordering).
    document = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    assert canonical_json(document) == expected


def test_canonical_json_sorts_keys_by_utf16_code_units() -> None:
    # RFC 8785 section 3.2.3: sorting is over UTF-16 code units, so U+1F600 (surrogates
    # D83D DE00) sorts before U+FB33 although its code point is larger.
    document = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    keys_in_output = [
        "\r",
        "1",
        "\u0080",
        "\u00f6",
        "\u20ac",
        "\U0001f600",
        "\ufb33",
    ]
    expected = "{" + ",".join(f'"{_escape(k)}":"{document[k]}"' for k in keys_in_output) + "}"
    assert canonical_json(document) == expected.encode("utf-8")


def _escape(key: str) -> str:
    return "\\r" if key == "\r" else key


@pytest.mark.parametrize(
    ("number", "spelled"),
    [
        (1e21, b"1e+21"),
        (1e20, b"100000000000000000000"),
        (0.000001, b"0.000001"),
        (1e-7, b"1e-7"),
        (-0.0, b"0"),
        (4.0, b"4"),
        (9007199254740991, b"9007199254740991"),
    ],
)
def test_canonical_json_number_formatting(number: float, spelled: bytes) -> None:
    # RFC 8785 section 3.2.2.3: numbers are spelled as ECMAScript's Number.toString.
    assert canonical_json([number]) == b"[" + spelled + b"]"


def test_canonical_json_escapes_controls_and_keeps_other_unicode() -> None:
    assert (
        canonical_json("\u0000\u001f\u007f\u00e9\u2028")
        == b'"\\u0000\\u001f\x7f\xc3\xa9\xe2\x80\xa8"'
    )


@pytest.mark.parametrize(
    "unrepresentable",
    [float("nan"), float("inf"), float("-inf"), 2**53, {1: "int key"}, b"bytes"],
)
def test_canonical_json_refuses_what_json_cannot_carry(unrepresentable: Any) -> None:
    with pytest.raises(CryptoError, match="cannot be canonicalised"):
        canonical_json({"value": unrepresentable})


def test_canonical_sha256_known_answer() -> None:
    # sha256(b'{"a":1}'), computable with any tool: printf '{"a":1}' | sha256sum
    assert canonical_sha256({"a": 1}) == (
        "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
    )


# --------------------------------------------------------------------------------------
# Known-answer signature, proved with a second Ed25519 implementation
# --------------------------------------------------------------------------------------


def test_signing_input_is_context_then_canonical_bytes_without_signature() -> None:
    signed = {**KAT_DOCUMENT, "signature": "ignored"}
    assert (
        signing_input(signed, SignatureContext.ENVELOPE) == b"seh/envelope/v1\x00" + KAT_CANONICAL
    )
    assert canonical_json(KAT_DOCUMENT) == KAT_CANONICAL


def test_envelope_signature_known_answer() -> None:
    signature = sign_document(
        KAT_DOCUMENT, INSECURE_TEST_KAT_KEYS.signing, SignatureContext.ENVELOPE
    )
    assert signature == KAT_ENVELOPE_SIGNATURE


def test_known_answer_verifies_with_an_independent_ed25519_implementation() -> None:
    # OpenSSL via ``cryptography``: RFC 8032 Ed25519 from the same 32-byte seed, over the
    # bytes the design says are signed: the context prefix, then the RFC 8785 form.
    independent = Ed25519PrivateKey.from_private_bytes(INSECURE_TEST_KAT_SEED)
    message = b"seh/envelope/v1\x00" + KAT_CANONICAL
    signature = base64.b64decode(KAT_ENVELOPE_SIGNATURE)
    independent.public_key().verify(signature, message)  # raises InvalidSignature if wrong
    assert independent.sign(message) == signature
    with pytest.raises(InvalidSignature):
        independent.public_key().verify(signature, b"seh/receipt/v1\x00" + KAT_CANONICAL)


def test_signature_made_by_an_independent_implementation_verifies_here() -> None:
    independent = Ed25519PrivateKey.from_private_bytes(b"insecure-test-openssl-key-000000")
    public = independent.public_key().public_bytes_raw()
    document = {"message_id": "m-1", "node": "police.ctp-sw"}
    signature = independent.sign(SignatureContext.ACK + canonical_json(document))
    verify_document(
        {**document, "signature": base64.b64encode(signature).decode()},
        public,
        SignatureContext.ACK,
    )


# --------------------------------------------------------------------------------------
# verify_document refuses everything that is not exactly what was signed
# --------------------------------------------------------------------------------------

PUBLIC = INSECURE_TEST_KAT_KEYS.public.signing


def test_verify_document_accepts_the_signed_document() -> None:
    verify_document(_signed(KAT_DOCUMENT), PUBLIC, SignatureContext.ENVELOPE)


def test_verify_document_is_independent_of_key_order() -> None:
    # The signature is over canonical bytes, so a receiver that parsed the keys in
    # another order still verifies.
    signed = _signed(KAT_DOCUMENT)
    reordered = dict(reversed(list(signed.items())))
    verify_document(reordered, PUBLIC, SignatureContext.ENVELOPE)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda d: d.__setitem__("size", 43), id="changed-number"),
        pytest.param(lambda d: d.__setitem__("kind", "referral"), id="changed-string"),
        pytest.param(lambda d: d["recipients"].append("police.ctp-sw"), id="nested-added"),
        pytest.param(lambda d: d.__setitem__("size", 42.5), id="changed-type"),
        pytest.param(lambda d: d.__setitem__("size", "42"), id="number-as-string"),
        pytest.param(lambda d: d.pop("sender"), id="removed-field"),
        pytest.param(lambda d: d.__setitem__("urgency", "urgent"), id="added-field"),
        pytest.param(lambda d: d.__setitem__("extra", None), id="added-null-field"),
    ],
)
def test_verify_document_rejects_tampering(tamper: Any) -> None:
    signed = copy.deepcopy(_signed(KAT_DOCUMENT))
    tamper(signed)
    with pytest.raises(SignatureInvalid):
        verify_document(signed, PUBLIC, SignatureContext.ENVELOPE)


@pytest.mark.parametrize(
    ("signed_as", "checked_as"),
    [
        (SignatureContext.RECEIPT, SignatureContext.ENVELOPE),
        (SignatureContext.ENVELOPE, SignatureContext.RECEIPT),
        (SignatureContext.ACK, SignatureContext.ENVELOPE),
        (SignatureContext.DIRECTORY, SignatureContext.ACK),
    ],
)
def test_a_signature_is_valid_only_in_its_own_context(signed_as: bytes, checked_as: bytes) -> None:
    signed = _signed(KAT_DOCUMENT, signed_as)
    verify_document(signed, PUBLIC, signed_as)
    with pytest.raises(SignatureInvalid):
        verify_document(signed, PUBLIC, checked_as)


def test_verify_document_rejects_another_nodes_key() -> None:
    with pytest.raises(SignatureInvalid):
        verify_document(
            _signed(KAT_DOCUMENT),
            INSECURE_TEST_OTHER_KEYS.public.signing,
            SignatureContext.ENVELOPE,
        )


def test_verify_document_rejects_a_malformed_public_key() -> None:
    with pytest.raises(SignatureInvalid):
        verify_document(_signed(KAT_DOCUMENT), b"\x00" * 31, SignatureContext.ENVELOPE)


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        pytest.param(None, "no signature", id="missing"),
        pytest.param(12345, "no signature", id="not-a-string"),
        pytest.param("not base64!!", "not base64", id="bad-alphabet"),
        pytest.param("AAA", "not base64", id="bad-padding"),
        # Non-ASCII text makes base64 raise a plain ValueError, not binascii.Error.
        pytest.param("\u00e9" * 88, "not base64", id="non-ascii"),
        pytest.param(base64.b64encode(b"\x00" * 63).decode(), "64 bytes", id="63-bytes"),
        pytest.param(base64.b64encode(b"\x00" * 65).decode(), "64 bytes", id="65-bytes"),
        pytest.param("", "64 bytes", id="empty"),
        pytest.param(base64.b64encode(b"\x00" * 64).decode(), "does not verify", id="zeros"),
    ],
)
def test_verify_document_rejects_malformed_signatures(signature: Any, reason: str) -> None:
    document: dict[str, Any] = dict(KAT_DOCUMENT)
    if signature is not None:
        document["signature"] = signature
    with pytest.raises(SignatureInvalid, match=reason):
        verify_document(document, PUBLIC, SignatureContext.ENVELOPE)


def test_verify_document_rejects_a_flipped_signature_bit() -> None:
    raw = bytearray(base64.b64decode(KAT_ENVELOPE_SIGNATURE))
    raw[10] ^= 0x01
    document = {**KAT_DOCUMENT, "signature": base64.b64encode(bytes(raw)).decode()}
    with pytest.raises(SignatureInvalid):
        verify_document(document, PUBLIC, SignatureContext.ENVELOPE)


@pytest.mark.parametrize("unrepresentable", [2**60, float("nan")])
def test_verify_document_refuses_a_document_without_canonical_form(unrepresentable: Any) -> None:
    # JSON parsers accept integers beyond 2**53 that RFC 8785 cannot encode; such a
    # document cannot have been signed, and the caller must see SignatureInvalid.
    signed = {**_signed(KAT_DOCUMENT), "size": unrepresentable}
    with pytest.raises(SignatureInvalid, match="canonical"):
        verify_document(signed, PUBLIC, SignatureContext.ENVELOPE)
