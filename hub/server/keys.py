"""Key rotation (``POST /v1/keys/rotate``) and the key history the directory publishes.

A node replaces its keys with a request signed, as every request is, by its **current**
key (RFC 9421), whose body carries the new Ed25519 and X25519 public keys and a proof of
possession: the **new** signing key's signature over a statement binding the node id,
both new keys, the key being replaced and a fresh time and nonce
(:class:`~hub.model.KeyRotationRequest`). The old key vouches for the new one and the new
one proves it has a holder, so neither a stolen request nor a stranger's public key can
be installed.

What a caller may rely on:

* Every check happens before anything is written; a refusal lists every broken rule
  (``KEY-*``) and changes nothing.
* The new keys, the end of the old key's period, the key history row and the audit entry
  commit in one transaction, with the node's row locked and the rotation's time taken
  under that lock, so a message is either accepted before the rotation (and verifies with
  the old key) or refused after it (see ``ExchangeService.submit``).
* From then on the old key authenticates nothing: in this process at once (the node
  cache is dropped), in another hub process within ``limits.node_cache_seconds``.
* Signatures the old key made before the rotation stay valid: the directory lists every
  key with its period (:func:`directory_entry`) and nodes check a signature against the
  key valid when the hub received the message.

Marking a key compromised is a different, operator-only act (``hub admin
compromise-key``, :func:`hub.registry.mark_key_compromised`).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from hub.audit.log import AuditLog
from hub.crypto import (
    PublicKeys,
    SignatureContext,
    SignatureInvalid,
    key_fingerprint,
    verify_document,
)
from hub.errors import Unauthenticated, Unprocessable
from hub.model import KeyRotationRequest, Violation, loads_strict, rfc3339
from hub.registry import (
    RegistryError,
    install_keys,
    key_change_entry,
    key_status,
    node_key_history,
    with_current_key,
)
from hub.server.nodes import NodeCache
from hub.store import NodeKeyRecord, NodeRecord, Store, UnitOfWork
from hub.validation import parse_wire

__all__ = ["KeyService", "directory_entries", "directory_entry"]

log = logging.getLogger("hub.keys")

Clock = Callable[[], datetime]
_KEY_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _key_json(key: NodeKeyRecord) -> dict[str, Any]:
    document: dict[str, Any] = {
        "signing_key": _b64(key.signing_key),
        "encryption_key": _b64(key.encryption_key),
        "valid_from": rfc3339(key.valid_from),
        "status": key_status(key),
    }
    if key.valid_until is not None:
        document["valid_until"] = rfc3339(key.valid_until)
    if key.compromised_from is not None:
        document["compromised_from"] = rfc3339(key.compromised_from)
    return document


def directory_entry(node: NodeRecord, history: Sequence[NodeKeyRecord]) -> dict[str, Any]:
    """A node as the directory publishes it: its current keys and every key it has had."""
    return {
        "id": node.id,
        "agency_type": node.agency_type,
        "display_name": node.display_name,
        "signing_key": _b64(node.signing_key),
        "encryption_key": _b64(node.encryption_key),
        "accreditation": node.accreditation,
        "status": node.status,
        "keys": [_key_json(key) for key in with_current_key(node, history)],
    }


def directory_entries(
    nodes: Sequence[NodeRecord], keys: Sequence[NodeKeyRecord]
) -> list[dict[str, Any]]:
    """Every node's directory entry, given every node's key history rows."""
    by_node: dict[str, list[NodeKeyRecord]] = {}
    for row in keys:
        by_node.setdefault(row.node_id, []).append(row)
    return [directory_entry(node, by_node.get(node.id, ())) for node in nodes]


def _violation(rule: str, path: str, message: str) -> Violation:
    return Violation(rule=rule, path=path, message=message)


def _public_key(encoded: str, path: str, what: str, problems: list[Violation]) -> bytes:
    raw = base64.b64decode(encoded)
    if len(raw) != _KEY_BYTES:
        message = f"an {what} public key is {_KEY_BYTES} bytes, not {len(raw)}"
        problems.append(_violation("KEY-04", path, message))
    return raw


class KeyService:
    def __init__(
        self,
        *,
        store: Store,
        nodes: NodeCache,
        audit: AuditLog,
        clock: Clock,
        window_seconds: int,
    ) -> None:
        self._store = store
        self._nodes = nodes
        self._audit = audit
        self._clock = clock
        self._window = window_seconds

    async def rotate(self, node: NodeRecord, raw: bytes) -> dict[str, Any]:
        """Check a rotation request from ``node`` (authenticated by its current key) and
        make its new keys current; the node's updated directory entry."""
        _refuse_without_proof(raw)
        document, request = parse_wire(KeyRotationRequest, raw, what="key rotation")
        problems: list[Violation] = []
        if request.node != node.id:
            problems.append(
                _violation(
                    "KEY-01",
                    "$.node",
                    f"is {request.node!r} but the request is signed by {node.id!r}'s key",
                )
            )
        if base64.b64decode(request.previous_signing_key) != node.signing_key:
            problems.append(
                _violation(
                    "KEY-02",
                    "$.previous_signing_key",
                    "must be the key being replaced: this node's current signing key, the one "
                    "that signs the request",
                )
            )
        now = self._clock()
        if abs(now - request.requested_at) > timedelta(seconds=self._window):
            problems.append(
                _violation(
                    "KEY-03",
                    "$.requested_at",
                    f"must be within {self._window} seconds of the hub's clock "
                    f"({rfc3339(now)}); make a fresh statement",
                )
            )
        new_keys = PublicKeys(
            signing=_public_key(request.signing_key, "$.signing_key", "Ed25519", problems),
            encryption=_public_key(request.encryption_key, "$.encryption_key", "X25519", problems),
        )
        async with self._store.read() as view:
            history = await node_key_history(view, node)
        problems += _reused(new_keys, history)
        try:
            verify_document(document, new_keys.signing, SignatureContext.KEY_ROTATION)
        except SignatureInvalid:
            problems.append(
                _violation(
                    "KEY-05",
                    "$.signature",
                    "does not verify with the new signing_key: the proof of possession is the "
                    "NEW key's signature over this statement (RFC 8785 form without "
                    "'signature', context seh/key-rotation/v1)",
                )
            )
        if problems:
            raise Unprocessable(
                "The key rotation was refused; the node's keys are unchanged.",
                slug="key-rotation-refused",
                title="Key rotation refused",
                violations=problems,
            )

        async def apply(tx: UnitOfWork) -> dict[str, Any] | str:
            current = await tx.nodes.get_for_update(node.id)
            if current is None or current.signing_key != node.signing_key:
                return "keys changed while the rotation was in flight"
            if current.status != "active":
                return f"node is {current.status}"
            # Taken under the row lock: a message accepted before this moment was checked
            # against the old key, and one checked after it sees the new key.
            at = self._clock()
            try:
                updated = await install_keys(tx, current, new_keys, at=at, reason="rotated")
            except RegistryError as exc:  # a concurrent rotation to these very keys
                return str(exc)
            await self._audit.append(
                tx,
                key_change_entry(
                    node.id,
                    "ROTATED",
                    at,
                    keys=(node.signing_key, new_keys.signing, new_keys.encryption),
                ),
            )
            return directory_entry(updated, await node_key_history(tx, updated))

        # A transaction of its own, not a group-commit batch: it takes the node's row lock
        # first and the log's last, and a failure fails only this request.
        async with self._store.transaction() as tx:
            outcome = await apply(tx)
        if isinstance(outcome, str):
            # Like any request signed by a key that is no longer the node's (STYLE rule 6).
            log.warning("authentication failed: %s %s", outcome, {"keyid": node.id})
            raise Unauthenticated(outcome, keyid=node.id, path="/v1/keys/rotate")
        self._nodes.forget()
        log.info(
            "node %s rotated its keys: signing %s, encryption %s",
            node.id,
            key_fingerprint(new_keys.signing),
            key_fingerprint(new_keys.encryption),
        )
        return outcome


def _refuse_without_proof(raw: bytes) -> None:
    """A statement with no proof of possession gets its own answer, naming the field."""
    try:
        document = loads_strict(raw)
    except ValueError:
        return  # parse_wire gives the JSON error
    if isinstance(document, dict) and "signature" not in document:
        raise Unprocessable(
            "The key rotation was refused; the node's keys are unchanged.",
            slug="key-rotation-refused",
            title="Key rotation refused",
            violations=[
                _violation(
                    "KEY-05",
                    "$.signature",
                    "is missing: the proof of possession, the NEW signing key's signature over "
                    "this statement, is required",
                )
            ],
        )


def _reused(new_keys: PublicKeys, history: Sequence[NodeKeyRecord]) -> list[Violation]:
    problems = []
    if any(key.signing_key == new_keys.signing for key in history):
        problems.append(
            _violation(
                "KEY-04",
                "$.signing_key",
                "this node has used this signing key before: generate new keys",
            )
        )
    if any(key.encryption_key == new_keys.encryption for key in history):
        problems.append(
            _violation(
                "KEY-04",
                "$.encryption_key",
                "this node has used this encryption key before: generate new keys",
            )
        )
    return problems
