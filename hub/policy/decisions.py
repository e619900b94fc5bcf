"""Release decisions and releases (REFERENCE.md 3.6; rules DEC-*, REL-*).

The discloser may approve only what was asked for, and may release only what it
approved (DESIGN.md section 1). The caller passes the message answered in
``facts.answers``: for a decision, the information request; for a release, the decision.

Pure: facts in, every violation out (STYLE.md rule 2).
"""

from __future__ import annotations

from hub.model import EnvelopeFields, ScopeItem, Violation
from hub.policy.facts import PolicyFacts
from hub.policy.registry import Registry
from hub.policy.scope import check_scope_items, describe_period, scope_within

__all__ = ["APPROVALS", "REASONED_OUTCOMES", "check_decision", "check_release"]

APPROVALS = frozenset({"APPROVED_FULL", "APPROVED_PARTIAL"})
# Outcomes that must say why (REFERENCE.md 3.6: "REFUSED (reason required)").
REASONED_OUTCOMES = frozenset({"REFUSED", "APPROVED_PARTIAL", "RETURNED_INCOMPLETE"})


def _ordered(violations: list[Violation]) -> list[Violation]:
    return sorted(violations, key=lambda v: (v.path, v.rule, v.message))


def check_decision(
    fields: EnvelopeFields, facts: PolicyFacts, registry: Registry
) -> list[Violation]:
    """DEC-01..DEC-06 and the scope rules over the approved scope, for ``decision`` kinds."""
    if fields.kind != "decision":
        return []
    violations: list[Violation] = []
    request = facts.answers
    if request is None or request.kind != "information_request":
        violations.append(
            Violation(
                rule="DEC-05",
                path="$.in_reply_to",
                message=(
                    "a decision answers an information request: set in_reply_to to the id "
                    "of the request it decides"
                    if request is None
                    else f"in_reply_to names a {request.kind}, not an information request: "
                    "set it to the id of the request this decides"
                ),
            )
        )
        request = None
    elif facts.sender.node_id not in request.recipients:
        violations.append(
            Violation(
                rule="DEC-05",
                path="$.in_reply_to",
                message=(
                    f"{facts.sender.node_id} was not asked in that information request; only "
                    "a node the request was addressed to may decide it"
                ),
            )
        )
    decision = fields.decision
    if decision is None:
        violations.append(
            Violation(
                rule="DEC-03",
                path="$.decision",
                message=(
                    "add the decision record: its outcome and, for an approval, the approved scope"
                ),
            )
        )
        return _ordered(violations)

    approved = decision.approved_scope
    if decision.outcome in APPROVALS and not approved:
        violations.append(
            Violation(
                rule="DEC-03",
                path="$.decision.approved_scope",
                message=(
                    f"an {decision.outcome} decision names what it approves: add the approved "
                    "categories and periods in decision.approved_scope"
                ),
            )
        )
    if decision.outcome not in APPROVALS and approved:
        violations.append(
            Violation(
                rule="DEC-03",
                path="$.decision.approved_scope",
                message=(
                    f"a {decision.outcome} decision approves nothing: remove "
                    "decision.approved_scope, or record the outcome as an approval"
                ),
            )
        )
    if decision.outcome in REASONED_OUTCOMES and decision.reason_code is None:
        violations.append(
            Violation(
                rule="DEC-02",
                path="$.decision.reason_code",
                message=(
                    f"a {decision.outcome} decision carries a reason: set "
                    "decision.reason_code (the rationale itself travels in the payload)"
                ),
            )
        )
    offered = registry.decision_reasons_for(decision.outcome)
    if decision.reason_code is not None and offered:
        codes = [reason.id for reason in offered]
        if decision.reason_code not in codes:
            violations.append(
                Violation(
                    rule="DEC-06",
                    path="$.decision.reason_code",
                    message=(
                        f"{decision.reason_code} is not a reason the registry gives for "
                        f"{decision.outcome}: use one of {', '.join(codes)} "
                        "(schemas/registry/decision_reasons.yaml)"
                    ),
                )
            )
    if approved:
        violations.extend(
            check_scope_items(
                approved,
                path="$.decision.approved_scope",
                holders=(facts.sender,),
                today=facts.today,
                registry=registry,
                required=False,
            )
        )
    if request is not None and approved:
        for index in scope_within(approved, request.scope):
            violations.append(
                Violation(
                    rule="DEC-01",
                    path=f"$.decision.approved_scope[{index}]",
                    message=(
                        f"{describe_period(approved[index])} was not requested: approve only "
                        "categories and periods within the request"
                    ),
                )
            )
        if decision.outcome == "APPROVED_FULL" and _as_set(approved) != _as_set(request.scope):
            violations.append(
                Violation(
                    rule="DEC-04",
                    path="$.decision.approved_scope",
                    message=(
                        "a full approval approves exactly the requested categories and "
                        "periods; copy the requested scope, or record APPROVED_PARTIAL with a "
                        "reason"
                    ),
                )
            )
    return _ordered(violations)


def _as_set(items: tuple[ScopeItem, ...]) -> set[tuple[str, str, str]]:
    return {
        (
            item.category,
            item.period_from.isoformat() if item.period_from else "",
            item.period_to.isoformat() if item.period_to else "",
        )
        for item in items
    }


def check_release(
    fields: EnvelopeFields, facts: PolicyFacts, registry: Registry
) -> list[Violation]:
    """REL-01 and REL-02 for ``release`` kinds (their scope rules run in ``check_scope``)."""
    if fields.kind != "release":
        return []
    answered = facts.answers
    decision = answered.decision if answered is not None else None
    if answered is None or answered.kind != "decision" or decision is None:
        return [
            Violation(
                rule="REL-02",
                path="$.in_reply_to",
                message=(
                    "a release answers the decision that approved it: set in_reply_to to the "
                    "id of that decision"
                ),
            )
        ]
    if decision.outcome not in APPROVALS:
        return [
            Violation(
                rule="REL-02",
                path="$.in_reply_to",
                message=(
                    f"the decision answered is {decision.outcome}: only an approved decision "
                    "(APPROVED_FULL or APPROVED_PARTIAL) permits a release"
                ),
            )
        ]
    violations: list[Violation] = []
    for index in scope_within(fields.scope, decision.approved_scope):
        violations.append(
            Violation(
                rule="REL-01",
                path=f"$.scope[{index}]",
                message=(
                    f"{describe_period(fields.scope[index])} was not approved: release only "
                    "categories and periods within the approved scope"
                ),
            )
        )
    return _ordered(violations)
