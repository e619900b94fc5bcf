"""RFC 8785 JSON Canonicalization Scheme: the only bytes that are ever signed or hashed."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

from hub.crypto.errors import CryptoError

__all__ = ["canonical_json", "canonical_sha256"]

# Integers JCS can represent exactly (IEEE 754 doubles, RFC 8785 section 3.2.2.3).
_MAX_SAFE_INTEGER = 2**53 - 1


def _is_simple(value: Any) -> bool:
    """True when the stdlib encoder's output is already the JCS form.

    That holds for documents whose object keys are ASCII (so sorting by code point equals
    JCS's sorting by UTF-16 code unit), whose numbers are integers JCS represents exactly,
    and which hold no floats (whose JCS form follows ECMAScript, not Python's repr).
    Python's ``ensure_ascii=False`` escaping of strings (``\\"``, ``\\\\``, ``\\b``,
    ``\\f``, ``\\n``, ``\\r``, ``\\t``, other controls as lower-case ``\\u00xx``) is the
    JCS escaping (RFC 8785 section 3.2.2.2). Every envelope, receipt and acknowledgement
    the hub signs is such a document, and the stdlib encoder is ~20 times faster.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        if isinstance(item, int):
            if -_MAX_SAFE_INTEGER <= item <= _MAX_SAFE_INTEGER:
                continue
            return False
        if isinstance(item, dict):
            for key in item:
                if not isinstance(key, str) or not key.isascii():
                    return False
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            return False
    return True


def canonical_json(document: Any) -> bytes:
    """The JCS (RFC 8785) encoding of a parsed JSON document."""
    if _is_simple(document):
        return json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
    try:
        return rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CryptoError(f"document cannot be canonicalised: {exc}") from exc


def canonical_sha256(document: Any) -> str:
    """Lower-case hex SHA-256 of the canonical form."""
    return hashlib.sha256(canonical_json(document)).hexdigest()
