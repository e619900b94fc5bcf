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
    consistency_proof,
    inclusion_proof,
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
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaves",
    "verify_consistency",
    "verify_inclusion",
]
