"""A draft: what a caseworker's system hands a node to send (``hub node submit``).

A draft is an unsigned envelope plus the plaintext payload. The node fills in the id,
sender and creation time when absent, encrypts the payload to each recipient, signs the
envelope and submits it.

Agencies' documents carry their protective marking as text ("Official Sensitive",
"RESTRICTED", "OFFICIAL-SENSITIVE PERSONAL DATA"), so a draft's ``marking`` may be that
text instead of the structured form. The model cannot read it (the marking grammar and
vocabulary are the policy registry's, and ``hub.model`` does not import ``hub.policy``):
whoever loads the draft reads it with the hub's marking parser
(``hub.policy.marking_text.resolve_draft_marking``), which keeps the text verbatim in
``marking_text`` beside the structured marking it parsed to, reports what it normalised
and never lowers a marking.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator

from hub.model.base import NodeId, WireModel
from hub.model.envelope import UUID7_PATTERN, EnvelopeFields, Marking

__all__ = ["Draft", "DraftEnvelope", "DraftPayload", "MarkingText"]

# A marking as a document writes it; the marking parser refuses anything longer.
MarkingText = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class DraftEnvelope(EnvelopeFields):
    id: Annotated[str, StringConstraints(pattern=UUID7_PATTERN)] | None = None
    sender: NodeId | None = None
    created_at: datetime | None = None
    # The structured marking, or the marking as text (read by the marking parser before
    # the draft becomes an envelope; see the module docstring).
    marking: Marking | MarkingText  # type: ignore[assignment]

    def text_marking(self) -> str | None:
        """The marking written as text, or None when the draft gives it structured."""
        return self.marking if isinstance(self.marking, str) else None

    @model_validator(mode="after")
    def _one_marking_text(self) -> DraftEnvelope:
        if isinstance(self.marking, str) and self.marking_text is not None:
            raise ValueError(
                "give the marking as text in 'marking' or keep the original in 'marking_text', "
                "not both"
            )
        return self


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
