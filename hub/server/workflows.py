"""Workflow state at the hub: loading it for the rules, advancing it, and showing it.

The state is derived only from accepted, signed envelopes; it is written in the same
transaction as the message that changes it, and re-checked there so that two concurrent
decisions cannot both pass.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub.errors import NotFound
from hub.model import Envelope, Violation, rfc3339
from hub.policy.registry import Registry
from hub.policy.workflow import (
    CaseState,
    ReferralState,
    RequestState,
    WorkflowFacts,
    WorkflowUpdate,
    advance,
    check_workflow,
    request_due_at,
)
from hub.store import NodeRecord, Store, UnitOfWork, WorkflowRecord

__all__ = [
    "WorkflowService",
    "load_workflow_facts",
    "record_workflow",
    "touches_existing_workflow",
    "workflow_violations",
]


def touches_existing_workflow(envelope: Envelope) -> bool:
    """Only a reply or a case message can concern workflow state the hub already holds."""
    return envelope.in_reply_to is not None or envelope.case_ref is not None


async def load_workflow_facts(uow: UnitOfWork, envelope: Envelope, sender: str) -> WorkflowFacts:
    """The workflows a message touches, as far as its sender may see them."""
    if not touches_existing_workflow(envelope):
        return WorkflowFacts()
    request: RequestState | None = None
    referral: ReferralState | None = None
    case: CaseState | None = None
    if envelope.in_reply_to is not None:
        pointer = await uow.workflows.for_message(envelope.in_reply_to)
        if pointer is not None and await uow.workflows.is_party(*pointer, sender):
            record = await uow.workflows.get(*pointer)
            if record is not None and pointer[0] == "request":
                request = RequestState.model_validate_json(record.state_json)
            elif record is not None and pointer[0] == "referral":
                referral = ReferralState.model_validate_json(record.state_json)
    taken = False
    if envelope.case_ref is not None:
        record = await uow.workflows.get("case", envelope.case_ref)
        if record is not None:
            if await uow.workflows.is_party("case", envelope.case_ref, sender):
                case = CaseState.model_validate_json(record.state_json)
            else:
                taken = True
    return WorkflowFacts(request=request, referral=referral, case=case, case_ref_taken=taken)


def workflow_violations(
    envelope: Envelope,
    facts: WorkflowFacts,
    *,
    agency_types: dict[str, str],
    registry: Registry,
    now: datetime,
) -> list[Violation]:
    return check_workflow(
        envelope,
        sender=envelope.sender,
        agency_types=agency_types,
        facts=facts,
        registry=registry,
        now=now,
    )


async def record_workflow(
    uow: UnitOfWork, envelope: Envelope, facts: WorkflowFacts, at: datetime
) -> WorkflowUpdate | None:
    update = advance(envelope, message_id=envelope.id, sender=envelope.sender, facts=facts, at=at)
    if update is None:
        return None
    await uow.workflows.save(
        WorkflowRecord(update.kind, update.ref, update.state.model_dump_json(), at),
        parties=update.parties,
        message_id=envelope.id,
        replace_parties=update.replace_parties,
        created=update.created,
    )
    await uow.workflows.add_event(
        update.kind,
        update.ref,
        message_id=envelope.id,
        message_kind=envelope.kind,
        actor=envelope.sender,
        at=at,
        summary=_summary(envelope, update),
    )
    return update


def _summary(envelope: Envelope, update: WorkflowUpdate) -> str:
    """What the event changed, from the envelope and the new state (never payload text)."""
    if (
        envelope.panel_outcome == "ADOPTED"
        and isinstance(update.state, CaseState)
        and update.state.stage == "CONSENT_SOUGHT"
    ):
        # Adopted before consent: support waits for it (WF-11, WF-14).
        return "ADOPTED_CONSENT_PENDING"
    if envelope.decision is not None:
        return envelope.decision.outcome
    for value in (envelope.triage_outcome, envelope.panel_outcome, envelope.review_point):
        if value is not None:
            return value
    if envelope.kind == "release":
        return ", ".join(item.category for item in envelope.scope)
    if envelope.kind == "consent_record" and envelope.consent is not None:
        return envelope.consent.state
    return envelope.kind


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)


class WorkflowService:
    """Read side: request and case state for the parties to them, and overdue lists."""

    def __init__(self, *, store: Store, registry: Registry) -> None:
        self._store = store
        self._registry = registry

    async def request_view(
        self, node: NodeRecord, request_id: str, now: datetime
    ) -> dict[str, Any]:
        async with self._store.read() as view:
            # Parties only; another's request costs the same one query as a missing one.
            record = await view.workflows.visible("request", request_id, node.id)
            if record is None:
                raise NotFound(request_id=request_id, node=node.id)
            history = await view.workflows.history("request", request_id)
        state = RequestState.model_validate_json(record.state_json)
        return {**self._request_summary(state, now), "history": _history(history)}

    def _request_summary(self, state: RequestState, now: datetime) -> dict[str, Any]:
        due = request_due_at(state, self._registry)
        open_ = state.decision_outcome in (None, "ESCALATED")
        return {
            "request_id": state.request_id,
            "state": state.state,
            "requester": state.requester,
            "disclosers": list(state.disclosers),
            "purpose": state.purpose,
            "urgency": state.urgency,
            "submitted_at": _iso(state.submitted_at),
            "due_at": _iso(due),
            "overdue": bool(open_ and due is not None and now > due),
            # The decision to release against (hub node release --decision).
            "decision_id": state.decision_id,
            "decision_outcome": state.decision_outcome,
            "decided_by": state.decided_by,
            "decided_at": _iso(state.decided_at),
            "releases": state.releases,
        }

    async def requests_for(
        self, node: NodeRecord, now: datetime, *, overdue_only: bool
    ) -> list[dict[str, Any]]:
        async with self._store.read() as view:
            records = await view.workflows.involving(node.id, "request")
        summaries = [
            self._request_summary(RequestState.model_validate_json(r.state_json), now)
            for r in records
        ]
        return [s for s in summaries if s["overdue"] or not overdue_only]

    async def case_view(self, node: NodeRecord, case_ref: str) -> dict[str, Any]:
        async with self._store.read() as view:
            # Members only. Case references are chosen by people: another panel's case
            # must cost the same one query as a missing one, or they could be enumerated.
            record = await view.workflows.visible("case", case_ref, node.id)
            if record is None:
                raise NotFound(case_ref=case_ref, node=node.id)
            history = await view.workflows.history("case", case_ref)
        state = CaseState.model_validate_json(record.state_json)
        if node.id not in state.member_nodes():
            raise NotFound(case_ref=case_ref, node=node.id)  # removed from the panel
        return {
            "case_ref": state.case_ref,
            "stage": state.stage,
            "chair": state.chair,
            "members": [{"node": n, "role": r} for n, r in state.members],
            "consent": state.consent,
            # Adopted by the panel and waiting for the person's consent before support.
            "awaiting_consent": state.stage == "CONSENT_SOUGHT",
            "subject_not_to_be_told": state.not_to_be_told,
            "exited_on": None if state.exited_on is None else state.exited_on.isoformat(),
            "reviews_done": list(state.reviews),
            "history": _history(history),
        }


def _history(events: Any) -> list[dict[str, Any]]:
    return [
        {
            "message_id": e.message_id,
            "kind": e.message_kind,
            "actor": e.actor,
            "at": _iso(e.at),
            "summary": e.summary,
        }
        for e in events
    ]
