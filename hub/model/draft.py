"""A draft: what a caseworker's system hands a node to send (``hub node submit``).

A draft is an unsigned envelope plus the plaintext payload. The node fills in the id,
sender and creation time when absent, encrypts the payload to each recipient, signs the
envelope and submits it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator

from hub.model.base import NodeId, WireModel
from hub.model.envelope import UUID7_PATTERN, EnvelopeFields

__all__ = ["Draft", "DraftEnvelope", "DraftPayload"]


class DraftEnvelope(EnvelopeFields):
    id: Annotated[str, StringConstraints(pattern=UUID7_PATTERN)] | None = None
    sender: NodeId | None = None
    created_at: datetime | None = None


class DraftPayload(WireModel):
    """Exactly one of ``content`` (a JSON document) or ``file`` (a path to send as is)."""

    media_type: Annotated[
        str, StringConstraints(pattern=r"^[a-z]+/[a-z0-9.+-]+$", max_length=100)
    ] = "application/json"
    content: Any = None
    file: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DraftPayload:
        if (self.content is None) == (self.file is None):
            raise ValueError("a draft payload needs exactly one of 'content' or 'file'")
        return self


class Draft(WireModel):
    envelope: DraftEnvelope
    payload: DraftPayload
