"""The agency node runtime: what a node does with messages it receives."""

from agency_adapters.node.release_check import (
    ReleaseEnvelope,
    ReleaseMismatch,
    check_release,
    require_release_matches,
)

__all__ = ["ReleaseEnvelope", "ReleaseMismatch", "check_release", "require_release_matches"]
