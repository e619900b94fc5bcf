"""A health release built from an approved decision: what goes, what is withheld, and why.

``hub node release --decision ID --records BUNDLE.json`` and the demo use this. From the
decision this node sent (verified and opened from the hub) and the request it answers,
the planner takes everything the release's envelope says: the requester as the only
recipient, the decision's marking, the request's purpose, gateways, consent position and
subject, and only the approved categories that the record actually holds. The release
builder selects from the record; the manifest is computed from the exact bytes that will
be sealed; and :func:`agency_adapters.node.checks.payload_violations` checks the bytes
against the manifest and the scope before anything is sent. The disclosure log entry is
written only after the hub has accepted the release (:func:`disclosure_record`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agency_adapters.health.disclosure_log import DisclosureRecord
from agency_adapters.health.release_builder import ReleaseResult, build_release
from agency_adapters.node.checks import FHIR_RELEASE_MEDIA_TYPE, fhir_release_manifest
from hub.client import NodeClient, PayloadSource
from hub.crypto import canonical_json
from hub.model import (
    Author,
    DecisionPayload,
    Envelope,
    EnvelopeFields,
    Receipt,
    ReleaseManifest,
    rfc3339,
)

__all__ = ["ReleasePlan", "ReleasePlanError", "disclosure_record", "plan_release"]

_APPROVALS = frozenset({"APPROVED_FULL", "APPROVED_PARTIAL"})
# The public-interest exception to the common law duty of confidentiality (registry id).
_PUBLIC_INTEREST = "CLDC-PUBINT"


class ReleasePlanError(ValueError):
    """The decision cannot be released from: not this node's, not an approval, and so on."""


@dataclass(frozen=True, slots=True)
class ReleasePlan:
    """A release ready to check and send, and the account of what it holds."""

    fields: EnvelopeFields
    bundle_json: bytes  # the RFC 8785 canonical bytes the manifest names
    result: ReleaseResult
    decision: Envelope
    request: Envelope
    decision_payload: DecisionPayload

    @property
    def manifest(self) -> ReleaseManifest:
        assert self.fields.manifest is not None
        return self.fields.manifest

    def payload(self) -> PayloadSource:
        return PayloadSource(media_type=FHIR_RELEASE_MEDIA_TYPE, data=self.bundle_json)

    def summary(self) -> dict[str, Any]:
        """What goes and what is withheld, as the command prints it (no payload content)."""
        approved = self.decision.decision.approved_scope if self.decision.decision else ()
        released = {c.category for c in self.manifest.categories}
        return {
            "decision_id": self.decision.id,
            "request_id": self.request.id,
            "recipients": list(self.fields.recipients),
            "marking": self.fields.marking.render(),
            "releases": [
                {
                    "category": c.category,
                    "period_from": c.period_from.isoformat() if c.period_from else None,
                    "period_to": c.period_to.isoformat() if c.period_to else None,
                    "resources": c.resources,
                }
                for c in self.manifest.categories
            ],
            "approved_but_not_in_record": sorted({item.category for item in approved} - released),
            # Resources of the record outside the approved categories or periods.
            "not_released_count": self.result.excluded_count,
            # What an approved category might have covered but the builder withheld, and
            # why (unclassified codes, entries without a period, invalid reduced forms).
            "withheld": [
                {"resource": w.resource, "reason": w.reason} for w in self.result.withheld
            ],
            "resource_count": self.manifest.resource_count,
            "content_sha256": self.manifest.content_sha256,
        }


async def plan_release(
    client: NodeClient,
    decision_id: str,
    record: Mapping[str, Any],
    *,
    author: Author | None = None,
) -> ReleasePlan:
    """The release of ``record`` that the decision ``decision_id`` approved.

    Raises :class:`ReleasePlanError` when this node did not make the decision, it is not
    an approval, the request it answers cannot be read, or the record holds nothing the
    approval covers; the builder's own errors (``InvalidRecord``, ``UnsupportedScope``)
    pass through.
    """
    decision = (await client.fetch(decision_id)).envelope
    if decision.kind != "decision" or decision.decision is None:
        raise ReleasePlanError(f"{decision_id} is a {decision.kind}, not a decision")
    if decision.sender != client.node_id:
        raise ReleasePlanError(
            f"decision {decision_id} was made by {decision.sender}; only the node that "
            "decided a request releases against it (WF-06)"
        )
    if decision.decision.outcome not in _APPROVALS:
        raise ReleasePlanError(
            f"decision {decision_id} is {decision.decision.outcome}: only an approval "
            "(APPROVED_FULL or APPROVED_PARTIAL) permits a release (REL-02)"
        )
    if decision.in_reply_to is None:
        raise ReleasePlanError(f"decision {decision_id} does not name the request it answers")
    request = (await client.fetch(decision.in_reply_to)).envelope
    if request.subject_ref is None:
        raise ReleasePlanError(f"request {request.id} names no subject to release about")
    opened = await client.open_payload(await client.fetch(decision_id))
    assert opened is not None
    decision_payload = DecisionPayload.model_validate_json(opened)

    approved = decision.decision.approved_scope
    result = build_release(
        record, approved, marking=decision.marking, subject_ref=request.subject_ref
    )
    if not result.categories:
        raise ReleasePlanError(
            "the record holds nothing inside the approval; nothing to release "
            f"(approved: {', '.join(sorted({i.category for i in approved}))})"
        )
    legal_basis = request.legal_basis
    if (
        legal_basis is not None
        and decision_payload.public_interest_considerations is not None
        and _PUBLIC_INTEREST not in legal_basis.confidentiality
    ):
        # The decider weighed the public interest against the duty of confidence and
        # recorded it in the decision: the release names that exception (004 Appendix 4a:
        # "The CLDC is an additional legal requirement for health").
        legal_basis = legal_basis.model_copy(
            update={"confidentiality": (*legal_basis.confidentiality, _PUBLIC_INTEREST)}
        )
    bundle_json = canonical_json(json.loads(result.bundle_json))
    # The envelope names only what the release holds: the approved items of the
    # categories the builder found, so the register records what was actually sent.
    scope = tuple(item for item in approved if item.category in result.categories)
    fields = EnvelopeFields(
        kind="release",
        author=author or decision.author,
        recipients=(request.sender,),
        marking=decision.marking,
        subject_ref=request.subject_ref,
        case_ref=request.case_ref,
        in_reply_to=decision.id,
        purpose=request.purpose,
        legal_basis=legal_basis,
        consent=request.consent,
        scope=scope,
        urgency=request.urgency,
        manifest=fhir_release_manifest(bundle_json, scope),
    )
    return ReleasePlan(
        fields=fields,
        bundle_json=bundle_json,
        result=result,
        decision=decision,
        request=request,
        decision_payload=decision_payload,
    )


def disclosure_record(plan: ReleasePlan, receipt: Receipt, at: datetime) -> DisclosureRecord:
    """The disclosure log entry for a release the hub has accepted (REFERENCE.md 3.7)."""
    basis = plan.fields.legal_basis
    gateways = () if basis is None else basis.gateway_ids()
    informed = plan.decision_payload.subject_informed
    consent = plan.fields.consent
    record: dict[str, Any] = {
        "disclosed_at": rfc3339(at),
        "categories": sorted(c.category for c in plan.manifest.categories),
        "resource_count": plan.manifest.resource_count,
        "release_sha256": plan.manifest.content_sha256,
        "recipients": list(plan.fields.recipients),
        "subject_ref": plan.fields.subject_ref,
        "purpose": plan.fields.purpose,
        "gateways": list(gateways),
        "decided_by_role": plan.decision.author.role,
        "decided_by_user_ref": plan.decision.author.user_ref,
        "request_id": plan.request.id,
        "decision_id": plan.decision.id,
        "release_id": receipt.message_id,
        "marking": plan.fields.marking.render(),
        "consent": None if consent is None else consent.model_dump(mode="json"),
        "subject_informed": bool(informed and informed.informed),
    }
    if not record["subject_informed"]:
        # The reason in words is in the decision's payload; the log takes a code.
        reason = consent.reason_code if consent is not None else None
        record["not_informed_reason"] = reason or "RECORDED_IN_DECISION"
    return DisclosureRecord.model_validate_json(json.dumps(record))
