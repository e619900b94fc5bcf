"""Receipts, acknowledgements, the directory, inbox pages, status and blob uploads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from hub.model.audit import LogPosition
from hub.model.base import Base64Str, NodeId, Sha256Hex, WireModel
from hub.model.envelope import UUID7_PATTERN, MessageKind, _require_utc

__all__ = [
    "Acknowledgement",
    "AgencyType",
    "BlobUpload",
    "BlobUploadRequest",
    "Directory",
    "DirectoryEntry",
    "DirectoryKey",
    "InboxEntry",
    "InboxPage",
    "KeyRotationRequest",
    "KeyStatus",
    "MessageStatus",
    "NodeStatus",
    "Receipt",
    "RecipientStatus",
    "Rejection",
]

MessageId = Annotated[str, StringConstraints(pattern=UUID7_PATTERN)]
AgencyType = Literal[
    "police",
    "local_authority",
    "health",
    "probation",
    "education",
    "youth_justice",
    "prison",
    "voluntary",
    "other",
]
NodeStatus = Literal["active", "suspended", "revoked"]
# A delivery ends acknowledged (opened and accepted) or rejected (opened and refused).
DeliveryState = Literal["pending", "delivered", "acknowledged", "rejected"]
Accreditation = Literal["OFFICIAL", "OFFICIAL-SENSITIVE"]


class Receipt(WireModel):
    """The hub's signed word that it accepted a message, durably, at a time."""

    message_id: MessageId
    envelope_sha256: Sha256Hex
    sender: NodeId
    recipients: tuple[NodeId, ...]
    received_at: datetime
    hub_id: str
    # The message's entry in the transparency log and a signed tree head including it.
    log: LogPosition | None = None
    signature: Base64Str


class Acknowledgement(WireModel):
    """A recipient's signed statement that it received and opened a message."""

    message_id: MessageId
    node: NodeId
    envelope_sha256: Sha256Hex
    acknowledged_at: datetime
    signature: Base64Str


# A rule id from the rules registry: "MAN-05", "DC-TERR-1", "SCHEMA".
RuleId = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2,8}(?:-[0-9A-Z]{1,6}){0,3}$")]


class Rejection(WireModel):
    """A recipient's signed statement that it opened a message and refused its content.

    The hub cannot read payloads, so only the recipient can find that a release holds more
    than its manifest says (rules MAN-*), or that a payload fails its kind's model. It then
    sends this instead of an acknowledgement; the sender sees it in the message's status
    and the disclosure register shows it. ``reasons`` say how many findings each rule had
    (``agency_adapters.node.checks.rejection_summary``), never anything from the payload.
    """

    message_id: MessageId
    node: NodeId
    envelope_sha256: Sha256Hex
    rejected_at: datetime
    rules: Annotated[tuple[RuleId, ...], Field(min_length=1, max_length=32)]
    reasons: Annotated[
        tuple[Annotated[str, StringConstraints(min_length=1, max_length=300)], ...],
        Field(max_length=32),
    ] = ()
    signature: Base64Str


# A node key's standing: the one in use, replaced in a routine rotation (its signatures
# from before stay valid), or marked compromised (none of its signatures from
# ``compromised_from`` on are trusted).
KeyStatus = Literal["current", "rotated", "compromised"]


class DirectoryKey(WireModel):
    """One of a node's key pairs, with the period its signatures are trusted for.

    A signature by ``signing_key`` counts for a message the hub received (its signed
    receipt's ``received_at``) at or after ``valid_from`` and before ``valid_until`` (open
    for the current key) and, for a compromised key, before ``compromised_from``.
    """

    signing_key: Base64Str
    encryption_key: Base64Str
    valid_from: datetime
    valid_until: datetime | None = None
    status: KeyStatus
    compromised_from: datetime | None = None


class DirectoryEntry(WireModel):
    id: NodeId
    agency_type: AgencyType
    display_name: str
    # The current keys: requests are signed with this one and payloads sealed to that one.
    signing_key: Base64Str
    encryption_key: Base64Str
    accreditation: Accreditation
    status: NodeStatus
    # Every key pair the node has had, oldest first, the current one last.
    keys: tuple[DirectoryKey, ...] = ()


class KeyRotationRequest(WireModel):
    """``POST /v1/keys/rotate``: a node's new keys, in a request signed by its current key.

    ``signature`` is the proof of possession: the NEW signing key's Ed25519 signature over
    this statement (context ``seh/key-rotation/v1``), which binds the node id, both new
    public keys, the key being replaced and a fresh time and nonce.
    """

    node: NodeId
    signing_key: Base64Str
    encryption_key: Base64Str
    previous_signing_key: Base64Str
    requested_at: datetime
    nonce: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,128}$")]
    signature: Base64Str

    _utc = field_validator("requested_at")(_require_utc)


class Directory(WireModel):
    """Every node the hub knows, signed by the hub so nodes can pin and check it."""

    hub_id: str
    issued_at: datetime
    nodes: tuple[DirectoryEntry, ...]
    signature: Base64Str


class InboxEntry(WireModel):
    cursor: int
    message_id: MessageId
    sender: NodeId
    kind: MessageKind
    received_at: datetime
    state: DeliveryState
    payload_size: int
    transport: Literal["inline", "blob"]


class InboxPage(WireModel):
    entries: tuple[InboxEntry, ...]
    next_after: int


class RecipientStatus(WireModel):
    node: NodeId
    state: DeliveryState
    delivered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    # A rejection (state "rejected"): when, and the rule ids and reasons the recipient gave.
    rejected_at: datetime | None = None
    rejection_rules: tuple[RuleId, ...] = ()
    rejection_reasons: tuple[str, ...] = ()


class MessageStatus(WireModel):
    message_id: MessageId
    received_at: datetime
    recipients: tuple[RecipientStatus, ...]


class BlobUploadRequest(WireModel):
    """Announce a ciphertext blob before sending its chunks."""

    sha256: Sha256Hex
    size: Annotated[int, Field(ge=1, le=1 << 40)]


class BlobUpload(WireModel):
    upload_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    sha256: Sha256Hex
    size: int
    chunk_size: int
    chunk_count: int
    received_chunks: tuple[int, ...]
    complete: bool
