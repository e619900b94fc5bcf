"""Inclusion and consistency proofs in O(log n), from subtree roots kept in memory.

A proof is the fold of O(log n) perfect, aligned subtrees (hub/audit/merkle.py). Building
one from every leaf hash, as :meth:`hub.audit.log.AuditLog.inclusion` does, reads the
whole log: 135-150 ms at 100,000 entries, over a second at a million. Here the hub keeps,
in memory, the root of every complete subtree of ``2**block_level`` leaves or more
(:class:`SubtreeIndex`), and reads from the store only the leaves below that level that a
proof needs: at most a few blocks of ``2**block_level`` (32) leaf hashes, by primary key, in
one query.

Why memory and not a table of subtree roots:

* A subtree, once complete, never changes (the log only grows), so the index is a cache
  that is never invalidated: it catches up by reading the leaf hashes appended since it
  last looked, whoever appended them. Nothing on the write path changes, and several hub
  processes on one PostgreSQL database each keep their own index from the same rows: the
  database stays the one authority, and a proof is as good as the rows it was read from.
* It is small: one 32-byte root per block of 32 leaves and its ancestors, about 2 MB per
  million entries (the leaves themselves stay in the database). A larger block would
  keep less and read more per proof; at 32 a proof reads at most about 64 rows.
* What it costs is the first catch-up after a start: reading every leaf hash once and
  hashing them into blocks, about 1.5 s per million entries here. The hub starts it in the
  background when it starts (:meth:`LogProofs.catch_up`); a proof asked for before it
  ends waits for it.

A proof never trusts the index more than the rows: if a leaf the index needs is missing
from the store the proof is refused (:class:`~hub.audit.merkle.ProofError`), and
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
from hub.store import UnitOfWork

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
    """Kept subtrees from the index, smaller ones from leaf hashes read for this proof."""

    __slots__ = ("_index", "_leaves")

    def __init__(self, index: SubtreeIndex, leaves: dict[int, bytes]) -> None:
        self._index = index
        self._leaves = leaves

    def subtree(self, level: int, index: int) -> bytes:
        if level >= self._index.block_level:
            return self._index.subtree(level, index)
        start = index << level
        try:
            leaves = [self._leaves[position] for position in range(start, start + (1 << level))]
        except KeyError as exc:
            raise ProofError(f"leaf {exc.args[0]} was not read") from None
        return _perfect_root(leaves)


class LogProofs:
    """Builds the log's proofs from a :class:`SubtreeIndex` kept up to date from the store.

    One per hub process (the :class:`~hub.server.audit.AuditService` owns it). The proofs
    equal :func:`~hub.audit.merkle.inclusion_proof` and
    :func:`~hub.audit.merkle.consistency_proof` over every leaf, byte for byte.
    """

    def __init__(self, *, block_level: int = DEFAULT_BLOCK_LEVEL) -> None:
        self._index = SubtreeIndex(block_level)
        self._lock = asyncio.Lock()

    @property
    def indexed(self) -> int:
        """How many leaves the index covers so far."""
        return self._index.size

    async def inclusion(self, view: UnitOfWork, index: int, size: int) -> list[bytes]:
        """``PATH(index, D[0:size])`` (RFC 9162 section 2.1.3.1)."""
        needed = inclusion_subtrees(index, size)
        source = await self._source(view, needed, size)
        return inclusion_proof_from_subtrees(source, index, size)

    async def consistency(self, view: UnitOfWork, first: int, second: int) -> list[bytes]:
        """``PROOF(first, D[0:second])`` (RFC 9162 section 2.1.4.1)."""
        needed = consistency_subtrees(first, second)
        source = await self._source(view, needed, second)
        return consistency_proof_from_subtrees(source, first, second)

    async def catch_up(self, view: UnitOfWork, size: int | None = None) -> None:
        """Index every complete block of the first ``size`` leaves (all the log's when None).

        Reads only the leaves appended since the index last grew. Concurrent callers wait
        for one another rather than read the same leaves twice.
        """
        if size is None:
            size = await view.audit.size()
        target = size >> self._index.block_level << self._index.block_level
        if self._index.size >= target:
            return
        async with self._lock:
            while self._index.size < target:
                start = self._index.size
                end = min(target, start + max(_CATCH_UP_PAGE, self._index.block_size))
                self._index.extend(await _leaf_hashes(view, start, end))

    async def _source(
        self, view: UnitOfWork, needed: list[tuple[int, int]], size: int
    ) -> _ProofSource:
        await self.catch_up(view, size)
        block_level = self._index.block_level
        # The subtrees below the kept levels lie in at most a few blocks (the one holding
        # the leaf or the first tree's edge, the last partial one): read those blocks
        # whole, in one query.
        blocks = sorted(
            {index << level >> block_level for level, index in needed if level < block_level}
        )
        ranges = [(block << block_level, min(size, (block + 1) << block_level)) for block in blocks]
        leaves = dict(await view.audit.leaf_hashes_in(ranges)) if ranges else {}
        missing = sum(end - start for start, end in ranges) - len(leaves)
        if missing:
            raise ProofError(
                f"{missing} of the entries a proof of size {size} needs are not stored"
            )
        return _ProofSource(self._index, leaves)


async def _leaf_hashes(view: UnitOfWork, start: int, end: int) -> list[bytes]:
    rows = await view.audit.leaf_hashes_in([(start, end)])
    if len(rows) != end - start:
        raise ProofError(
            f"the store holds {len(rows)} of the {end - start} entries from {start} to {end}"
        )
    return [leaf for _, leaf in rows]
