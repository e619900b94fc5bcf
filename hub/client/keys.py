"""Which of a node's keys to trust for a signature, and the statement that rotates them.

A node's directory entry lists every key pair it has had, each with its period
(:class:`~hub.model.DirectoryKey`). A signature counts only with the key that was the
signer's key when the hub received the message: the hub's signed receipt gives that
time (``received_at``); the sender's own ``created_at`` could say anything. A key rotated
away keeps its period, so what it signed before still verifies; a key marked compromised
is trusted only before ``compromised_from``.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime
from typing import Any

from hub.crypto import NodeKeys, SignatureContext, sign_document
from hub.model import DirectoryEntry, DirectoryKey, rfc3339

__all__ = ["key_valid_at", "rotation_statement", "signing_key_at"]


def key_valid_at(entry: DirectoryEntry, at: datetime) -> DirectoryKey | None:
    """The key pair that was ``entry``'s at ``at``, or None (none was, or it was then
    already compromised)."""
    for key in entry.keys:
        if key.valid_from <= at and (key.valid_until is None or at < key.valid_until):
            if key.compromised_from is not None and at >= key.compromised_from:
                return None
            return key
    return None


def signing_key_at(entry: DirectoryEntry, at: datetime) -> bytes | None:
    """The public signing key to check a signature the hub received at ``at`` with."""
    if not entry.keys:  # a directory from a hub that kept no key history
        return base64.b64decode(entry.signing_key)
    key = key_valid_at(entry, at)
    return None if key is None else base64.b64decode(key.signing_key)


def rotation_statement(
    node_id: str, current: NodeKeys, new: NodeKeys, *, at: datetime
) -> dict[str, Any]:
    """The body of ``POST /v1/keys/rotate``: the new public keys and the key they replace,
    signed by the NEW signing key (proof of possession); the request itself is signed by
    the current key."""
    statement: dict[str, Any] = {
        "node": node_id,
        "signing_key": base64.b64encode(new.public.signing).decode("ascii"),
        "encryption_key": base64.b64encode(new.public.encryption).decode("ascii"),
        "previous_signing_key": base64.b64encode(current.public.signing).decode("ascii"),
        "requested_at": rfc3339(at),
        "nonce": secrets.token_urlsafe(18),
    }
    statement["signature"] = sign_document(statement, new.signing, SignatureContext.KEY_ROTATION)
    return statement
