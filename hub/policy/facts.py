"""The facts a policy decision needs beyond the envelope, fetched by the caller.

Rules are pure (STYLE.md rule 2): the hub or the node looks up the parties, today's date
and any earlier messages this one answers, and passes them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from hub.model import EnvelopeFields

__all__ = ["Party", "PolicyFacts"]


@dataclass(frozen=True, slots=True)
class Party:
    """A node taking part in a message, as the hub's registry knows it."""

    node_id: str
    agency_type: str
    accreditation: str  # OFFICIAL | OFFICIAL-SENSITIVE


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    sender: Party
    # Known recipients only; unknown or inactive ones are refused by routing (ROUTE-*).
    recipients: Mapping[str, Party]
    today: date
    # The message named by in_reply_to, when the hub holds it and the sender may see it:
    # for a decision, the information request; for a release, the approving decision.
    answers: EnvelopeFields | None = None
    # The node that sent the answered message (for the reply-marking rule, MK-12).
    answers_sender: str | None = None
