"""The base of every wire model: strict, frozen, no unknown fields (STYLE.md rule 7)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

__all__ = [
    "NODE_ID_PATTERN",
    "Base64Str",
    "NodeId",
    "OpaqueRef",
    "Sha256Hex",
    "WireModel",
    "is_node_id",
    "rfc3339",
]

# Node ids read as "<agency>.<organisation>", e.g. "health.bsw-icb", "police.ctp-sw".
NODE_ID_PATTERN = r"^[a-z][a-z0-9_]*\.[a-z0-9][a-z0-9-]{0,62}$"
_NODE_ID_RE = re.compile(NODE_ID_PATTERN)

NodeId = Annotated[str, StringConstraints(pattern=NODE_ID_PATTERN, max_length=80)]
# Opaque references (subject, case): a short token with no spaces, so free text that
# could identify a person cannot ride in the envelope.
OpaqueRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{2,79}$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# Standard base64 with padding; bytes on the wire are always spelled this way.
Base64Str = Annotated[
    str,
    StringConstraints(pattern=r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"),
]


class WireModel(BaseModel):
    model_config = ConfigDict(
        strict=True,
        frozen=True,
        extra="forbid",
    )


def rfc3339(moment: datetime) -> str:
    """A UTC timestamp as RFC 3339 with ``Z``, the one spelling every wire document uses."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def is_node_id(value: str) -> bool:
    return _NODE_ID_RE.fullmatch(value) is not None
