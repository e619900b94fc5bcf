"""The node SDK."""

from hub.client.errors import ClientError, HubProblem, PreflightFailed, VerificationFailed
from hub.client.node_client import NodeClient, PayloadSource, Progress, ReceivedMessage
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
    "VerificationFailed",
    "load_node_profile",
    "write_node_profile",
]
