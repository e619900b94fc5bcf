"""Transparency log entries, signed tree heads and log positions (DESIGN.md section 7).

Metadata only: who, when, what action, which message and envelope hash, the opaque
subject and case references, marking, purpose, gateway ids and scope. Never a payload,
free text or anything that identifies a person.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from hub.model.base import Base64Str, NodeId, OpaqueRef, Sha256Hex, WireModel
from hub.model.envelope import UUID7_PATTERN, MessageKind, ReleaseManifest, ScopeItem

__all__ = ["AuditAction", "AuditEntry", "LogPosition", "TreeHead"]

AuditAction = Literal[
    "submitted", "refused", "delivered", "acknowledged", "rejected", "purged", "key_change"
]


class AuditEntry(WireModel):
    at: datetime
    action: AuditAction
    actor: NodeId
    role: Annotated[str, StringConstraints(max_length=40)] | None = None
    kind: MessageKind | None = None
    message_id: Annotated[str, StringConstraints(pattern=UUID7_PATTERN)] | None = None
    envelope_sha256: Sha256Hex | None = None
    recipients: tuple[NodeId, ...] = ()
    subject_ref: OpaqueRef | None = None
    case_ref: OpaqueRef | None = None
    in_reply_to: Annotated[str, StringConstraints(pattern=UUID7_PATTERN)] | None = None
    marking: Annotated[str, StringConstraints(max_length=200)] | None = None
    purpose: Annotated[str, StringConstraints(max_length=64)] | None = None
    gateways: tuple[Annotated[str, StringConstraints(max_length=64)], ...] = ()
    scope: tuple[ScopeItem, ...] = ()
    consent_state: Annotated[str, StringConstraints(max_length=40)] | None = None
    outcome: Annotated[str, StringConstraints(max_length=40)] | None = None
    # For refusals and rejections: the rule ids broken.
    rules: tuple[Annotated[str, StringConstraints(max_length=16)], ...] = ()
    # For a release: its signed content manifest, what the release actually holds.
    manifest: ReleaseManifest | None = None
    # For a key change: the SHA-256 of each public key it concerns (a rotation: the old
    # signing key, then the new signing and encryption keys).
    keys: tuple[Sha256Hex, ...] = ()


class TreeHead(WireModel):
    """A hub-signed statement of the log's size and root hash at a time (RFC 9162 style)."""

    size: Annotated[int, Field(ge=0)]
    root_hash: Sha256Hex
    timestamp: datetime
    signature: Base64Str


class LogPosition(WireModel):
    """Where an entry sits: its index and a signed tree head that includes it."""

    index: Annotated[int, Field(ge=0)]
    tree_head: TreeHead
