"""Wire models: strict, frozen pydantic models that forbid unknown fields.

``hub.model`` imports nothing else of ours (DESIGN.md section 3).
"""

from hub.model.base import Base64Str, NodeId, OpaqueRef, Sha256Hex, WireModel, is_node_id
from hub.model.draft import Draft, DraftEnvelope, DraftPayload
from hub.model.envelope import (
    INLINE_PAYLOAD_MAX_BYTES,
    MESSAGE_KINDS,
    PAYLOAD_CIPHER,
    Author,
    CaseRecord,
    Consent,
    DecisionRecord,
    Envelope,
    EnvelopeFields,
    LegalBasis,
    Marking,
    MessageKind,
    PanelMember,
    PayloadDescriptor,
    ScopeItem,
)
from hub.model.jsonio import StrictJSONError, loads_strict
from hub.model.messages import (
    Acknowledgement,
    AgencyType,
    BlobUpload,
    BlobUploadRequest,
    Directory,
    DirectoryEntry,
    InboxEntry,
    InboxPage,
    MessageStatus,
    NodeStatus,
    Receipt,
    RecipientStatus,
)
from hub.model.problem import PROBLEM_MEDIA_TYPE, Problem, Violation

__all__ = [
    "INLINE_PAYLOAD_MAX_BYTES",
    "MESSAGE_KINDS",
    "PAYLOAD_CIPHER",
    "PROBLEM_MEDIA_TYPE",
    "Acknowledgement",
    "AgencyType",
    "Author",
    "Base64Str",
    "BlobUpload",
    "BlobUploadRequest",
    "CaseRecord",
    "Consent",
    "DecisionRecord",
    "Directory",
    "DirectoryEntry",
    "Draft",
    "DraftEnvelope",
    "DraftPayload",
    "Envelope",
    "EnvelopeFields",
    "InboxEntry",
    "InboxPage",
    "LegalBasis",
    "Marking",
    "MessageKind",
    "MessageStatus",
    "NodeId",
    "NodeStatus",
    "OpaqueRef",
    "PanelMember",
    "PayloadDescriptor",
    "Problem",
    "Receipt",
    "RecipientStatus",
    "ScopeItem",
    "Sha256Hex",
    "StrictJSONError",
    "Violation",
    "WireModel",
    "is_node_id",
    "loads_strict",
]

# The models that get a JSON Schema in schemas/json/ (tests/model/test_schemas.py).
SCHEMA_MODELS: dict[str, type[WireModel]] = {
    "envelope": Envelope,
    "payload-descriptor": PayloadDescriptor,
    "receipt": Receipt,
    "acknowledgement": Acknowledgement,
    "problem": Problem,
    "directory": Directory,
    "inbox-page": InboxPage,
    "message-status": MessageStatus,
    "blob-upload-request": BlobUploadRequest,
    "blob-upload": BlobUpload,
    "draft": Draft,
}
__all__ += ["SCHEMA_MODELS"]
