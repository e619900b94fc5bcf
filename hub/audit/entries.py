"""The log entry for a message, built the same way at the hub and at a node.

A node rebuilds its own message's entry from the envelope and receipt to check, offline,
that the hub logged exactly that (DESIGN.md section 7).
"""

from __future__ import annotations

from datetime import datetime

from hub.model import AuditAction, AuditEntry, Envelope

__all__ = ["audit_entry"]


def audit_entry(
    envelope: Envelope,
    envelope_sha256: str,
    at: datetime,
    action: AuditAction,
    *,
    rules: tuple[str, ...] = (),
) -> AuditEntry:
    """The log's metadata for a message: never payload, free text or identifying data."""
    basis = envelope.legal_basis
    gateways = () if basis is None else basis.gateway_ids()
    scope = envelope.scope
    outcome: str | None = envelope.triage_outcome or envelope.panel_outcome
    if envelope.decision is not None:
        outcome = envelope.decision.outcome
        scope = envelope.decision.approved_scope
    return AuditEntry(
        at=at,
        action=action,
        actor=envelope.sender,
        role=envelope.author.role,
        kind=envelope.kind,
        message_id=envelope.id,
        envelope_sha256=envelope_sha256,
        recipients=tuple(envelope.recipients),
        subject_ref=envelope.subject_ref,
        case_ref=envelope.case_ref,
        in_reply_to=envelope.in_reply_to,
        marking=envelope.marking.render(),
        purpose=envelope.purpose,
        gateways=gateways,
        scope=tuple(scope),
        consent_state=None if envelope.consent is None else envelope.consent.state,
        outcome=outcome,
        rules=rules,
        manifest=envelope.manifest,
    )
