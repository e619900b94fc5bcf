"""Inclusion and consistency proofs in O(log n), from the tree kept in memory.

A proof is the fold of O(log n) perfect, aligned subtrees (hub/audit/merkle.py). Building
one from every leaf hash, as :meth:`hub.audit.log.AuditLog.inclusion` does, reads the
whole log: 135-150 ms at 100,000 entries, over half a second at a million. Here each hub
process keeps the log's leaf hashes in memory as it reads them (32 bytes an entry) and the
root of every complete subtree of ``2**block_level`` (32) leaves or more
(:class:`SubtreeIndex`, about 2 MB per million entries more). A proof takes its large
subtrees from the index and hashes its small ones (at most two blocks of 32) from the
leaves: no query at all, for any size already read.

Why memory and not a table of subtree roots:

* A subtree, once complete, never changes (the log only grows), so what is kept is a
  cache that is never invalidated: it catches up by reading the leaf hashes appended since
  it last looked, whoever appended them. Nothing on the write path changes, and several
  hub processes on one PostgreSQL database each keep their own from the same rows: the
  database stays the one authority, and a proof is as good as the rows it was read from.
* A query costs more than the proof: a read view and one query through the database
  driver's thread take most of a millisecond on a busy two-core machine, the proof's
  hashing and lookups about a tenth of that. A table of subtree roots would still need a
  query per proof.
* What it costs is memory, about 34 MB per million entries, and the first catch-up after
  a start: reading every leaf hash once and hashing them into blocks, about 1.5 s per
  million entries here. The hub starts it in the background when it starts
  (:meth:`LogProofs.catch_up`); a proof asked for before it ends waits for it.

A proof never trusts memory more than the rows: if an entry is missing from the store the
catch-up, and so the proof, is refused (:class:`~hub.audit.merkle.ProofError`), and
``hub audit verify`` is what checks the rows themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

from hub.audit.merkle import (
    HASH_SIZE,
    ProofError,
    consistency_proof_from_subtrees,
    consistency_subtrees,
    inclusion_proof_from_subtrees,
    inclusion_subtrees,
)
from hub.store import Store, UnitOfWork

__all__ = ["LogProofs", "SubtreeIndex"]

DEFAULT_BLOCK_LEVEL = 5
"""Subtrees of 2**5 = 32 leaves and up are kept; a proof reads at most a few such blocks."""

# How many leaf hashes a catch-up reads per query (and hashes between two awaits, so a
# long catch-up never holds the event loop for more than a few milliseconds).
_CATCH_UP_PAGE = 8192


def _perfect_root(leaves: Sequence[bytes]) -> bytes:
    """The root of a perfect subtree (a power of two of leaf hashes), level by level."""
    sha256 = hashlib.sha256
    level = list(leaves)
    while len(level) > 1:
        level = [
            sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)
        ]
    return level[0]


class SubtreeIndex:
    """The roots of every complete subtree of ``2**block_level`` leaves or more.

    Holds the first :attr:`size` leaves of a log (a multiple of the block size): level
    ``block_level + j`` keeps its roots side by side in one ``bytearray``. Only ever
    grows, by whole blocks, through :meth:`extend`.
    """

    __slots__ = ("_block_level", "_levels")

    def __init__(self, block_level: int = DEFAULT_BLOCK_LEVEL) -> None:
        if not 0 <= block_level <= 32:
            raise ValueError(f"block_level must be from 0 to 32, got {block_level}")
        self._block_level = block_level
        self._levels: list[bytearray] = [bytearray()]

    @property
    def block_level(self) -> int:
        return self._block_level

    @property
    def block_size(self) -> int:
        return 1 << self._block_level

    @property
    def size(self) -> int:
        """How many leaves the index covers."""
        return (len(self._levels[0]) // HASH_SIZE) << self._block_level

    def extend(self, leaf_hashes: Sequence[bytes]) -> None:
        """Add whole blocks of leaf hashes, the first being leaf :attr:`size`."""
        block = self.block_size
        if len(leaf_hashes) % block:
            raise ProofError(f"the index grows by blocks of {block} leaves, got {len(leaf_hashes)}")
        if any(len(leaf) != HASH_SIZE for leaf in leaf_hashes):
            raise ProofError(f"leaf hashes must be {HASH_SIZE} bytes")
        for start in range(0, len(leaf_hashes), block):
            self._add(_perfect_root(leaf_hashes[start : start + block]))

    def _add(self, root: bytes) -> None:
        # A binary counter: a second root at one level completes their parent above it.
        level = 0
        while True:
            if level == len(self._levels):
                self._levels.append(bytearray())
            nodes = self._levels[level]
            nodes += root
            if (len(nodes) // HASH_SIZE) & 1:
                return
            root = hashlib.sha256(b"\x01" + nodes[-2 * HASH_SIZE :]).digest()
            level += 1

    def subtree(self, level: int, index: int) -> bytes:
        """``MTH`` of leaves ``[index * 2**level, (index + 1) * 2**level)``, for a kept level."""
        row = level - self._block_level
        if row < 0:
            raise ProofError(f"no subtree of level {level} is kept (from {self._block_level})")
        nodes = self._levels[row] if row < len(self._levels) else b""
        end = (index + 1) * HASH_SIZE
        if index < 0 or end > len(nodes):
            raise ProofError(
                f"subtree {index} of level {level} is beyond the index ({self.size} leaves)"
            )
        return bytes(nodes[end - HASH_SIZE : end])


class _ProofSource:
    """Kept subtrees from the index, smaller ones hashed from the leaf hashes in memory."""

    __slots__ = ("_index", "_leaves")

    def __init__(self, index: SubtreeIndex, leaves: bytes | bytearray) -> None:
        self._index = index
        self._leaves = leaves

    def subtree(self, level: int, index: int) -> bytes:
        if level >= self._index.block_level:
            return self._index.subtree(level, index)
        start, end = (index << level) * HASH_SIZE, ((index + 1) << level) * HASH_SIZE
        if end > len(self._leaves):
            raise ProofError(f"subtree {index} of level {level} is beyond the leaves read")
        leaves = self._leaves
        return _perfect_root(
            [bytes(leaves[at : at + HASH_SIZE]) for at in range(start, end, HASH_SIZE)]
        )


class LogProofs:
    """Builds the log's proofs from memory, kept up to date from the store.

    It holds every leaf hash read so far (32 bytes an entry) and, in a
    :class:`SubtreeIndex`, the roots of the complete subtrees of ``2**block_level`` leaves
    or more, so a proof of a size already read touches no database at all: O(log n)
    roots, and at most two blocks of leaves hashed. One per hub process (the
    :class:`~hub.server.audit.AuditService` owns it). The proofs equal
    :func:`~hub.audit.merkle.inclusion_proof` and
    :func:`~hub.audit.merkle.consistency_proof` over every leaf, byte for byte.
    """

    def __init__(self, *, block_level: int = DEFAULT_BLOCK_LEVEL) -> None:
        self._index = SubtreeIndex(block_level)
        self._leaves = bytearray()
        self._lock = asyncio.Lock()

    @property
    def known(self) -> int:
        """How many leaf hashes have been read: proofs of sizes up to it need no query."""
        return len(self._leaves) // HASH_SIZE

    @property
    def indexed(self) -> int:
        """How many leaves the subtree index covers (the complete blocks of :attr:`known`)."""
        return self._index.size

    async def inclusion(self, store: Store, index: int, size: int) -> list[bytes]:
        """``PATH(index, D[0:size])`` (RFC 9162 section 2.1.3.1)."""
        inclusion_subtrees(index, size)  # the arguments' checks, before any reading
        await self.catch_up(store, size)
        return inclusion_proof_from_subtrees(self._source(), index, size)

    async def consistency(self, store: Store, first: int, second: int) -> list[bytes]:
        """``PROOF(first, D[0:second])`` (RFC 9162 section 2.1.4.1)."""
        consistency_subtrees(first, second)
        await self.catch_up(store, second)
        return consistency_proof_from_subtrees(self._source(), first, second)

    async def catch_up(self, store: Store, size: int | None = None) -> None:
        """Read the leaf hashes of the first ``size`` entries (the whole log's when None).

        Reads only those appended since the last catch-up, a page at a time, and indexes
        the blocks they complete. Concurrent callers wait for one another rather than read
        the same leaves twice. A missing entry is a :class:`ProofError`.
        """
        if size is not None and size <= self.known:
            return
        async with self._lock, store.read() as view:
            if size is None:
                size = await view.audit.size()
            block_level = self._index.block_level
            while self.known < size:
                start = self.known
                end = min(size, start + _CATCH_UP_PAGE)
                self._leaves += b"".join(await _leaf_hashes(view, start, end))
                complete = self.known >> block_level << block_level
                if complete > self._index.size:
                    self._index.extend(self._leaf_list(self._index.size, complete))

    def _leaf_list(self, start: int, end: int) -> list[bytes]:
        leaves = self._leaves
        return [bytes(leaves[i * HASH_SIZE : (i + 1) * HASH_SIZE]) for i in range(start, end)]

    def _source(self) -> _ProofSource:
        return _ProofSource(self._index, self._leaves)


async def _leaf_hashes(view: UnitOfWork, start: int, end: int) -> list[bytes]:
    rows = await view.audit.leaf_hashes_in([(start, end)])
    if len(rows) != end - start:
        raise ProofError(
            f"the store holds {len(rows)} of the {end - start} entries from {start} to {end}"
        )
    return [leaf for _, leaf in rows]
