"""The hub's transparency log: append inside the transaction, sign tree heads, prove.

Each accepted, refused, delivered or acknowledged message appends one metadata entry in
the same transaction as the change it records (so the log and the store cannot
disagree). The log's size and frontier live in one locked row: an append costs O(log n)
and, with group commit, one lock per batch, not per message. Every append yields a signed
tree head that includes it; receipts carry that head and the entry's index.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub.audit.merkle import (
    EMPTY_ROOT,
    CompactTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_inclusion,
)
from hub.crypto import (
    NodeKeys,
    SignatureContext,
    SignatureInvalid,
    canonical_json,
    sign_document,
    verify_document,
)
from hub.model import AuditEntry, LogPosition, TreeHead, rfc3339
from hub.store import AuditRow, StoredHead, UnitOfWork

__all__ = [
    "AuditLog",
    "entry_leaf_hash",
    "stored_tree_head",
    "tree_head_document",
    "verify_receipt_inclusion",
    "verify_tree_head",
]


def entry_leaf_hash(entry_json: str) -> bytes:
    """RFC 9162 leaf hash of an entry's canonical JSON."""
    return leaf_hash(entry_json.encode("utf-8"))


def tree_head_document(size: int, root: bytes, timestamp: datetime) -> dict[str, Any]:
    return {"size": size, "root_hash": root.hex(), "timestamp": rfc3339(timestamp)}


def verify_tree_head(head: TreeHead, hub_signing_key: bytes) -> bool:
    """True when ``head`` carries the hub's signature over its size, root and time."""
    document = head.model_dump(mode="json")
    document["timestamp"] = rfc3339(head.timestamp)
    try:
        verify_document(document, hub_signing_key, SignatureContext.TREE_HEAD)
    except SignatureInvalid:
        return False
    return True


def verify_receipt_inclusion(
    position: LogPosition, entry_json: str, proof: list[bytes], hub_signing_key: bytes
) -> bool:
    """Offline: the entry is in the log under the receipt's signed tree head."""
    head = position.tree_head
    return verify_tree_head(head, hub_signing_key) and verify_inclusion(
        entry_leaf_hash(entry_json), position.index, head.size, proof, bytes.fromhex(head.root_hash)
    )


class AuditLog:
    def __init__(self, *, hub_keys: NodeKeys) -> None:
        self._keys = hub_keys

    def sign_head(self, size: int, root: bytes, timestamp: datetime) -> TreeHead:
        document = tree_head_document(size, root, timestamp)
        document["signature"] = sign_document(
            document, self._keys.signing, SignatureContext.TREE_HEAD
        )
        return TreeHead.model_validate({**document, "timestamp": timestamp}, strict=False)

    async def append(self, tx: UnitOfWork, entry: AuditEntry) -> LogPosition:
        """Append ``entry`` in the caller's transaction; its index and a head including it."""
        entry_json = canonical_json(entry.model_dump(mode="json", exclude_none=True)).decode()
        leaf = entry_leaf_hash(entry_json)
        size, frontier = await tx.audit.state_for_update()
        tree = CompactTree(size, frontier)
        tree.append(leaf)
        await tx.audit.add_leaf(
            AuditRow(size, entry_json, leaf, entry.at, entry.action, entry.actor),
            kind=entry.kind,
            message_id=entry.message_id,
            subject_ref=entry.subject_ref,
            case_ref=entry.case_ref,
        )
        await tx.audit.set_state(tree.size, tree.frontier())
        head = self.sign_head(tree.size, tree.root(), entry.at)
        await tx.audit.add_head(
            StoredHead(head.size, bytes.fromhex(head.root_hash), entry.at, head.signature)
        )
        return LogPosition(index=size, tree_head=head)

    # -- read side ----------------------------------------------------------------------

    async def head(self, view: UnitOfWork, now: datetime) -> TreeHead:
        stored = await view.audit.latest_head()
        if stored is None:
            return self.sign_head(0, EMPTY_ROOT, now)
        return stored_tree_head(stored)

    @staticmethod
    async def inclusion(view: UnitOfWork, index: int, size: int) -> list[bytes]:
        """The proof from every leaf hash: the reference that hub/audit/proofs.py equals.

        It reads the whole log, so the hub serves proofs from :class:`LogProofs` instead.
        """
        return inclusion_proof(await view.audit.leaf_hashes(size), index, size)

    @staticmethod
    async def consistency(view: UnitOfWork, first: int, second: int) -> list[bytes]:
        """The proof from every leaf hash (see :meth:`inclusion`)."""
        return consistency_proof(await view.audit.leaf_hashes(second), first, second)


def stored_tree_head(stored: StoredHead) -> TreeHead:
    """A stored head as the signed wire model (for serving it and for verifying it)."""
    return TreeHead.model_validate(
        {
            "size": stored.size,
            "root_hash": stored.root_hash.hex(),
            "timestamp": stored.signed_at,
            "signature": stored.signature,
        },
        strict=False,
    )
