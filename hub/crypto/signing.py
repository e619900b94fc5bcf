"""Signing and verifying JSON documents (envelopes, receipts, acks, the directory).

One place signs and one place verifies, always over the RFC 8785 canonical bytes of the
document *as received* minus its ``signature`` member (STYLE.md rule 3), never over a
re-serialised model. A signature is domain-separated by a context string so that a
signature over a receipt can never be replayed as one over an envelope.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from hub.crypto.canonical import canonical_json
from hub.crypto.errors import CryptoError, SignatureInvalid
from hub.crypto.keys import SigningKey, verify_detached

__all__ = ["SignatureContext", "sign_document", "signing_input", "verify_document"]

SIGNATURE_FIELD = "signature"


class SignatureContext:
    """Domain-separation prefixes: what kind of document a signature is for."""

    ENVELOPE = b"seh/envelope/v1\x00"
    RECEIPT = b"seh/receipt/v1\x00"
    ACK = b"seh/ack/v1\x00"
    REJECTION = b"seh/rejection/v1\x00"
    DIRECTORY = b"seh/directory/v1\x00"
    TREE_HEAD = b"seh/tree-head/v1\x00"
    # A node's new signing key over its rotation statement: proof that it holds the key.
    KEY_ROTATION = b"seh/key-rotation/v1\x00"


def signing_input(document: Mapping[str, Any], context: bytes) -> bytes:
    """The exact bytes signed: ``context || JCS(document without 'signature')``."""
    unsigned = {k: v for k, v in document.items() if k != SIGNATURE_FIELD}
    return context + canonical_json(unsigned)


def sign_document(document: Mapping[str, Any], key: SigningKey, context: bytes) -> str:
    """Base64 Ed25519 signature over :func:`signing_input`."""
    return base64.b64encode(key.sign_detached(signing_input(document, context))).decode("ascii")


def verify_document(document: Mapping[str, Any], public_key: bytes, context: bytes) -> None:
    """Raise :class:`SignatureInvalid` unless ``document['signature']`` verifies."""
    encoded = document.get(SIGNATURE_FIELD)
    if not isinstance(encoded, str):
        raise SignatureInvalid("document has no signature")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII text (a plain ValueError)
        raise SignatureInvalid("signature is not base64") from exc
    if len(signature) != 64:
        raise SignatureInvalid("an Ed25519 signature is 64 bytes")
    try:
        signed_bytes = signing_input(document, context)
    except CryptoError as exc:  # e.g. an integer beyond 2**53: nothing could have signed it
        raise SignatureInvalid("document has no canonical form") from exc
    verify_detached(public_key, signed_bytes, signature)
