"""The audit log's tamper evidence (DESIGN.md section 7).

``hub.audit.merkle`` is the RFC 9162 Merkle tree maths: leaf and node hashes, the
incremental :class:`CompactTree`, and building and verifying inclusion and consistency
proofs. It is pure: no I/O, no clock, no asyncio.
"""

from hub.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactTree,
    LeafSource,
    ProofError,
    SubtreeSource,
    consistency_proof,
    consistency_proof_from_subtrees,
    consistency_subtrees,
    inclusion_proof,
    inclusion_proof_from_subtrees,
    inclusion_subtrees,
    leaf_hash,
    node_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

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
