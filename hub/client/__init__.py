"""The node SDK."""

from hub.client.errors import (
    ClientError,
    HubProblem,
    OutboxConflict,
    PreflightFailed,
    SendUnconfirmed,
    VerificationFailed,
)
from hub.client.node_client import (
    NodeClient,
    PayloadSource,
    Progress,
    ReceivedMessage,
    ResendOutcome,
    RetryPolicy,
    UntrustedSender,
)
from hub.client.outbox import Outbox, OutboxError, PendingMessage
from hub.client.profile import NodeProfile, ProfileError, load_node_profile, write_node_profile

__all__ = [
    "ClientError",
    "HubProblem",
    "NodeClient",
    "NodeProfile",
    "Outbox",
    "OutboxConflict",
    "OutboxError",
    "PayloadSource",
    "PendingMessage",
    "PreflightFailed",
    "ProfileError",
    "Progress",
    "ReceivedMessage",
    "ResendOutcome",
    "RetryPolicy",
    "SendUnconfirmed",
    "UntrustedSender",
    "VerificationFailed",
    "load_node_profile",
    "write_node_profile",
]
