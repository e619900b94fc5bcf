"""The node SDK."""

from hub.client.errors import ClientError, HubProblem, PreflightFailed, VerificationFailed
from hub.client.node_client import (
    NodeClient,
    PayloadSource,
    Progress,
    ReceivedMessage,
    UntrustedSender,
)
from hub.client.profile import NodeProfile, ProfileError, load_node_profile, write_node_profile

__all__ = [
    "ClientError",
    "HubProblem",
    "NodeClient",
    "NodeProfile",
    "PayloadSource",
    "PreflightFailed",
    "ProfileError",
    "Progress",
    "ReceivedMessage",
    "UntrustedSender",
    "VerificationFailed",
    "load_node_profile",
    "write_node_profile",
]
