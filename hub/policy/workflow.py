"""Workflow state the hub tracks from signed envelopes, and the transitions it allows.

Three workflows (DESIGN.md section 6): a **referral** (to the local authority and police
together, then a police triage outcome back to the referrer); an **information request**
(decided once by a node it was sent to — an escalation is followed by a decision — then
released, possibly in parts, by the decider to the requester); a **Channel case** (opened
by a local authority, its chair alone changes membership and sends case packs, consent
records and outcomes; the panel adopts a case, or does not adopt it with no further action
or a referral elsewhere (SEED 004 para 31; CTSA 2015 s36(6)); an adopted case waits for
consent, sought as the support plan sets out, and support and the sharing for it need
that consent and a subject who may be told; reviews follow an exit). Pure: the caller
passes the current state, the parties and the time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from hub.model import EnvelopeFields, Violation
from hub.policy.facts import PolicyFacts
from hub.policy.registry import Registry

__all__ = [
    "CaseState",
    "ReferralState",
    "RequestState",
    "WorkflowFacts",
    "WorkflowUpdate",
    "advance",
    "check_referral_routing",
    "check_workflow",
    "request_due_at",
]

WorkflowKind = Literal["request", "case", "referral"]
CASE_KINDS = frozenset({"case_open", "consent_record", "case_pack", "panel_outcome", "case_review"})
# Case messages only the chair sends; any member may send other messages about the case.
_CHAIR_KINDS = frozenset({"consent_record", "case_pack", "panel_outcome", "case_review"})
_CONSENTING = {"OBTAINED", "CHILD_PARENT_CONSENT", "CHILD_OWN_CONSENT"}
# Stages in which the panel still meets: it may send case packs and record outcomes.
_PANEL_STAGES = frozenset({"OPEN", "CONSENT_SOUGHT", "SUPPORT"})
# Messages that bring a case to support, or record how it stands: not themselves sharing
# for support, so they do not wait for consent (WF-14).
_CONSENT_STEPS = frozenset({"consent_record", "panel_outcome", "case_review", "withdrawal"})
_PANEL_STAGE: dict[str, str] = {
    "NOT_ADOPTED_NFA": "NOT_ADOPTED_NFA",
    "NOT_ADOPTED_REFERRED_ON": "NOT_ADOPTED_REFERRED_ON",
    "EXITED": "EXITED",
}


class _State(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RequestState(_State):
    request_id: str
    requester: str
    disclosers: tuple[str, ...]
    purpose: str
    urgency: str
    submitted_at: datetime
    decision_id: str | None = None
    decision_outcome: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    releases: int = 0

    @property
    def state(self) -> str:
        if self.decision_outcome is None:
            return "SUBMITTED"
        if self.decision_outcome in ("APPROVED_FULL", "APPROVED_PARTIAL") and self.releases:
            return "RELEASED"
        return self.decision_outcome


class ReferralState(_State):
    referral_id: str
    referrer: str
    recipients: tuple[str, ...]
    submitted_at: datetime
    triage_outcome: str | None = None
    triaged_by: str | None = None


class CaseState(_State):
    case_ref: str
    opened_by: str
    chair: str
    members: tuple[tuple[str, str], ...]  # (node, role)
    # CONSENT_SOUGHT: adopted by the panel, consent not yet given (REFERENCE.md 4.2 stage 7).
    stage: Literal[
        "OPEN",
        "CONSENT_SOUGHT",
        "SUPPORT",
        "NOT_ADOPTED_NFA",
        "NOT_ADOPTED_REFERRED_ON",
        "EXITED",
        "CLOSED",
    ] = "OPEN"
    consent: Literal["NONE", "GIVEN", "REFUSED", "WITHDRAWN"] = "NONE"
    not_to_be_told: bool = False
    exited_on: date | None = None
    reviews: tuple[str, ...] = ()

    def member_nodes(self) -> frozenset[str]:
        return frozenset(node for node, _ in self.members) | {self.chair}


class WorkflowFacts(BaseModel):
    """The workflows a message touches, as the hub holds them before it."""

    model_config = ConfigDict(frozen=True)

    request: RequestState | None = None
    referral: ReferralState | None = None
    case: CaseState | None = None
    # The case reference belongs to a case this sender is not on (only opening tells).
    case_ref_taken: bool = False


class WorkflowUpdate(BaseModel):
    """What accepting a message changes: the new state and the message's place in it."""

    model_config = ConfigDict(frozen=True)

    kind: WorkflowKind
    ref: str
    state: RequestState | ReferralState | CaseState
    parties: tuple[str, ...]
    # A membership change replaces the case's parties: removed members lose access.
    replace_parties: bool = False
    # The message starts the workflow (nothing to update yet).
    created: bool = False


def _v(rule: str, path: str, message: str) -> Violation:
    return Violation(rule=rule, path=path, message=message)


def check_workflow(
    fields: EnvelopeFields,
    *,
    sender: str,
    agency_types: Mapping[str, str],
    facts: WorkflowFacts,
    registry: Registry,
    now: datetime,
) -> list[Violation]:
    """Every workflow rule the message breaks, given the state it would change."""
    kind = fields.kind
    if kind == "referral_outcome":
        return _check_triage(fields, sender, agency_types, facts.referral)
    if kind == "decision":
        return _check_decision(fields, sender, facts.request)
    if kind == "release":
        return _check_release(fields, sender, facts.request)
    if kind in CASE_KINDS or fields.case_ref is not None:
        return _check_case(fields, sender, agency_types, facts, now)
    return []


def check_referral_routing(
    fields: EnvelopeFields, facts: PolicyFacts, registry: Registry
) -> list[Violation]:
    """WF-01: a Prevent referral always reaches the local authority.

    Seed 004 Appendix 3 (the National Prevent Referral Form): "By sending this form you
    consent for it to arrive with both your dedicated Local Authority safeguarding team &
    Prevent policing team for a joint assessment", sent to "[Insert name of MASH] and your
    local authority Prevent Lead"; para 30 and the Appendix 6 flowchart route an onward
    referral to the local authority. So the local authority (Prevent lead or MASH) is
    always a recipient; the police Prevent team alongside it is the default but not
    required, and a referral to the police alone is refused. Which agency types must be
    reached is ``settings.referral_requires``; local exceptions are
    ``settings.referral_routing_exceptions``.

    Stateless, so it is one of the policy engine's rules (hub, pre-flight and ``hub policy
    check`` alike). The sender's own agency counts as reached (a local authority's
    referral needs no other local authority); recipients that are not active nodes reach
    no one.
    """
    if fields.kind != "referral" or fields.purpose != "PREVENT_REFERRAL":
        return []
    sender = facts.sender.node_id
    exception = registry.settings.referral_routing_exceptions.get(sender)
    if exception is not None and set(exception) <= set(fields.recipients):
        return []
    reached = {party.agency_type for party in (*facts.recipients.values(), facts.sender)}
    missing = [t for t in registry.settings.referral_requires if t not in reached]
    if not missing:
        return []
    return [
        _v(
            "WF-01",
            "$.recipients",
            "a Prevent referral always goes to the local authority Prevent lead or MASH, "
            "with the police Prevent team alongside it by default; add a "
            f"{' and a '.join(m.replace('_', ' ') for m in missing)} recipient",
        )
    ]


def _check_triage(
    fields: EnvelopeFields,
    sender: str,
    agency_types: Mapping[str, str],
    referral: ReferralState | None,
) -> list[Violation]:
    out: list[Violation] = []
    if referral is None:
        return [
            _v("WF-02", "$.in_reply_to", "a triage outcome answers a referral this node received")
        ]
    if sender not in referral.recipients or agency_types.get(sender) != "police":
        out.append(
            _v("WF-02", "$.sender", "only the police team the referral went to records its triage")
        )
    if referral.triage_outcome is not None:
        out.append(
            _v(
                "WF-02",
                "$.in_reply_to",
                f"this referral was already triaged ({referral.triage_outcome})",
            )
        )
    if referral.referrer not in fields.recipients:
        out.append(_v("WF-02", "$.recipients", "the triage outcome goes back to the referrer"))
    if fields.triage_outcome is None:
        out.append(
            _v(
                "WF-02",
                "$.triage_outcome",
                "give the outcome: NFA, SIGNPOSTED, CHANNEL or POLICE_LED",
            )
        )
    return out


def _check_decision(
    fields: EnvelopeFields, sender: str, request: RequestState | None
) -> list[Violation]:
    if request is None:
        return []  # DEC-05 names the missing request
    out: list[Violation] = []
    if sender not in request.disclosers:
        out.append(_v("WF-03", "$.sender", "only a node the request was sent to may decide it"))
    if request.decision_outcome is not None and request.decision_outcome != "ESCALATED":
        out.append(
            _v(
                "WF-04",
                "$.in_reply_to",
                f"this request was already decided ({request.decision_outcome}); "
                "a request is decided once",
            )
        )
    if request.requester not in fields.recipients:
        out.append(
            _v("WF-05", "$.recipients", f"send the decision to the requester, {request.requester}")
        )
    return out


def _check_release(
    fields: EnvelopeFields, sender: str, request: RequestState | None
) -> list[Violation]:
    if request is None:
        # Whether the approval is missing, or visible (say, copied) to a node that did not
        # decide the request: only the decider releases, and the answer is the same.
        return [
            _v(
                "WF-06",
                "$.in_reply_to",
                "a release answers an approval this node gave to a request",
            )
        ]
    out: list[Violation] = []
    if request.decided_by is not None and sender != request.decided_by:
        out.append(_v("WF-06", "$.sender", f"only the decider, {request.decided_by}, may release"))
    if tuple(fields.recipients) != (request.requester,):
        out.append(
            _v(
                "WF-06",
                "$.recipients",
                f"a release goes only to the requester, {request.requester}",
            )
        )
    return out


def _check_case(
    fields: EnvelopeFields,
    sender: str,
    agency_types: Mapping[str, str],
    facts: WorkflowFacts,
    now: datetime,
) -> list[Violation]:
    # A case this sender is not on and a case that does not exist look the same.
    no_case = _v("WF-09", "$.case_ref", "no such case is open for this node")
    case = facts.case
    out: list[Violation] = []
    if fields.case_ref is None:
        return [_v("WF-09", "$.case_ref", "name the Channel case this message belongs to")]
    if fields.kind == "case_open":
        if fields.case is None:
            return [_v("WF-07", "$.case", "a case_open names the chair and the panel members")]
        if case is None:
            if agency_types.get(sender) != "local_authority":
                return [_v("WF-07", "$.sender", "a Channel case is opened by a local authority")]
            if facts.case_ref_taken:
                return [_v("WF-09", "$.case_ref", "this case reference is in use; choose another")]
            if fields.case.chair != sender:
                out.append(
                    _v("WF-07", "$.case.chair", "the opening local authority chairs the case")
                )
        else:
            if case.stage == "CLOSED":
                out.append(_v("WF-13", "$.case_ref", "this case is closed"))
            if sender != case.chair:
                out.append(_v("WF-08", "$.sender", "only the chair changes the panel's membership"))
        members = {m.node for m in fields.case.members} | {fields.case.chair}
        strangers = [r for r in fields.recipients if r not in members]
        if strangers:
            out.append(_v("WF-09", "$.recipients", f"not panel members: {', '.join(strangers)}"))
        return out
    if case is None or sender not in case.member_nodes():
        return [no_case]
    if case.stage == "CLOSED":
        out.append(_v("WF-13", "$.case_ref", "this case is closed"))
    if fields.kind in _CHAIR_KINDS and sender != case.chair:
        out.append(
            _v("WF-08", "$.sender", f"only the chair, {case.chair}, sends {fields.kind} messages")
        )
    strangers = [r for r in fields.recipients if r not in case.member_nodes()]
    if strangers:
        out.append(
            _v("WF-09", "$.recipients", f"not current panel members: {', '.join(strangers)}")
        )
    if fields.kind in ("case_pack", "panel_outcome") and case.stage not in _PANEL_STAGES:
        out.append(
            _v(
                "WF-13",
                "$.kind",
                f"a {fields.kind} is for a case that is open, adopted awaiting consent or in "
                f"support (this one is {case.stage.replace('_', ' ').lower()})",
            )
        )
    if (
        fields.purpose == "CHANNEL_SUPPORT"
        and fields.kind not in _CONSENT_STEPS
        and case.consent != "GIVEN"
    ):
        out.append(
            _v(
                "WF-14",
                "$.purpose",
                "sharing for Channel support needs the person's consent recorded first "
                f"(consent is {case.consent}); seek it as the support plan sets out",
            )
        )
    if fields.kind == "case_pack" and (
        fields.access_expires_at is None or fields.access_expires_at <= now
    ):
        out.append(
            _v("WF-10", "$.access_expires_at", "a case pack needs an access expiry in the future")
        )
    if fields.kind == "panel_outcome":
        if fields.panel_outcome is None:
            out.append(_v("WF-11", "$.panel_outcome", "give the panel outcome"))
        elif fields.panel_outcome == "ADOPTED":
            told = case.not_to_be_told or (
                fields.consent is not None and fields.consent.subject_not_to_be_told
            )
            if told:
                out.append(
                    _v(
                        "WF-11",
                        "$.panel_outcome",
                        "the subject must not be told (terrorism planning): the case cannot "
                        "enter Channel support; route it to police-led management",
                    )
                )
    if fields.kind == "case_review":
        expected = "6_MONTHS" if "6_MONTHS" not in case.reviews else "12_MONTHS"
        if case.stage != "EXITED":
            out.append(_v("WF-12", "$.kind", "reviews follow the case's exit from Channel support"))
        elif fields.review_point != expected:
            out.append(
                _v(
                    "WF-12",
                    "$.review_point",
                    f"the next review is the {expected.replace('_', ' ').lower()} one",
                )
            )
    return out


def advance(
    fields: EnvelopeFields,
    *,
    message_id: str,
    sender: str,
    facts: WorkflowFacts,
    at: datetime,
) -> WorkflowUpdate | None:
    """The workflow state after accepting the message (None when it touches none)."""
    kind = fields.kind
    if kind == "information_request":
        state = RequestState(
            request_id=message_id,
            requester=sender,
            disclosers=tuple(fields.recipients),
            purpose=fields.purpose,
            urgency=fields.urgency,
            submitted_at=at,
        )
        return WorkflowUpdate(
            kind="request",
            ref=message_id,
            state=state,
            parties=(sender, *fields.recipients),
            created=True,
        )
    if kind in ("decision", "release") and facts.request is not None:
        request = facts.request
        if kind == "decision":
            assert fields.decision is not None
            request = request.model_copy(
                update={
                    "decision_id": message_id,
                    "decision_outcome": fields.decision.outcome,
                    "decided_by": sender,
                    "decided_at": at,
                }
            )
        else:
            request = request.model_copy(update={"releases": request.releases + 1})
        return WorkflowUpdate(kind="request", ref=request.request_id, state=request, parties=())
    if kind == "referral":
        referral = ReferralState(
            referral_id=message_id,
            referrer=sender,
            recipients=tuple(fields.recipients),
            submitted_at=at,
        )
        return WorkflowUpdate(
            kind="referral",
            ref=message_id,
            state=referral,
            parties=(sender, *fields.recipients),
            created=True,
        )
    if kind == "referral_outcome" and facts.referral is not None:
        triaged = facts.referral.model_copy(
            update={"triage_outcome": fields.triage_outcome, "triaged_by": sender}
        )
        return WorkflowUpdate(kind="referral", ref=triaged.referral_id, state=triaged, parties=())
    if fields.case_ref is None or kind not in CASE_KINDS:
        return None
    case = facts.case
    if kind == "case_open" and fields.case is not None:
        members = tuple((m.node, m.role) for m in fields.case.members)
        opening = case is None
        if case is None:
            case = CaseState(
                case_ref=fields.case_ref, opened_by=sender, chair=fields.case.chair, members=members
            )
        else:
            case = case.model_copy(update={"chair": fields.case.chair, "members": members})
        return WorkflowUpdate(
            kind="case",
            ref=case.case_ref,
            state=case,
            parties=tuple(sorted(case.member_nodes())),
            replace_parties=True,
            created=opening,
        )
    if case is None:
        return None
    update: dict[str, object] = {}
    if fields.consent is not None and fields.consent.subject_not_to_be_told:
        update["not_to_be_told"] = True
    if kind == "consent_record" and fields.consent is not None:
        recorded = fields.consent.state
        consent: str = case.consent
        if recorded in _CONSENTING:
            consent = "GIVEN"
        elif recorded in ("REFUSED", "WITHDRAWN"):
            consent = recorded
        update["consent"] = consent
        if consent == "GIVEN" and case.stage == "CONSENT_SOUGHT":
            # Adopted and now consented: support starts (REFERENCE.md 4.2 stages 7-8).
            update["stage"] = "SUPPORT"
        if consent == "WITHDRAWN" and case.stage == "SUPPORT":
            # Withdrawn consent stops support at once (CTSA 2015 s36; REFERENCE 3.2).
            update["stage"] = "EXITED"
            update["exited_on"] = at.date()
    if kind == "panel_outcome" and fields.panel_outcome is not None:
        if fields.panel_outcome == "ADOPTED":
            # Adoption may come before consent; support starts only with it (WF-11, WF-14).
            consented = update.get("consent", case.consent) == "GIVEN"
            update["stage"] = "SUPPORT" if consented else "CONSENT_SOUGHT"
        else:
            update["stage"] = _PANEL_STAGE[fields.panel_outcome]
        if fields.panel_outcome == "EXITED":
            update["exited_on"] = at.date()
    if kind == "case_review" and fields.review_point is not None:
        update["reviews"] = (*case.reviews, fields.review_point)
        if fields.review_point == "12_MONTHS":
            update["stage"] = "CLOSED"
    # Every case message is recorded in the case history, even one (a case pack) that
    # leaves the state as it was: who sent what to the panel, and when.
    if update:
        case = case.model_copy(update=update)
    return WorkflowUpdate(kind="case", ref=case.case_ref, state=case, parties=())


def request_due_at(request: RequestState, registry: Registry) -> datetime | None:
    """When a decision is due, from the purpose's deadlines by urgency (registry)."""
    purpose = registry.purpose(request.purpose)
    if purpose is None or purpose.deadlines is None:
        return None
    hours = (
        purpose.deadlines.urgent_hours
        if request.urgency == "urgent"
        else purpose.deadlines.routine_hours
    )
    return request.submitted_at + timedelta(hours=hours)
