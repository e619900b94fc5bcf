"""Node-side checks of an encrypted payload: its kind's model, and agreement with its envelope.

The hub routes without reading, so it cannot check payloads; the sending node checks them
before sending (``hub node submit``) and the receiving node on arrival. A payload that
fails is not sent, or (received) not acknowledged.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import ValidationError

from hub.model.base import WireModel
from hub.model.envelope import EnvelopeFields
from hub.model.payloads import (
    TODAY_CONTEXT_KEY,
    CaseOpenPayload,
    CasePackPayload,
    CaseReviewPayload,
    ConsentRecordPayload,
    DecisionPayload,
    InformationRequestPayload,
    NationalPreventReferralForm,
    PanelOutcomePayload,
    ReferrerFeedback,
)
from hub.model.problem import Violation

__all__ = ["check_payload", "payload_model_for"]

_BY_KIND: dict[str, type[WireModel]] = {
    "information_request": InformationRequestPayload,
    "decision": DecisionPayload,
    # What goes back to the referrer is only what it may know (REFERENCE.md 4.2).
    "referral_outcome": ReferrerFeedback,
    "case_open": CaseOpenPayload,
    "consent_record": ConsentRecordPayload,
    "case_pack": CasePackPayload,
    "panel_outcome": PanelOutcomePayload,
    "case_review": CaseReviewPayload,
}


def payload_model_for(fields: EnvelopeFields) -> type[WireModel] | None:
    """The model a message's JSON payload must satisfy (None: free-form, e.g. a note)."""
    if fields.kind == "referral":
        # The National Prevent Referral Form is for Prevent referrals; other referrals
        # (s47, s42) use their own local forms.
        return NationalPreventReferralForm if fields.purpose == "PREVENT_REFERRAL" else None
    return _BY_KIND.get(fields.kind)


def _path(loc: tuple[int | str, ...]) -> str:
    return "$.payload" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def check_payload(fields: EnvelopeFields, payload_json: bytes, *, today: date) -> list[Violation]:
    """Every way the payload fails its kind's model or disagrees with its envelope."""
    model = payload_model_for(fields)
    if model is None:
        return []
    try:
        payload: Any = model.model_validate_json(payload_json, context={TODAY_CONTEXT_KEY: today})
    except ValidationError as exc:
        return [
            Violation(
                rule="PAYLOAD-04",
                path=_path(tuple(err["loc"])),
                message=f"{model.__name__}: {str(err['msg']).removeprefix('Value error, ')}",
            )
            for err in exc.errors(include_url=False)
        ]
    problems: list[str] = []
    if isinstance(payload, InformationRequestPayload):
        problems += list(payload.scope_mismatches(fields.scope))
    if (
        isinstance(payload, DecisionPayload)
        and fields.decision is not None
        and payload.outcome != fields.decision.outcome
    ):
        problems.append(
            f"the payload's outcome {payload.outcome} is not the envelope's "
            f"{fields.decision.outcome}"
        )
    if isinstance(payload, DecisionPayload) and fields.decision is not None:
        problems += _decision_record_mismatches(payload, fields)
    if isinstance(payload, ReferrerFeedback) and fields.triage_outcome is None:
        problems.append("a triage outcome message names its outcome in the envelope")
    if isinstance(payload, PanelOutcomePayload) and payload.outcome != fields.panel_outcome:
        problems.append(
            f"the payload's outcome {payload.outcome} is not the envelope's {fields.panel_outcome}"
        )
    return [Violation(rule="PAYLOAD-05", path="$.payload", message=m) for m in problems]


def _decision_record_mismatches(payload: DecisionPayload, fields: EnvelopeFields) -> list[str]:
    """The envelope's consultation roles and record flag are what the payload records."""
    assert fields.decision is not None
    problems: list[str] = []
    envelope_roles = set(fields.decision.consulted)
    payload_roles = payload.consulted_roles()
    if envelope_roles != payload_roles:
        problems.append(
            f"the envelope names the consultations {sorted(envelope_roles)} but the payload "
            f"records {sorted(payload_roles)}"
        )
    if fields.decision.recorded_in_subject_record and not payload.recorded_in_subject_record:
        problems.append(
            "the envelope says the decision was recorded in the subject's record; the payload "
            "does not ('recorded_in_subject_record')"
        )
    return problems
