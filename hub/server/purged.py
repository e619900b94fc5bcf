"""What the hub says about ciphertext it has purged (deploy/retention.md).

The reason codes are stored with the message or blob (``purge_reason``) and are the
``outcome`` of the ``purged`` log entry; the words here are what a node is told.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from hub.errors import Purged
from hub.model import rfc3339

__all__ = ["PURGE_REASONS", "purged_error"]

PURGE_REASONS: Final[dict[str, str]] = {
    "ACKNOWLEDGED": "every recipient had acknowledged it",
    "ACCESS_EXPIRED": "its case pack access expiry had passed",
    "RETENTION_PERIOD": "the retention period for its kind had ended",
    "UNSENT": "no message from its uploader carried it within the period for unsent blobs",
}


def purged_error(what: str, at: datetime, reason: str, **debug: object) -> Purged:
    """410: ``what`` (the payload of this message, this blob) was purged at ``at``, why."""
    because = PURGE_REASONS.get(reason, reason)
    return Purged(
        f"The hub purged {what} at {rfc3339(at)} because {because} ({reason}). The envelope "
        "metadata, receipt, delivery states and audit log entries are kept; the nodes keep "
        "their own copies under their own retention.",
        debug={"reason": reason, **debug},
    )
