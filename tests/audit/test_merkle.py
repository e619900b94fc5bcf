"""Tests for ``hub.audit.merkle``: RFC 9162 section 2.1 Merkle tree hashes and proofs.

Where the vectors come from
---------------------------
Every hard-coded hex value below is copied from transparency-dev/merkle (Apache-2.0), the
Go library behind Trillian and Certificate Transparency tooling:

* ``testonly/constants.go``: ``LeafInputs`` (the eight leaf inputs), ``NodeHashes`` (every
  perfect-subtree hash of the 8-leaf tree, by level), ``RootHashes`` (roots for sizes
  0..8), ``CompactTrees`` (which node hashes make up the compact range of each size) and
  ``EmptyRootHash``;
* ``proof/verify_test.go``: ``inclusionProofs`` (whose leaf field is 1-based: ``{6, 8}``
  is index 5), ``consistencyProofs``, ``sha256SomeHash``, and the corruption probes of
  ``corruptInclusionProof`` / ``corruptConsistencyProof``, reproduced here for every size;
* ``testonly/reference_test.go``: ``TestRefInclusionProof`` (adds the size-2 proofs).

Independently of that source, each vector is recomputed in this file by the ``_ref_*``
functions, a second implementation written straight from the recursive definitions of
RFC 9162 sections 2.1.1, 2.1.3.1 and 2.1.4.1 with nothing but ``hashlib``; a test fails if
a copied vector and the reference disagree, so a transcription error cannot hide.

Edge-case choices (documented in ``hub.audit.merkle``): consistency from the empty tree is
proven by an empty proof and requires the first root to be ``EMPTY_ROOT`` (transparency-dev
accepts any first root there; we are stricter); two heads of one size are consistent when
their roots are equal and the proof is empty.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hub.audit
from hub.audit import merkle
from hub.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactTree,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

# --------------------------------------------------------------------------------------
# An independent reference, written from the RFC 9162 text (section numbers inline).
# It shares no code with hub.audit.merkle: its recursion, its split and its hashing are
# its own. It is quadratic-ish and only used on small trees.
# --------------------------------------------------------------------------------------


def _ref_hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _ref_split(n: int) -> int:
    # 2.1.1: "k be the largest power of two smaller than n (i.e., k < n <= 2k)".
    k = 1
    while 2 * k < n:
        k *= 2
    return k


def _ref_mth(entries: list[bytes]) -> bytes:
    # 2.1.1: MTH({}) = HASH(); MTH({d0}) = HASH(0x00 || d0);
    # MTH(D_n) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n])).
    if not entries:
        return _ref_hash(b"")
    if len(entries) == 1:
        return _ref_hash(b"\x00" + entries[0])
    k = _ref_split(len(entries))
    return _ref_hash(b"\x01" + _ref_mth(entries[:k]) + _ref_mth(entries[k:]))


def _ref_path(m: int, entries: list[bytes]) -> list[bytes]:
    # 2.1.3.1: PATH(0, {d0}) = {}; for m < k: PATH(m, D[0:k]) : MTH(D[k:n]);
    # for m >= k: PATH(m - k, D[k:n]) : MTH(D[0:k]).
    n = len(entries)
    if n == 1:
        return []
    k = _ref_split(n)
    if m < k:
        return [*_ref_path(m, entries[:k]), _ref_mth(entries[k:])]
    return [*_ref_path(m - k, entries[k:]), _ref_mth(entries[:k])]


def _ref_subproof(m: int, entries: list[bytes], have_root: bool) -> list[bytes]:
    # 2.1.4.1: SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])};
    # m <= k: SUBPROOF(m, D[0:k], b) : MTH(D[k:n]);
    # m > k: SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k]).
    n = len(entries)
    if m == n:
        return [] if have_root else [_ref_mth(entries)]
    k = _ref_split(n)
    if m <= k:
        return [*_ref_subproof(m, entries[:k], have_root), _ref_mth(entries[k:])]
    return [*_ref_subproof(m - k, entries[k:], False), _ref_mth(entries[:k])]


def _ref_proof(m: int, entries: list[bytes]) -> list[bytes]:
    # 2.1.4.1: PROOF(m, D_n) = SUBPROOF(m, D_n, true), for 0 < m < n.
    return _ref_subproof(m, entries, True)


# --------------------------------------------------------------------------------------
# Known-answer vectors, copied from transparency-dev/merkle (see the module docstring).
# --------------------------------------------------------------------------------------

_h = bytes.fromhex

# testonly/constants.go LeafInputs()
LEAF_INPUTS = [
    _h(""),
    _h("00"),
    _h("10"),
    _h("2021"),
    _h("3031"),
    _h("40414243"),
    _h("5051525354555657"),
    _h("606162636465666768696a6b6c6d6e6f"),
]

# testonly/constants.go NodeHashes(): [level][index], level 0 being the leaf hashes.
NODE_HASHES = [
    [
        _h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        _h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        _h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        _h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        _h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        _h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        _h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        _h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        _h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        _h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        _h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [
        _h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
    ],
]

# testonly/constants.go EmptyRootHash(), also SHA-256 of the empty string.
EMPTY_ROOT_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# testonly/constants.go RootHashes() (also proof/verify_test.go roots), by tree size.
ROOTS = [
    _h(EMPTY_ROOT_HEX),
    _h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    _h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    _h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    _h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    _h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    _h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    _h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# testonly/constants.go CompactTrees(): the frontier of each size, as (level, index).
COMPACT_FRONTIERS: list[list[tuple[int, int]]] = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]

# proof/verify_test.go inclusionProofs (1-based leaf converted to a 0-based index) and
# testonly/reference_test.go TestRefInclusionProof: (index, size, proof).
INCLUSION_VECTORS: list[tuple[int, int, list[bytes]]] = [
    (0, 1, []),
    (0, 2, [_h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7")]),
    (1, 2, [_h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")]),
    (2, 3, [_h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            _h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        0,
        8,
        [
            _h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            _h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# proof/verify_test.go consistencyProofs: (first, second, proof).
CONSISTENCY_VECTORS: list[tuple[int, int, list[bytes]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            _h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            _h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            _h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            _h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            _h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# proof/verify_test.go sha256SomeHash: an arbitrary 32-byte value that is no tree's root.
SOME_HASH = _h("abacaba000000000000000000000000000000000000000000060061e00123456")

VECTOR_LEAVES = [leaf_hash(entry) for entry in LEAF_INPUTS]


# --------------------------------------------------------------------------------------
# Generated trees for the systematic and property tests.
# --------------------------------------------------------------------------------------


def _entry(i: int) -> bytes:
    return f"audit-entry-{i}".encode()


MAX_SMALL = 300
SMALL_ENTRIES = [_entry(i) for i in range(MAX_SMALL)]
SMALL_LEAVES = [leaf_hash(entry) for entry in SMALL_ENTRIES]
# Roots of every prefix, by the independent reference (sizes 0..300).
SMALL_ROOTS = [_ref_mth(SMALL_ENTRIES[:n]) for n in range(MAX_SMALL + 1)]

MAX_MEDIUM = 5000
MEDIUM_LEAVES = [leaf_hash(_entry(i)) for i in range(MAX_MEDIUM)]


def _prefix_roots(leaves: list[bytes]) -> list[bytes]:
    tree = CompactTree()
    roots = [tree.root()]
    for leaf in leaves:
        tree.append(leaf)
        roots.append(tree.root())
    return roots


MEDIUM_ROOTS = _prefix_roots(MEDIUM_LEAVES)


def _flip(proof: list[bytes], element: int, byte: int, mask: int) -> list[bytes]:
    changed = bytearray(proof[element])
    changed[byte] ^= mask
    return [*proof[:element], bytes(changed), *proof[element + 1 :]]


# ======================================================================================
# Known answers
# ======================================================================================


def test_empty_root_is_the_hash_of_nothing() -> None:
    # RFC 9162 2.1.1: MTH({}) = HASH().
    assert EMPTY_ROOT.hex() == EMPTY_ROOT_HEX
    assert _ref_mth([]) == EMPTY_ROOT
    assert root_from_leaves([]) == EMPTY_ROOT
    assert CompactTree().root() == EMPTY_ROOT
    assert CompactTree().size == 0
    assert CompactTree().frontier() == ()


def test_leaf_and_node_hashes_match_the_vectors() -> None:
    assert NODE_HASHES[0] == VECTOR_LEAVES
    assert [_ref_mth([entry]) for entry in LEAF_INPUTS] == NODE_HASHES[0]
    for level in range(1, len(NODE_HASHES)):
        below = NODE_HASHES[level - 1]
        assert NODE_HASHES[level] == [
            node_hash(below[i], below[i + 1]) for i in range(0, len(below), 2)
        ]


def test_domain_separation() -> None:
    # A leaf is HASH(0x00 || d), a node HASH(0x01 || l || r): neither is the plain hash.
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    left, right = leaf_hash(b"l"), leaf_hash(b"r")
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert leaf_hash(left + right) != node_hash(left, right)


@pytest.mark.parametrize("size", range(9))
def test_roots_match_the_vectors(size: int) -> None:
    assert _ref_mth(LEAF_INPUTS[:size]) == ROOTS[size]
    assert root_from_leaves(VECTOR_LEAVES[:size]) == ROOTS[size]
    tree = CompactTree()
    for leaf in VECTOR_LEAVES[:size]:
        tree.append(leaf)
    assert tree.size == size
    assert tree.root() == ROOTS[size]


@pytest.mark.parametrize("size", range(9))
def test_compact_frontier_matches_the_vectors(size: int) -> None:
    tree = CompactTree()
    for leaf in VECTOR_LEAVES[:size]:
        tree.append(leaf)
    expected = tuple(NODE_HASHES[level][index] for level, index in COMPACT_FRONTIERS[size])
    assert tree.frontier() == expected


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION_VECTORS)
def test_inclusion_proof_vectors(index: int, size: int, expected: list[bytes]) -> None:
    assert _ref_path(index, LEAF_INPUTS[:size]) == expected
    assert inclusion_proof(VECTOR_LEAVES, index, size) == expected
    assert verify_inclusion(VECTOR_LEAVES[index], index, size, expected, ROOTS[size])


@pytest.mark.parametrize(("first", "second", "expected"), CONSISTENCY_VECTORS)
def test_consistency_proof_vectors(first: int, second: int, expected: list[bytes]) -> None:
    assert _ref_proof(first, LEAF_INPUTS[:second]) == expected
    assert consistency_proof(VECTOR_LEAVES, first, second) == expected
    assert verify_consistency(first, second, ROOTS[first], ROOTS[second], expected)


# ======================================================================================
# Roots and the compact tree
# ======================================================================================


def test_compact_tree_and_root_from_leaves_match_the_reference_for_sizes_0_to_300() -> None:
    tree = CompactTree()
    for size in range(MAX_SMALL + 1):
        assert tree.size == size
        assert tree.root() == SMALL_ROOTS[size], size
        assert root_from_leaves(SMALL_LEAVES[:size]) == SMALL_ROOTS[size], size
        assert len(tree.frontier()) == size.bit_count()
        if size < MAX_SMALL:
            tree.append(SMALL_LEAVES[size])


@pytest.mark.parametrize("size", [511, 512, 513, 1000, 2049, 3333, MAX_MEDIUM])
def test_larger_trees_agree_with_the_reference(size: int) -> None:
    entries = [_entry(i) for i in range(size)]
    expected = _ref_mth(entries)
    assert root_from_leaves(MEDIUM_LEAVES[:size]) == expected
    assert MEDIUM_ROOTS[size] == expected


def test_restoring_from_size_and_frontier_continues_the_same_tree() -> None:
    for size in range(MAX_SMALL // 2):
        original = CompactTree()
        for leaf in SMALL_LEAVES[:size]:
            original.append(leaf)
        restored = CompactTree(original.size, original.frontier())
        assert restored.root() == original.root()
        for leaf in SMALL_LEAVES[size : size + 70]:
            restored.append(leaf)
        assert restored.root() == SMALL_ROOTS[size + 70]
        assert restored.size == size + 70


@pytest.mark.parametrize(
    ("size", "frontier"),
    [
        (-1, ()),
        (1, ()),
        (0, (EMPTY_ROOT,)),
        (3, (EMPTY_ROOT,)),
        (2, (b"short",)),
        (1, ("not bytes",)),
        (True, (EMPTY_ROOT,)),
        (2**64, ()),
    ],
)
def test_restoring_refuses_a_frontier_that_does_not_fit(size: Any, frontier: Any) -> None:
    with pytest.raises(ProofError):
        CompactTree(size, frontier)


def test_append_refuses_what_is_not_a_leaf_hash() -> None:
    tree = CompactTree()
    with pytest.raises(ProofError):
        tree.append(b"an entry, not its hash")
    with pytest.raises(ProofError):
        tree.append(bytearray(32))  # type: ignore[arg-type]
    assert tree.size == 0


def test_root_from_leaves_refuses_what_is_not_a_leaf_hash() -> None:
    with pytest.raises(ProofError):
        root_from_leaves([SMALL_LEAVES[0], b"short"])


def test_a_hundred_thousand_leaves() -> None:
    # The hub's log will be this size and more: building and proving must stay linear.
    size = 100_000
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    tree = CompactTree()
    for leaf in leaves:
        tree.append(leaf)
    root = tree.root()
    assert root_from_leaves(leaves) == root
    for index in (0, 65_535, 65_536, size - 1):
        proof = inclusion_proof(leaves, index, size)
        # 100 000 < 2**17: a leaf in the left, perfect 2**16 subtree is 17 levels down.
        assert len(proof) <= 17
        if index < 2**16:
            assert len(proof) == 17
        assert verify_inclusion(leaves[index], index, size, proof, root)
    first = 70_001
    first_root = root_from_leaves(leaves[:first])
    proof = consistency_proof(leaves, first, size)
    assert verify_consistency(first, size, first_root, root, proof)


# ======================================================================================
# Inclusion proofs
# ======================================================================================


def test_every_inclusion_proof_up_to_64_leaves_matches_the_reference_and_verifies() -> None:
    for size in range(1, 65):
        entries = SMALL_ENTRIES[:size]
        for index in range(size):
            proof = inclusion_proof(SMALL_LEAVES, index, size)
            assert proof == _ref_path(index, entries), (index, size)
            assert verify_inclusion(SMALL_LEAVES[index], index, size, proof, SMALL_ROOTS[size])


@pytest.mark.parametrize("size", [100, 127, 128, 129, 1000, 1025, 4095, 4096, 4097, MAX_MEDIUM])
def test_sampled_inclusion_proofs_in_larger_trees(size: int) -> None:
    rng = random.Random(size)
    indices = {0, 1, size // 2, size - 2, size - 1, *(rng.randrange(size) for _ in range(20))}
    for index in indices:
        proof = inclusion_proof(MEDIUM_LEAVES, index, size)
        assert verify_inclusion(MEDIUM_LEAVES[index], index, size, proof, MEDIUM_ROOTS[size])
    # One per size against the reference as well.
    entries = [_entry(i) for i in range(size)]
    index = rng.randrange(size)
    assert inclusion_proof(MEDIUM_LEAVES, index, size) == _ref_path(index, entries)


def _corrupt_inclusion(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """proof/verify_test.go corruptInclusionProof, probe for probe."""
    yield "index - 1", (leaf, index - 1, size, proof, root)
    yield "index + 1", (leaf, index + 1, size, proof, root)
    yield "index ^ 2", (leaf, index ^ 2, size, proof, root)
    yield "size * 2", (leaf, index, size * 2, proof, root)
    yield "size / 2", (leaf, index, size // 2, proof, root)
    yield "wrong leaf", (b"WrongLeaf", index, size, proof, root)
    yield "wrong 32-byte leaf", (SOME_HASH, index, size, proof, root)
    yield "empty root", (leaf, index, size, proof, EMPTY_ROOT)
    yield "random root", (leaf, index, size, proof, SOME_HASH)
    yield "trailing garbage", (leaf, index, size, [*proof, b""], root)
    yield "trailing root", (leaf, index, size, [*proof, root], root)
    yield "preceding garbage", (leaf, index, size, [b"", *proof], root)
    yield "preceding root", (leaf, index, size, [root, *proof], root)
    for element in range(len(proof)):
        yield f"proof[{element}] bit 3", (leaf, index, size, _flip(proof, element, 0, 8), root)
    if proof:
        yield "removed component", (leaf, index, size, proof[:-1], root)
    if len(proof) > 1:
        yield "inserted component", (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root)


def test_corrupted_inclusion_proofs_fail_for_every_leaf_up_to_64() -> None:
    for size in range(1, 65):
        for index in range(size):
            proof = inclusion_proof(SMALL_LEAVES, index, size)
            probes = _corrupt_inclusion(SMALL_LEAVES[index], index, size, proof, SMALL_ROOTS[size])
            for description, arguments in probes:
                assert not verify_inclusion(*arguments), (description, index, size)


def test_an_inclusion_proof_proves_only_its_own_index() -> None:
    for size in range(1, 33):
        for index in range(size):
            proof = inclusion_proof(SMALL_LEAVES, index, size)
            for other in range(size):
                if other != index:
                    assert not verify_inclusion(
                        SMALL_LEAVES[index], other, size, proof, SMALL_ROOTS[size]
                    ), (index, other, size)


def test_an_inclusion_proof_fails_against_the_head_of_another_size() -> None:
    # A verifier holds (size, root) from one signed tree head. The size alone is not
    # authenticated by the path: against the *same* root a neighbouring size can follow
    # the same left/right turns (a proof for 0 in 5 also "verifies" with size 6 and the
    # size-5 root), which is why the hub signs size and root together. Against the true
    # head of any other size the proof must fail.
    for size in range(1, 41):
        for index in range(size):
            proof = inclusion_proof(SMALL_LEAVES, index, size)
            for other_size in range(1, 70):
                if other_size != size:
                    assert not verify_inclusion(
                        SMALL_LEAVES[index], index, other_size, proof, SMALL_ROOTS[other_size]
                    ), (index, size, other_size)


def test_single_leaf_tree() -> None:
    # proof/verify_test.go TestVerifyInclusionSingleEntry: root and leaf hash coincide.
    leaf = leaf_hash(b"data")
    assert inclusion_proof([leaf], 0, 1) == []
    assert verify_inclusion(leaf, 0, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], leaf)
    assert not verify_inclusion(b"", 0, 1, [], b"")


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_inclusion_against_nonsense_heads(index: int, size: int) -> None:
    # proof/verify_test.go TestVerifyInclusion probes.
    assert not verify_inclusion(SOME_HASH, index, size, [], b"")
    assert not verify_inclusion(b"", index, size, [], EMPTY_ROOT)
    assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)


@pytest.mark.parametrize(
    ("index", "size"),
    [(0, 0), (1, 1), (5, 3), (-1, 4), (0, -1), (0, 9), (True, 2), (0, 2**64)],
)
def test_inclusion_proof_refuses_impossible_arguments(index: Any, size: Any) -> None:
    with pytest.raises(ProofError):
        inclusion_proof(VECTOR_LEAVES, index, size)


# ======================================================================================
# Consistency proofs
# ======================================================================================


def test_every_consistency_proof_up_to_40_leaves_matches_the_reference_and_verifies() -> None:
    for second in range(1, 41):
        entries = SMALL_ENTRIES[:second]
        for first in range(1, second + 1):
            proof = consistency_proof(SMALL_LEAVES, first, second)
            assert proof == _ref_proof(first, entries), (first, second)
            assert verify_consistency(
                first, second, SMALL_ROOTS[first], SMALL_ROOTS[second], proof
            ), (first, second)


def test_sampled_consistency_proofs_in_larger_trees() -> None:
    rng = random.Random(9162)
    pairs = {(1, MAX_MEDIUM), (MAX_MEDIUM - 1, MAX_MEDIUM), (2048, 4096), (2048, 4097)}
    while len(pairs) < 60:
        second = rng.randrange(41, MAX_MEDIUM + 1)
        pairs.add((rng.randrange(1, second + 1), second))
    for first, second in sorted(pairs):
        proof = consistency_proof(MEDIUM_LEAVES, first, second)
        assert verify_consistency(
            first, second, MEDIUM_ROOTS[first], MEDIUM_ROOTS[second], proof
        ), (first, second)
    first, second = 1234, 3210
    expected = _ref_proof(first, [_entry(i) for i in range(second)])
    assert consistency_proof(MEDIUM_LEAVES, first, second) == expected


def _corrupt_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """proof/verify_test.go corruptConsistencyProof, probe for probe."""
    yield "first - 1", (first - 1, second, first_root, second_root, proof)
    yield "first + 1", (first + 1, second, first_root, second_root, proof)
    yield "first ^ 2", (first ^ 2, second, first_root, second_root, proof)
    yield "second * 2", (first, second * 2, first_root, second_root, proof)
    yield "second / 2", (first, second // 2, first_root, second_root, proof)
    yield "wrong first root", (first, second, b"WrongRoot", second_root, proof)
    yield "wrong second root", (first, second, first_root, b"WrongRoot", proof)
    yield "random first root", (first, second, SOME_HASH, second_root, proof)
    yield "swapped roots", (first, second, second_root, first_root, proof)
    yield "empty proof", (first, second, first_root, second_root, [])
    yield "trailing garbage", (first, second, first_root, second_root, [*proof, b""])
    yield "trailing first root", (first, second, first_root, second_root, [*proof, first_root])
    yield "trailing second root", (first, second, first_root, second_root, [*proof, second_root])
    yield "preceding garbage", (first, second, first_root, second_root, [b"", *proof])
    yield "preceding first root", (first, second, first_root, second_root, [first_root, *proof])
    yield "preceding second root", (first, second, first_root, second_root, [second_root, *proof])
    yield "preceding proof[0]", (first, second, first_root, second_root, [proof[0], *proof])
    yield "truncated proof", (first, second, first_root, second_root, proof[:-1])
    for element in range(len(proof)):
        flipped = _flip(proof, element, 0, 16)
        yield f"proof[{element}] bit 4", (first, second, first_root, second_root, flipped)


def test_corrupted_consistency_proofs_fail_for_every_pair_up_to_40() -> None:
    for second in range(2, 41):
        for first in range(1, second):
            proof = consistency_proof(SMALL_LEAVES, first, second)
            probes = _corrupt_consistency(
                first, second, SMALL_ROOTS[first], SMALL_ROOTS[second], proof
            )
            for description, arguments in probes:
                assert not verify_consistency(*arguments), (description, first, second)


def test_a_consistency_proof_fails_against_heads_of_other_sizes() -> None:
    for second in range(2, 33):
        for first in range(1, second):
            proof = consistency_proof(SMALL_LEAVES, first, second)
            for other in range(1, 45):
                if other != first:
                    assert not verify_consistency(
                        other, second, SMALL_ROOTS[other], SMALL_ROOTS[second], proof
                    ), (first, other, second)
                if other != second:
                    assert not verify_consistency(
                        first, other, SMALL_ROOTS[first], SMALL_ROOTS[other], proof
                    ), (first, second, other)


def test_equal_sizes_need_equal_roots_and_an_empty_proof() -> None:
    # PROOF(n, D[n]) = SUBPROOF(n, D[n], true) = {} (RFC 9162 2.1.4.1's base case).
    for size in (1, 2, 3, 8, 300):
        assert consistency_proof(SMALL_LEAVES, size, size) == []
        root = SMALL_ROOTS[size]
        assert verify_consistency(size, size, root, root, [])
        assert not verify_consistency(size, size, root, SMALL_ROOTS[size - 1], [])
        assert not verify_consistency(size, size, root, root, [root])


def test_the_empty_tree_is_consistent_with_every_tree() -> None:
    # Outside RFC 9162 (which defines proofs for 0 < first < second): our convention, as
    # Sigsum's and transparency-dev's, is an empty proof; we also insist on the empty root.
    assert consistency_proof([], 0, 0) == []
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    for second in (1, 2, 7, 300):
        assert consistency_proof(SMALL_LEAVES, 0, second) == []
        assert verify_consistency(0, second, EMPTY_ROOT, SMALL_ROOTS[second], [])
        assert not verify_consistency(0, second, SMALL_ROOTS[1], SMALL_ROOTS[second], [])
        assert not verify_consistency(0, second, EMPTY_ROOT, SMALL_ROOTS[second], [EMPTY_ROOT])


def test_consistency_edge_table() -> None:
    # proof/verify_test.go TestVerifyConsistency, with our stricter empty-tree rule: there
    # {0, 1, "don't care 1", "don't care 2", {}} is accepted; here the first root must be
    # EMPTY_ROOT, and roots must be 32 bytes.
    root1, root2 = SMALL_ROOTS[1], SMALL_ROOTS[2]
    assert not verify_consistency(0, 0, root1, root2, [])
    assert not verify_consistency(1, 1, root1, root2, [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    # Accepted by transparency-dev ({0, 0, root1, root1}); a size-0 root must be empty here.
    assert not verify_consistency(0, 0, root1, root1, [])
    assert verify_consistency(0, 1, EMPTY_ROOT, root1, [])
    assert verify_consistency(1, 1, root2, root2, [])
    # Time travel to the past.
    assert not verify_consistency(1, 0, root1, root2, [])
    assert not verify_consistency(2, 1, root1, root2, [])
    # Empty proof.
    assert not verify_consistency(1, 2, root1, root2, [])
    # Roots do not match.
    assert not verify_consistency(0, 0, EMPTY_ROOT, root2, [])
    assert not verify_consistency(1, 1, EMPTY_ROOT, root2, [])
    # Longer than any tree of uint64 size could need.
    assert not verify_consistency(3, 2**64 - 1, root1, root2, [SOME_HASH] * 200)
    # Roots match but the proof is not empty.
    for first, second in ((0, 0), (0, 1), (1, 1)):
        assert not verify_consistency(first, second, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])


@pytest.mark.parametrize(
    ("first", "second"),
    [(2, 1), (-1, 3), (0, -1), (1, 9), (True, 2), (0, 2**64)],
)
def test_consistency_proof_refuses_impossible_arguments(first: Any, second: Any) -> None:
    with pytest.raises(ProofError):
        consistency_proof(VECTOR_LEAVES, first, second)


# ======================================================================================
# Lazily loaded leaves (the hub reads them from the database)
# ======================================================================================


class _CountingLeaves:
    """A LeafSource with only ``len`` and ``[int]``, counting the reads."""

    def __init__(self, leaves: list[bytes]) -> None:
        self._leaves = leaves
        self.reads = 0

    def __len__(self) -> int:
        return len(self._leaves)

    def __getitem__(self, index: int) -> bytes:
        if not isinstance(index, int):
            raise TypeError("only integer indices")
        self.reads += 1
        return self._leaves[index]


def test_builders_accept_a_lazy_leaf_source() -> None:
    source = _CountingLeaves(MEDIUM_LEAVES[:1000])
    assert root_from_leaves(source) == MEDIUM_ROOTS[1000]
    assert inclusion_proof(source, 17, 600) == inclusion_proof(MEDIUM_LEAVES, 17, 600)
    assert consistency_proof(source, 300, 900) == consistency_proof(MEDIUM_LEAVES, 300, 900)
    source.reads = 0
    inclusion_proof(source, 17, 600)
    # Every leaf but the one being proven is read once: the proof costs O(size).
    assert source.reads == 599


def test_a_leaf_source_holding_a_bad_hash_is_refused() -> None:
    with pytest.raises(ProofError, match="index 3"):
        inclusion_proof([*VECTOR_LEAVES[:3], b"short", *VECTOR_LEAVES[4:]], 0, 8)


# ======================================================================================
# Properties
# ======================================================================================

inclusion_cases = st.integers(min_value=1, max_value=MAX_SMALL).flatmap(
    lambda size: st.tuples(st.just(size), st.integers(min_value=0, max_value=size - 1))
)
consistency_cases = st.integers(min_value=2, max_value=MAX_SMALL).flatmap(
    lambda second: st.tuples(st.integers(min_value=1, max_value=second - 1), st.just(second))
)


@PROPERTY_SETTINGS
@given(case=inclusion_cases, data=st.data())
def test_property_any_flipped_bit_breaks_an_inclusion_proof(
    case: tuple[int, int], data: st.DataObject
) -> None:
    size, index = case
    proof = inclusion_proof(SMALL_LEAVES, index, size)
    root = SMALL_ROOTS[size]
    leaf = SMALL_LEAVES[index]
    assert proof == _ref_path(index, SMALL_ENTRIES[:size])
    assert verify_inclusion(leaf, index, size, proof, root)
    target = data.draw(st.sampled_from(["proof", "leaf", "root"] if proof else ["leaf", "root"]))
    byte = data.draw(st.integers(min_value=0, max_value=HASH_SIZE - 1))
    mask = 1 << data.draw(st.integers(min_value=0, max_value=7))
    if target == "proof":
        element = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        assert not verify_inclusion(leaf, index, size, _flip(proof, element, byte, mask), root)
    elif target == "leaf":
        assert not verify_inclusion(_flip([leaf], 0, byte, mask)[0], index, size, proof, root)
    else:
        assert not verify_inclusion(leaf, index, size, proof, _flip([root], 0, byte, mask)[0])


@PROPERTY_SETTINGS
@given(case=inclusion_cases, other=st.integers(min_value=0, max_value=MAX_SMALL))
def test_property_inclusion_fails_for_a_wrong_index_or_another_head(
    case: tuple[int, int], other: int
) -> None:
    size, index = case
    proof = inclusion_proof(SMALL_LEAVES, index, size)
    leaf = SMALL_LEAVES[index]
    if other != index:
        assert not verify_inclusion(leaf, other, size, proof, SMALL_ROOTS[size])
    if other not in (0, size):
        assert not verify_inclusion(leaf, index, other, proof, SMALL_ROOTS[other])
    # Another tree's root with the right size.
    wrong_root = SMALL_ROOTS[other] if other != size else SOME_HASH
    assert not verify_inclusion(leaf, index, size, proof, wrong_root)


@PROPERTY_SETTINGS
@given(case=consistency_cases, data=st.data())
def test_property_any_flipped_bit_breaks_a_consistency_proof(
    case: tuple[int, int], data: st.DataObject
) -> None:
    first, second = case
    proof = consistency_proof(SMALL_LEAVES, first, second)
    first_root, second_root = SMALL_ROOTS[first], SMALL_ROOTS[second]
    assert proof == _ref_proof(first, SMALL_ENTRIES[:second])
    assert verify_consistency(first, second, first_root, second_root, proof)
    target = data.draw(st.sampled_from(["proof", "first_root", "second_root"]))
    byte = data.draw(st.integers(min_value=0, max_value=HASH_SIZE - 1))
    mask = 1 << data.draw(st.integers(min_value=0, max_value=7))
    if target == "proof":
        element = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        flipped = _flip(proof, element, byte, mask)
        assert not verify_consistency(first, second, first_root, second_root, flipped)
    elif target == "first_root":
        flipped_root = _flip([first_root], 0, byte, mask)[0]
        assert not verify_consistency(first, second, flipped_root, second_root, proof)
    else:
        flipped_root = _flip([second_root], 0, byte, mask)[0]
        assert not verify_consistency(first, second, first_root, flipped_root, proof)


@PROPERTY_SETTINGS
@given(case=consistency_cases, other=st.integers(min_value=1, max_value=MAX_SMALL))
def test_property_consistency_fails_against_heads_of_other_sizes(
    case: tuple[int, int], other: int
) -> None:
    first, second = case
    proof = consistency_proof(SMALL_LEAVES, first, second)
    if other != first:
        assert not verify_consistency(other, second, SMALL_ROOTS[other], SMALL_ROOTS[second], proof)
    if other != second:
        assert not verify_consistency(first, other, SMALL_ROOTS[first], SMALL_ROOTS[other], proof)


_garbage_number = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([-1, 0, 1, 2**63, 2**64 - 1, 2**64, 2**100]),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True),
    st.text(max_size=4),
)
_garbage_hash = st.one_of(
    st.binary(max_size=40),
    st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE),
    st.sampled_from([EMPTY_ROOT, SOME_HASH, SMALL_ROOTS[5]]),
    st.none(),
    st.integers(),
    st.text(max_size=4),
    st.builds(bytearray, st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE)),
)
_garbage_proof = st.one_of(
    st.lists(_garbage_hash, max_size=80),
    st.lists(st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE), max_size=80),
    st.tuples(_garbage_hash, _garbage_hash),
    st.binary(max_size=64),
    st.text(max_size=8),
    st.none(),
    st.integers(),
)


@PROPERTY_SETTINGS
@given(
    leaf=_garbage_hash,
    index=_garbage_number,
    size=_garbage_number,
    proof=_garbage_proof,
    root=_garbage_hash,
)
def test_property_verify_inclusion_never_raises_on_garbage(
    leaf: Any, index: Any, size: Any, proof: Any, root: Any
) -> None:
    assert verify_inclusion(leaf, index, size, proof, root) in (True, False)


@PROPERTY_SETTINGS
@given(
    first=_garbage_number,
    second=_garbage_number,
    first_root=_garbage_hash,
    second_root=_garbage_hash,
    proof=_garbage_proof,
)
def test_property_verify_consistency_never_raises_on_garbage(
    first: Any, second: Any, first_root: Any, second_root: Any, proof: Any
) -> None:
    assert verify_consistency(first, second, first_root, second_root, proof) in (True, False)


@PROPERTY_SETTINGS
@given(
    size=st.integers(min_value=1, max_value=2**64 - 1),
    index=st.integers(min_value=0, max_value=2**64 - 1),
    proof=st.lists(st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE), max_size=70),
)
def test_property_random_proofs_for_huge_trees_do_not_verify(
    size: int, index: int, proof: list[bytes]
) -> None:
    assert not verify_inclusion(SOME_HASH, index, size, proof, EMPTY_ROOT)
    assert not verify_consistency(min(index, size), size, SOME_HASH, EMPTY_ROOT, proof)


def test_the_package_exports_the_merkle_api() -> None:
    assert set(merkle.__all__) <= set(hub.audit.__all__)
    for name in merkle.__all__:
        assert getattr(hub.audit, name) is getattr(merkle, name)
