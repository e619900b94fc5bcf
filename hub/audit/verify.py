"""Recompute the whole log from the store and name the first entry that does not match.

``hub audit verify`` runs this. It checks, in order: every row's index is the next one
(a deleted or inserted row breaks the sequence); every row's leaf hash is the RFC 9162
hash of its entry (an edited entry does not match); every entry is a valid log entry;
every stored tree head is signed by the hub and its root is the root of the first ``size``
leaves (a reordered or rewritten entry changes it — heads are stored per append, so the
smallest head that fails names the first entry that differs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from hub.audit.log import entry_leaf_hash, stored_tree_head, verify_tree_head
from hub.audit.merkle import CompactTree
from hub.model import AuditEntry
from hub.store import AuditRow, StoredHead

__all__ = ["LogVerification", "verify_log"]


@dataclass(frozen=True, slots=True)
class LogVerification:
    entries: int
    heads: int
    first_bad_index: int | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_log(
    rows: Sequence[AuditRow],
    heads: Sequence[StoredHead],
    *,
    state_size: int,
    hub_signing_key: bytes,
) -> LogVerification:
    def bad(index: int | None, problem: str) -> LogVerification:
        return LogVerification(len(rows), len(heads), index, problem)

    for position, row in enumerate(rows):
        if row.idx != position:
            return bad(position, f"entry {position} is missing (the next row is entry {row.idx})")
        if entry_leaf_hash(row.entry_json) != row.leaf_hash:
            return bad(position, f"entry {position} was changed: its leaf hash does not match")
        try:
            AuditEntry.model_validate_json(row.entry_json)
        except ValidationError:
            return bad(position, f"entry {position} is not a valid log entry")
    if state_size != len(rows):
        return bad(
            min(state_size, len(rows)),
            f"the log says it holds {state_size} entries but {len(rows)} are stored",
        )
    # Roots of every prefix, in one pass.
    roots: dict[int, bytes] = {}
    wanted = {head.size for head in heads}
    tree = CompactTree()
    if 0 in wanted:
        roots[0] = tree.root()
    for row in rows:
        tree.append(row.leaf_hash)
        if tree.size in wanted:
            roots[tree.size] = tree.root()
    for head in sorted(heads, key=lambda h: h.size):
        if not verify_tree_head(stored_tree_head(head), hub_signing_key):
            return bad(None, f"the tree head of size {head.size} is not signed by the hub")
        if head.size > len(rows):
            return bad(
                len(rows), f"a signed tree head covers {head.size} entries; {len(rows)} remain"
            )
        if roots.get(head.size) != head.root_hash:
            return bad(
                head.size - 1,
                f"entry {head.size - 1} does not match the signed tree head of size {head.size} "
                "(changed, reordered or replaced)",
            )
    return LogVerification(len(rows), len(heads), None, None)
