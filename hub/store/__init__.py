"""Storage: small repository interfaces, one SQLAlchemy implementation, two engines."""

from hub.store.dialect import database_url_for_path
from hub.store.errors import DuplicateRecord, StoreError
from hub.store.group_commit import GroupCommitter
from hub.store.interfaces import (
    BlobRepository,
    EndStep,
    MessageRepository,
    NodeKeyRepository,
    NodeRepository,
    NonceRepository,
    Store,
    UnitOfWork,
)
from hub.store.records import (
    AuditLeaf,
    AuditRow,
    BlobRecord,
    BlobUsage,
    DeliveryRecord,
    InboxRow,
    NodeKeyRecord,
    NodeRecord,
    QuotaUsage,
    StoredHead,
    StoredMessage,
    WorkflowEvent,
    WorkflowRecord,
)
from hub.store.sql import SqlStore

__all__ = [
    "AuditLeaf",
    "AuditRow",
    "BlobRecord",
    "BlobRepository",
    "BlobUsage",
    "DeliveryRecord",
    "DuplicateRecord",
    "EndStep",
    "GroupCommitter",
    "InboxRow",
    "MessageRepository",
    "NodeKeyRecord",
    "NodeKeyRepository",
    "NodeRecord",
    "NodeRepository",
    "NonceRepository",
    "QuotaUsage",
    "SqlStore",
    "Store",
    "StoreError",
    "StoredHead",
    "StoredMessage",
    "UnitOfWork",
    "WorkflowEvent",
    "WorkflowRecord",
    "database_url_for_path",
]
