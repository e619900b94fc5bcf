"""RFC 8785 JSON Canonicalization Scheme: the only bytes that are ever signed or hashed."""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

from hub.crypto.errors import CryptoError

__all__ = ["canonical_json", "canonical_sha256"]


def canonical_json(document: Any) -> bytes:
    """The JCS (RFC 8785) encoding of a parsed JSON document."""
    try:
        return rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CryptoError(f"document cannot be canonicalised: {exc}") from exc


def canonical_sha256(document: Any) -> str:
    """Lower-case hex SHA-256 of the canonical form."""
    return hashlib.sha256(canonical_json(document)).hexdigest()
