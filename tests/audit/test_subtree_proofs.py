"""Proofs from kept subtrees (hub/audit/proofs.py) equal proofs from every leaf.

The reference is the full-read path: :func:`inclusion_proof` and :func:`consistency_proof`
over every leaf hash (what the hub served before, and what ``AuditLog.inclusion`` still
does). The new path must give the same bytes for every index and size tried, including
sizes that are not powers of two and sizes that end inside a block, and must read only a
bounded number of leaves per proof, whatever the log's size.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete

from hub.audit.log import AuditLog
from hub.audit.merkle import (
    ProofError,
    consistency_proof,
    consistency_proof_from_subtrees,
    consistency_subtrees,
    inclusion_proof,
    inclusion_proof_from_subtrees,
    inclusion_subtrees,
    leaf_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)
from hub.audit.proofs import LogProofs, SubtreeIndex
from hub.errors import BadRequest
from hub.server.audit import AuditService
from hub.store import SqlStore
from hub.store.tables import audit_log
from tests.audit.logbuild import HUB_LOG, leaf_hashes, write_log
from tests.store.conftest import store  # noqa: F401 (the SQLite and PostgreSQL fixture)

LEAVES = [leaf_hash(f"entry {i}".encode()) for i in range(300)]


class LeafSubtrees:
    """A SubtreeSource computed from leaves, recording what it was asked for."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = leaves
        self.asked: list[tuple[int, int]] = []

    def subtree(self, level: int, index: int) -> bytes:
        self.asked.append((level, index))
        start, end = index << level, (index + 1) << level
        if end > len(self.leaves):
            raise ProofError("beyond the leaves")
        return root_from_leaves(self.leaves[start:end])


def test_inclusion_from_subtrees_equals_the_full_read_for_every_index_up_to_70() -> None:
    for size in range(1, 71):
        for index in range(size):
            source = LeafSubtrees(LEAVES)
            proof = inclusion_proof_from_subtrees(source, index, size)
            assert proof == inclusion_proof(LEAVES, index, size), (index, size)
            assert source.asked == inclusion_subtrees(index, size)


def test_consistency_from_subtrees_equals_the_full_read_for_every_pair_up_to_70() -> None:
    for second in range(0, 71):
        for first in range(0, second + 1):
            source = LeafSubtrees(LEAVES)
            proof = consistency_proof_from_subtrees(source, first, second)
            assert proof == consistency_proof(LEAVES, first, second), (first, second)
            assert source.asked == consistency_subtrees(first, second)


def test_a_proof_names_at_most_two_subtrees_per_level() -> None:
    rng = random.Random(9162)
    for _ in range(2000):
        size = rng.randrange(1, 2**40)
        index, first = rng.randrange(size), rng.randrange(size + 1)
        limit = 2 * math.ceil(math.log2(size + 1)) + 2
        assert len(inclusion_subtrees(index, size)) <= limit
        assert len(consistency_subtrees(first, size)) <= limit
        # Every subtree named lies inside the tree and is aligned.
        for level, position in inclusion_subtrees(index, size):
            assert (position + 1) << level <= size


def test_impossible_arguments_are_refused_by_the_subtree_path_too() -> None:
    source = LeafSubtrees(LEAVES)
    with pytest.raises(ProofError, match="leaf index 5 is not in a tree of size 5"):
        inclusion_proof_from_subtrees(source, 5, 5)
    with pytest.raises(ProofError, match="first size 9 must be from 0"):
        consistency_proof_from_subtrees(source, 9, 8)
    with pytest.raises(ProofError, match="beyond the leaves"):
        inclusion_proof_from_subtrees(source, 0, 400)


@pytest.mark.parametrize("block_level", [0, 1, 3, 5])
def test_the_subtree_index_holds_every_complete_subtree_of_its_levels(block_level: int) -> None:
    index = SubtreeIndex(block_level)
    block = 1 << block_level
    blocks = len(LEAVES) // block
    index.extend(LEAVES[: 3 * block])
    index.extend(LEAVES[3 * block : blocks * block])
    assert index.size == blocks * block
    for level in range(block_level, 10):
        for position in range((blocks * block) >> level):
            start, end = position << level, (position + 1) << level
            assert index.subtree(level, position) == root_from_leaves(LEAVES[start:end])
        with pytest.raises(ProofError, match="beyond the index"):
            index.subtree(level, (blocks * block) >> level)
    with pytest.raises(ProofError, match="no subtree of level"):
        index.subtree(block_level - 1, 0)
    if block > 1:
        with pytest.raises(ProofError, match=f"blocks of {block} leaves"):
            index.extend(LEAVES[: block + 1])


class CountingStore:
    """The store, counting the read views opened and the leaf hashes read through it."""

    def __init__(self, inner: SqlStore) -> None:
        self._store = inner
        self.reads = 0
        self.leaves_read = 0

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Any]:
        self.reads += 1
        async with self._store.read() as view:
            outer = self

            class Audit:
                def __getattr__(self, name: str) -> Any:
                    return getattr(view.audit, name)

                async def leaf_hashes_in(self, ranges: Any) -> list[tuple[int, bytes]]:
                    found = list(await view.audit.leaf_hashes_in(ranges))
                    outer.leaves_read += len(found)
                    return found

            class View:
                audit = Audit()

            yield View()


def _cases(rng: random.Random, size: int, count: int) -> list[tuple[int, int]]:
    sizes = [size, size - 1, 1, 2, 31, 32, 33, 64, 255, 256, 257, 1000]
    sizes += [rng.randrange(1, size + 1) for _ in range(count)]
    return [(s, rng.randrange(s)) for s in sizes if 1 <= s <= size]


async def test_store_proofs_equal_the_full_read_path_and_read_nothing_once_caught_up(
    store: SqlStore,  # noqa: F811
) -> None:
    built = await write_log(store, 1337, batch=50)
    leaves = await leaf_hashes(store)
    rng = random.Random(12)
    proofs = LogProofs(block_level=3)
    counting = CountingStore(store)
    await proofs.catch_up(counting)  # type: ignore[arg-type]
    assert (proofs.known, proofs.indexed) == (1337, 1336)  # complete blocks of 8
    assert (counting.reads, counting.leaves_read) == (1, 1337)
    async with store.read() as view:
        for size, index in _cases(rng, built.size, 150):
            got = await proofs.inclusion(counting, index, size)  # type: ignore[arg-type]
            assert got == await AuditLog.inclusion(view, index, size), (index, size)
            assert got == inclusion_proof(leaves, index, size)
        for second, _ in _cases(rng, built.size, 150):
            first = rng.randrange(second + 1)
            got = await proofs.consistency(counting, first, second)  # type: ignore[arg-type]
            assert got == await AuditLog.consistency(view, first, second), (first, second)
    # Every proof came from memory: no read view opened after the catch-up.
    assert (counting.reads, counting.leaves_read) == (1, 1337)


async def test_the_index_catches_up_with_entries_appended_after_it_was_built(
    store: SqlStore,  # noqa: F811
) -> None:
    await write_log(store, 100, batch=10)
    proofs = LogProofs(block_level=2)
    counting = CountingStore(store)
    await proofs.catch_up(counting)  # type: ignore[arg-type]
    assert (proofs.known, proofs.indexed) == (100, 100)
    await write_log(store, 203, batch=7)  # another process, say
    leaves = await leaf_hashes(store)
    for size, index in [(303, 0), (303, 302), (250, 101), (103, 100)]:
        proof = await proofs.inclusion(counting, index, size)  # type: ignore[arg-type]
        assert proof == inclusion_proof(leaves, index, size)
        root = root_from_leaves(leaves[:size])
        assert verify_inclusion(leaves[index], index, size, proof, root)
    proof = await proofs.consistency(counting, 100, 303)  # type: ignore[arg-type]
    assert verify_consistency(
        100, 303, root_from_leaves(leaves[:100]), root_from_leaves(leaves), proof
    )
    # One more read, of only the 203 new leaf hashes.
    assert (counting.reads, counting.leaves_read) == (2, 303)
    assert (proofs.known, proofs.indexed) == (303, 300)


async def test_a_proof_that_needs_a_missing_row_is_refused(store: SqlStore) -> None:  # noqa: F811
    await write_log(store, 64, batch=8)
    async with store._engine.begin() as conn:
        await conn.execute(delete(audit_log).where(audit_log.c.idx == 41))
    proofs = LogProofs(block_level=3)
    with pytest.raises(ProofError, match="63 of the 64 entries from 0 to 64"):
        await proofs.catch_up(store)
    with pytest.raises(ProofError, match="63 of the 64 entries from 0 to 64"):
        await proofs.inclusion(store, 3, 64)
    assert proofs.known == 0


async def test_the_service_serves_the_new_proofs_and_survives_a_failed_index(
    store: SqlStore,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    built = await write_log(store, 300, batch=25)
    leaves = await leaf_hashes(store)
    service = AuditService(store=store, log=HUB_LOG, auditors=(), clock=lambda: datetime.now(UTC))
    await service.prepare_proofs()
    answer = await service.inclusion(123, built.size)
    assert [bytes.fromhex(node) for node in answer["proof"]] == inclusion_proof(
        leaves, 123, built.size
    )
    with pytest.raises(BadRequest, match="fewer than 301 entries"):
        await service.inclusion(0, 301)
    answer = await service.consistency(7, 250)
    assert [bytes.fromhex(n) for n in answer["proof"]] == consistency_proof(leaves, 7, 250)

    async with store._engine.begin() as conn:
        await conn.execute(delete(audit_log).where(audit_log.c.idx == 2))
    broken = AuditService(store=store, log=HUB_LOG, auditors=(), clock=lambda: datetime.now(UTC))
    with caplog.at_level(logging.ERROR, logger="hub.audit"):
        await broken.prepare_proofs()  # logged, not raised
    assert "could not index the audit log" in caplog.text
    with pytest.raises(BadRequest, match="no inclusion proof"):
        await broken.inclusion(200, 300)
