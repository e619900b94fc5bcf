"""The hub's transparency log: append inside the transaction, sign tree heads, prove.

Each accepted, refused, delivered or acknowledged message appends one metadata entry in
the same transaction as the change it records (so the log and the store cannot
disagree). The log's size and frontier live in one locked row: an append costs O(log n)
and one lock per transaction (a group-commit batch), not per message. Every append yields
a signed tree head that includes it; receipts carry that head and the entry's index.

The append is the last thing a transaction does. ``append`` only queues the entry; the
transaction's end step (UnitOfWork.at_end) then locks the log's state row, reads the size
and frontier afresh (another hub process may have appended a moment ago), writes every
queued entry and its head with one statement each, stores the new state, and the
transaction commits. So on PostgreSQL, where several hub processes share the database, a
batch holds the log's lock only for those few statements, not for all of its other
writes; on SQLite the write transaction began IMMEDIATE and holds the file's one write
lock throughout. A position (index and signed head) is known once the end step has run,
and nobody outside the hub sees it before the commit (the group committer answers after).
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
from hub.store import AuditLeaf, AuditRow, StoredHead, UnitOfWork

__all__ = [
    "AuditLog",
    "QueuedEntry",
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

    async def append(self, tx: UnitOfWork, entry: AuditEntry) -> QueuedEntry:
        """Queue ``entry`` in the caller's transaction; it is appended at the transaction's end.

        The entry's position (``QueuedEntry.position``) is known once the transaction's end
        steps have run: read it in a later end step (as receipts do) or after the commit.
        """
        queued = QueuedEntry(entry)
        tx.at_end(self, lambda: _Appends(self)).entries.append(queued)
        return queued

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


@dataclass(eq=False, slots=True)
class QueuedEntry:
    """An entry waiting for its transaction's end; then its index and a head including it."""

    entry: AuditEntry
    _position: LogPosition | None = None

    @property
    def position(self) -> LogPosition:
        if self._position is None:
            raise RuntimeError("the entry is appended at its transaction's end, not yet")
        return self._position


@dataclass(eq=False, slots=True)
class _Appends:
    """The transaction's end step that appends its queued entries (see the module's top)."""

    log: AuditLog
    entries: list[QueuedEntry] = field(default_factory=list)

    async def run(self, tx: UnitOfWork) -> None:
        if not self.entries:
            return
        size, frontier = await tx.audit.state_for_update()
        tree = CompactTree(size, frontier)
        leaves: list[AuditLeaf] = []
        heads: list[StoredHead] = []
        for queued in self.entries:
            entry = queued.entry
            entry_json = canonical_json(entry.model_dump(mode="json", exclude_none=True)).decode()
            leaf = entry_leaf_hash(entry_json)
            index = tree.size
            tree.append(leaf)
            leaves.append(
                AuditLeaf(
                    AuditRow(index, entry_json, leaf, entry.at, entry.action, entry.actor),
                    kind=entry.kind,
                    message_id=entry.message_id,
                    subject_ref=entry.subject_ref,
                    case_ref=entry.case_ref,
                )
            )
            # A head per entry, as before: verification names the first entry that differs.
            head = self.log.sign_head(tree.size, tree.root(), entry.at)
            heads.append(
                StoredHead(head.size, bytes.fromhex(head.root_hash), entry.at, head.signature)
            )
            queued._position = LogPosition(index=index, tree_head=head)
        await tx.audit.add_leaves(leaves)
        await tx.audit.add_heads(heads)
        await tx.audit.set_state(tree.size, tree.frontier())
        self.entries.clear()


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
