"""Merkle tree hashing and proofs of RFC 9162 (Certificate Transparency version 2.0), section 2.1.

Pure maths over SHA-256: no I/O, no clock, no asyncio. The audit log (DESIGN.md section 7)
appends one leaf per recorded event; the hub signs tree heads; nodes fetch inclusion and
consistency proofs and check them offline with :func:`verify_inclusion` and
:func:`verify_consistency`.

* Leaves and interior nodes are domain-separated (RFC 9162 section 2.1.1): a leaf hashes
  ``0x00 || entry`` and a node ``0x01 || left || right``, so a leaf can never pose as a
  node (the second-preimage attack on plain Merkle trees).
* The tree over ``n`` leaves splits at the largest power of two smaller than ``n``
  (section 2.1.1), so the tree for ``n`` is always a prefix-extension of the tree for
  every ``m < n``; that is what makes consistency proofs possible.
* :class:`CompactTree` keeps only the roots of the perfect subtrees the leaves so far
  decompose into (one per set bit of the size), so appending needs O(log n) memory and
  the state to persist is ``(size, frontier)``.
* The proof builders read leaf hashes through :class:`LeafSource` (a list will do, or a
  sequence that loads rows lazily) and raise :class:`ProofError` on impossible arguments.
  Every element of a proof is the root of a range that starts on a multiple of a power
  of two at least as long as the range, so it is a fold of O(log n) *perfect, aligned*
  subtrees. :func:`inclusion_subtrees` and :func:`consistency_subtrees` name those
  subtrees as ``(level, index)``; :func:`inclusion_proof_from_subtrees` and
  :func:`consistency_proof_from_subtrees` build the same proofs from a
  :class:`SubtreeSource` that answers them (the hub keeps them, so a proof costs
  O(log n) lookups, not a read of every leaf).
  The verifiers follow the algorithms of sections 2.1.3.2 and 2.1.4.2 step by step, take
  whatever a peer sent, and answer ``False``, never raise, when it is wrong or malformed.

Consistency with the empty tree is outside RFC 9162, which defines consistency proofs only
for ``0 < first < second`` (section 2.1.4.1). Here, as in Sigsum and transparency-dev, the
empty tree (size 0, root :data:`EMPTY_ROOT`) is consistent with every tree and its proof
is empty: there is nothing to prove, and a node that has only seen the empty log need not
special-case its first check. :func:`verify_consistency` still insists that the first root
is :data:`EMPTY_ROOT` and the proof is empty. Two heads of the same size are consistent
when their roots are equal and the proof is empty.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactTree",
    "LeafSource",
    "ProofError",
    "SubtreeSource",
    "consistency_proof",
    "consistency_proof_from_subtrees",
    "consistency_subtrees",
    "inclusion_proof",
    "inclusion_proof_from_subtrees",
    "inclusion_subtrees",
    "leaf_hash",
    "node_hash",
    "root_from_leaves",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Bytes in every leaf hash, node hash and root (SHA-256)."""

EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""The root of the empty tree: ``MTH({}) = HASH()`` (RFC 9162 section 2.1.1)."""

# RFC 9162 section 2.1.1 domain separation prefixes.
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

# Tree sizes are uint64 on the wire (RFC 9162 section 4.5, TreeHeadDataV2.tree_size). A
# bound also keeps a verifier's work proportional to what a real log could ask of it.
_MAX_TREE_SIZE = 2**64 - 1
# A proof has at most one node per level, plus one: 65 for a uint64 tree. Twice 64 is a
# generous bound on what a verifier reads before giving up.
_MAX_PROOF_NODES = 2 * 64


class ProofError(ValueError):
    """Invalid arguments to a tree computation.

    For example a leaf index not below the tree size, a first size above the second, a
    size beyond the leaves available, a leaf hash that is not 32 bytes, or a frontier that
    does not match its size. Raised by the builders and :class:`CompactTree`; the
    verifiers never raise it.
    """


class LeafSource(Protocol):
    """Leaf hashes in log order, read by index; a ``list[bytes]`` is one.

    The hub passes a sequence that loads rows from the database lazily, so the builders
    only ever call ``len()`` and ``[i]``.
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> bytes: ...


class SubtreeSource(Protocol):
    """Roots of perfect subtrees on their natural alignment.

    ``subtree(level, index)`` is ``MTH(D[index * 2**level : (index + 1) * 2**level])``:
    the leaf hash itself at level 0. A source raises :class:`ProofError` for a subtree
    whose leaves it does not have.
    """

    def subtree(self, level: int, index: int, /) -> bytes: ...


def leaf_hash(entry: bytes) -> bytes:
    """``MTH({d}) = SHA-256(0x00 || d)`` for one log entry (RFC 9162 section 2.1.1)."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)`` for an interior node (RFC 9162 section 2.1.1)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_from_leaves(leaf_hashes: LeafSource) -> bytes:
    """The Merkle tree hash ``MTH(D[n])`` of all the given leaf hashes (RFC 9162 2.1.1)."""
    return _range_root(leaf_hashes, 0, len(leaf_hashes))


class CompactTree:
    """A tree that can only grow, held as the roots of its perfect subtrees.

    The leaves ``D[0:size]`` split into perfect subtrees, one for each set bit of
    ``size``, largest (leftmost) first; :meth:`frontier` returns their roots in that
    order. Appending a leaf merges equal-sized subtrees like a binary counter carries, and
    the root folds the frontier from the right, which is exactly RFC 9162's split at the
    largest power of two. Persist ``size`` and ``frontier()`` and pass them back to
    continue.
    """

    __slots__ = ("_frontier", "_size")

    def __init__(self, size: int = 0, frontier: Sequence[bytes] = ()) -> None:
        if not _is_size(size):
            raise ProofError(f"tree size must be an integer from 0 to 2**64 - 1, got {size!r}")
        nodes = list(frontier)
        if len(nodes) != size.bit_count():
            raise ProofError(
                f"a tree of size {size} has {size.bit_count()} frontier hashes, got {len(nodes)}"
            )
        if not all(_is_hash(node) for node in nodes):
            raise ProofError(f"frontier hashes must be {HASH_SIZE}-byte strings")
        self._size = size
        self._frontier = nodes

    @property
    def size(self) -> int:
        """How many leaves have been appended."""
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash (from :func:`leaf_hash`) at index ``size``."""
        if not _is_hash(leaf_hash):
            raise ProofError(f"a leaf hash must be {HASH_SIZE} bytes")
        if self._size >= _MAX_TREE_SIZE:
            raise ProofError("the tree is full (2**64 - 1 leaves)")
        node = leaf_hash
        carry = self._size
        # Each trailing set bit of the old size is a perfect subtree as big as the one
        # being carried: merge them, as a binary increment carries.
        while carry & 1:
            node = node_hash(self._frontier.pop(), node)
            carry >>= 1
        self._frontier.append(node)
        self._size += 1

    def root(self) -> bytes:
        """The tree head hash ``MTH(D[0:size])``; :data:`EMPTY_ROOT` when empty."""
        if not self._frontier:
            return EMPTY_ROOT
        subtrees = reversed(self._frontier)
        root = next(subtrees)
        for left in subtrees:
            root = node_hash(left, root)
        return root

    def frontier(self) -> tuple[bytes, ...]:
        """The perfect subtree roots, largest first: with ``size``, the state to persist."""
        return tuple(self._frontier)

    def __repr__(self) -> str:
        return f"CompactTree(size={self._size}, root={self.root().hex()})"


def inclusion_proof(leaf_hashes: LeafSource, index: int, size: int) -> list[bytes]:
    """The audit path ``PATH(index, D[0:size])`` of RFC 9162 section 2.1.3.1.

    ``leaf_hashes`` may hold more than ``size`` leaves: the proof is for the tree of the
    first ``size``. Each element is the root of a sibling subtree, deepest first.
    """
    _check_tree_size(leaf_hashes, size)
    if not _is_index(index) or index >= size:
        raise ProofError(f"leaf index {index!r} is not in a tree of size {size}")
    path: list[bytes] = []
    # Walk down from the root: the recursion PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])
    # (or the mirror image) appends the sibling after the deeper path, so reverse at the end.
    start, end, offset = 0, size, index
    while end - start > 1:
        split = _largest_power_of_two_below(end - start)
        if offset < split:
            path.append(_range_root(leaf_hashes, start + split, end))
            end = start + split
        else:
            path.append(_range_root(leaf_hashes, start, start + split))
            start += split
            offset -= split
    path.reverse()
    return path


def consistency_proof(leaf_hashes: LeafSource, first: int, second: int) -> list[bytes]:
    """The proof ``PROOF(first, D[0:second])`` of RFC 9162 section 2.1.4.1.

    Empty when ``first == second`` (the recursion's base case) and, by this module's
    convention (see the module docstring), when ``first == 0``.
    """
    _check_tree_size(leaf_hashes, second)
    if not _is_size(first) or first > second:
        raise ProofError(f"first size {first!r} must be from 0 to the second size {second}")
    if first in (0, second):
        return []
    proof: list[bytes] = []
    # SUBPROOF(m, D[n], b), unrolled. ``have_root`` is b: whether the verifier already
    # holds MTH(D[0:m]) of the current subtree (only while still on the leftmost spine).
    start, end, remaining, have_root = 0, second, first, True
    while remaining != end - start:
        split = _largest_power_of_two_below(end - start)
        if remaining <= split:
            proof.append(_range_root(leaf_hashes, start + split, end))
            end = start + split
        else:
            proof.append(_range_root(leaf_hashes, start, start + split))
            start += split
            remaining -= split
            have_root = False
    if not have_root:
        proof.append(_range_root(leaf_hashes, start, end))
    proof.reverse()
    return proof


def inclusion_subtrees(index: int, size: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)`` that ``PATH(index, D[0:size])`` is made of."""
    _check_index_and_size(index, size)
    return [node for start, end in _inclusion_ranges(index, size) for node in _aligned(start, end)]


def inclusion_proof_from_subtrees(source: SubtreeSource, index: int, size: int) -> list[bytes]:
    """:func:`inclusion_proof`, from subtree roots instead of every leaf."""
    _check_index_and_size(index, size)
    return [_fold(source, start, end) for start, end in _inclusion_ranges(index, size)]


def consistency_subtrees(first: int, second: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)`` that ``PROOF(first, D[0:second])`` is made of."""
    _check_sizes(first, second)
    return [
        node for start, end in _consistency_ranges(first, second) for node in _aligned(start, end)
    ]


def consistency_proof_from_subtrees(source: SubtreeSource, first: int, second: int) -> list[bytes]:
    """:func:`consistency_proof`, from subtree roots instead of every leaf."""
    _check_sizes(first, second)
    return [_fold(source, start, end) for start, end in _consistency_ranges(first, second)]


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True when ``proof`` shows that leaf ``index`` of the tree ``(size, root)`` is ``leaf_hash``.

    RFC 9162 section 2.1.3.2, step by step. Any malformed argument (wrong types, hashes
    not 32 bytes, negative or oversized numbers) gives ``False``.
    """
    if not (
        _is_hash(leaf_hash)
        and _is_hash(root)
        and _is_index(index)
        and _is_size(size)
        and isinstance(proof, Sequence)
        and not isinstance(proof, (bytes, bytearray, memoryview, str))
    ):
        return False
    # 1. leaf_index >= tree_size fails.
    if index >= size:
        return False
    # 2. and 3.
    fn, sn = index, size - 1
    result = leaf_hash
    # 4. For each value p in the inclusion_path array:
    for sibling in proof:
        if not _is_hash(sibling):
            return False
        # a. A proof longer than the path to the root fails.
        if sn == 0:
            return False
        # b. fn is a right child, or the last node of its level (no right sibling).
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            # Climb past the levels where this node had no sibling.
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, sibling)
        # c.
        fn >>= 1
        sn >>= 1
    # 5. The path must reach the root, and the root must match.
    return sn == 0 and result == root


def verify_consistency(
    first: int,
    second: int,
    first_root: bytes,
    second_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """True when the tree of ``second`` with ``second_root`` extends the tree of ``first``.

    RFC 9162 section 2.1.4.2 for ``0 < first < second``; for ``first == second`` the roots
    must be equal and the proof empty; for ``first == 0`` the first root must be
    :data:`EMPTY_ROOT` and the proof empty (see the module docstring). Any malformed
    argument gives ``False``.
    """
    if not (
        _is_size(first)
        and _is_size(second)
        and _is_hash(first_root)
        and _is_hash(second_root)
        and isinstance(proof, Sequence)
        and not isinstance(proof, (bytes, bytearray, memoryview, str))
    ):
        return False
    if first > second:
        return False
    # The empty tree has exactly one root.
    if first == 0 and first_root != EMPTY_ROOT:
        return False
    # Nothing to prove: the same tree twice, or the empty tree, which every tree extends.
    if first == second:
        return len(proof) == 0 and first_root == second_root
    if first == 0:
        return len(proof) == 0
    # 1. An empty consistency_path fails. So does one longer than any tree of uint64 size
    #    could need (at most one node per level plus one): no need to hash it to find out.
    if not 0 < len(proof) <= _MAX_PROOF_NODES:
        return False
    # 2. When first is a power of two its tree is a complete subtree of the second, so the
    #    proof leaves it out and the verifier starts from first_root.
    nodes = [first_root, *proof] if first & (first - 1) == 0 else list(proof)
    if not all(_is_hash(node) for node in nodes):
        return False
    # 3.
    fn, sn = first - 1, second - 1
    # 4. Skip the levels where the first tree's last node is a right child.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5.
    first_result = second_result = nodes[0]
    # 6.
    for node in nodes[1:]:
        # a. A proof longer than the path to the root fails.
        if sn == 0:
            return False
        # b.
        if fn & 1 or fn == sn:
            first_result = node_hash(node, first_result)
            second_result = node_hash(node, second_result)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            second_result = node_hash(second_result, node)
        # c.
        fn >>= 1
        sn >>= 1
    # 7.
    return sn == 0 and first_result == first_root and second_result == second_root


# --------------------------------------------------------------------------------------
# Private helpers
# --------------------------------------------------------------------------------------


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_index(value: object) -> bool:
    # bool is an int, but True is not a leaf index.
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_TREE_SIZE


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_TREE_SIZE


def _check_tree_size(leaf_hashes: LeafSource, size: int) -> None:
    if not _is_size(size):
        raise ProofError(f"tree size must be an integer from 0 to 2**64 - 1, got {size!r}")
    available = len(leaf_hashes)
    if size > available:
        raise ProofError(f"tree size {size} is beyond the {available} leaves available")


def _check_index_and_size(index: int, size: int) -> None:
    if not _is_size(size):
        raise ProofError(f"tree size must be an integer from 0 to 2**64 - 1, got {size!r}")
    if not _is_index(index) or index >= size:
        raise ProofError(f"leaf index {index!r} is not in a tree of size {size}")


def _check_sizes(first: int, second: int) -> None:
    if not _is_size(second):
        raise ProofError(f"tree size must be an integer from 0 to 2**64 - 1, got {second!r}")
    if not _is_size(first) or first > second:
        raise ProofError(f"first size {first!r} must be from 0 to the second size {second}")


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges ``[start, end)`` whose roots make ``PATH(index, D[0:size])``, in order.

    The same walk as :func:`inclusion_proof`, naming ranges instead of hashing them.
    """
    ranges: list[tuple[int, int]] = []
    start, end, offset = 0, size, index
    while end - start > 1:
        split = _largest_power_of_two_below(end - start)
        if offset < split:
            ranges.append((start + split, end))
            end = start + split
        else:
            ranges.append((start, start + split))
            start += split
            offset -= split
    ranges.reverse()
    return ranges


def _consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The leaf ranges whose roots make ``PROOF(first, D[0:second])``, in order.

    The same walk as :func:`consistency_proof`, naming ranges instead of hashing them.
    """
    if first in (0, second):
        return []
    ranges: list[tuple[int, int]] = []
    start, end, remaining, have_root = 0, second, first, True
    while remaining != end - start:
        split = _largest_power_of_two_below(end - start)
        if remaining <= split:
            ranges.append((start + split, end))
            end = start + split
        else:
            ranges.append((start, start + split))
            start += split
            remaining -= split
            have_root = False
    if not have_root:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def _aligned(start: int, end: int) -> list[tuple[int, int]]:
    """``[start, end)`` as perfect subtrees ``(level, index)``, largest (leftmost) first.

    Every range a proof names starts on a multiple of a power of two at least as long as
    the range (each split is a power of two, taken from an aligned start), so taking the
    largest power of two that fits, again and again, yields aligned subtrees; RFC 9162's
    split at the largest power of two below the length does the same, so folding these
    roots from the right gives ``MTH(D[start:end])``.
    """
    nodes: list[tuple[int, int]] = []
    while start < end:
        level = (end - start).bit_length() - 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def _fold(source: SubtreeSource, start: int, end: int) -> bytes:
    """``MTH(D[start:end])`` from the roots of :func:`_aligned` subtrees."""
    roots = [source.subtree(level, index) for level, index in _aligned(start, end)]
    for node in roots:
        if not _is_hash(node):
            raise ProofError(f"a subtree root is not {HASH_SIZE} bytes")
    root = roots[-1]
    for left in reversed(roots[:-1]):
        root = node_hash(left, root)
    return root


def _largest_power_of_two_below(count: int) -> int:
    """The ``k`` of RFC 9162 section 2.1.1: the largest power of two smaller than ``count``."""
    return 1 << ((count - 1).bit_length() - 1)


def _range_root(leaf_hashes: LeafSource, start: int, end: int) -> bytes:
    """``MTH(D[start:end])``, level by level.

    Pairing neighbours and carrying an odd last node up unchanged builds the same tree as
    RFC 9162's split at the largest power of two: the left part of every split is a
    perfect subtree, whose nodes pair up evenly at every level. It costs ``end - start``
    hashes and no recursion.
    """
    level = [leaf_hashes[position] for position in range(start, end)]
    for position, node in enumerate(level, start):
        if not _is_hash(node):
            raise ProofError(f"leaf hash at index {position} is not {HASH_SIZE} bytes")
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            paired.append(level[-1])
        level = paired
    return level[0]
