"""Write a transparency log straight into a store, as the hub would: for tests at scale.

The rows are what :class:`hub.audit.log.AuditLog` writes (canonical JSON of a valid
:class:`AuditEntry`, its RFC 9162 leaf hash, the state row), but many at a time with
``executemany`` and with one signed tree head per batch of entries, as the group-commit
writer signs them, instead of one per append.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from hub.audit.log import AuditLog, entry_leaf_hash
from hub.audit.merkle import CompactTree
from hub.crypto import canonical_json
from hub.model import AuditEntry
from hub.store import SqlStore
from hub.store.tables import audit_heads, audit_log, audit_state
from tests.conftest import INSECURE_TEST_HUB_KEYS

HUB_LOG = AuditLog(hub_keys=INSECURE_TEST_HUB_KEYS)
HUB_PUBLIC_KEY = INSECURE_TEST_HUB_KEYS.public.signing
_START = datetime(2026, 3, 2, 9, 30, 0, 250000, tzinfo=UTC)
_NODES = ("health.bsw-icb", "la.wiltshire", "police.ctp-sw")


def entry_json(index: int) -> str:
    """The canonical JSON of a valid entry, different for every index."""
    actor = _NODES[index % len(_NODES)]
    entry = AuditEntry(
        at=_START + timedelta(milliseconds=50 * index),
        action=("submitted", "delivered", "acknowledged")[index % 3],
        actor=actor,
        kind="referral",
        message_id=f"01a24d5f-{index % 65536:04x}-7abc-8def-{index:012x}",
        envelope_sha256=f"{index:064x}",
        recipients=tuple(node for node in _NODES if node != actor),
        subject_ref=f"subj-test-{index % 97:04d}",
    )
    return canonical_json(entry.model_dump(mode="json", exclude_none=True)).decode()


@dataclass
class BuiltLog:
    size: int
    head_sizes: list[int]


async def write_log(
    store: SqlStore, count: int, *, batch: int = 16, log: AuditLog = HUB_LOG
) -> BuiltLog:
    """Append ``count`` entries to the store's log (empty or not), a head per batch signed
    by ``log`` (the insecure test hub key unless told)."""
    engine = store._engine  # tests write under the repositories on purpose
    async with engine.begin() as conn:
        state = (await conn.execute(select(audit_state))).first()
        size = 0 if state is None else state.size
        leaves = [
            bytes(r[0])
            for r in await conn.execute(select(audit_log.c.leaf_hash).order_by(audit_log.c.idx))
        ]
        tree = CompactTree()
        for leaf in leaves[:size]:
            tree.append(leaf)
        head_sizes: list[int] = []
        for first in range(size, size + count, batch):
            rows = []
            for index in range(first, min(first + batch, size + count)):
                text = entry_json(index)
                leaf = entry_leaf_hash(text)
                tree.append(leaf)
                rows.append(
                    {
                        "idx": index,
                        "entry_json": text,
                        "leaf_hash": leaf,
                        "at": _START + timedelta(milliseconds=50 * index),
                        "action": ("submitted", "delivered", "acknowledged")[index % 3],
                        "actor": _NODES[index % len(_NODES)],
                        "kind": "referral",
                        "message_id": None,
                        "subject_ref": None,
                        "case_ref": None,
                    }
                )
            await conn.execute(insert(audit_log), rows)
            at = _START + timedelta(milliseconds=50 * tree.size)
            head = log.sign_head(tree.size, tree.root(), at)
            await conn.execute(
                insert(audit_heads).values(
                    size=head.size,
                    root_hash=bytes.fromhex(head.root_hash),
                    signed_at=at,
                    signature=head.signature,
                )
            )
            head_sizes.append(tree.size)
        frontier = json.dumps([node.hex() for node in tree.frontier()])
        if state is None:
            await conn.execute(
                insert(audit_state).values(id=1, size=tree.size, frontier_json=frontier)
            )
        else:
            await conn.execute(update(audit_state).values(size=tree.size, frontier_json=frontier))
    return BuiltLog(tree.size, head_sizes)


async def leaf_hashes(store: SqlStore) -> list[bytes]:
    async with store.read() as view:
        return list(await view.audit.leaf_hashes(2**62))
