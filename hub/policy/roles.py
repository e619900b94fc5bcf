"""Who acts: the author's role may refer, decide or release, and consultations are recorded.

The signed envelope names its author (a user reference, a role, a vetting level). The
roles registry (``schemas/registry/roles.yaml``) says, per agency type, which roles may

- make a referral (ROLE-01; a health Prevent referral only by the safeguarding lead, the
  designated nurse: SEED 004 Appendix 3),
- decide an information request (ROLE-02) and release what was approved (ROLE-03),
- decide or release particular data categories, e.g. mental health (ROLE-04);

which decisions must record that the Caldicott Guardian or the Information Governance
officer was consulted (ROLE-05; s115 without consent, SEED 004 para 69), and which must
record the entry made in the patient record (ROLE-06; SEED 004 para 62). A decider who
is the Caldicott Guardian or IG officer named by the rule needs no further consultation.

Pure (STYLE.md rule 2): a decision's request comes in ``facts.answers``; without it (an
offline check) the decision's own legal basis, consent and scope are used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hub.model import EnvelopeFields, Violation
from hub.policy.facts import PolicyFacts
from hub.policy.registry import (
    ConsultationRule,
    Registry,
    RoleAct,
    RoleGrant,
)

__all__ = ["allowed_roles", "check_roles"]

# Consent states in which the person agreed to the sharing (REFERENCE.md 3.2).
_CONSENTING = frozenset({"OBTAINED", "CHILD_PARENT_CONSENT", "CHILD_OWN_CONSENT"})
_ACT_OF_KIND: dict[str, RoleAct] = {"referral": "refer", "decision": "decide", "release": "release"}
_BASE_RULE: dict[RoleAct, str] = {"refer": "ROLE-01", "decide": "ROLE-02", "release": "ROLE-03"}
_ACT_WORDS: dict[RoleAct, str] = {
    "refer": "make this referral",
    "decide": "decide a request",
    "release": "release information",
}


def _v(rule: str, path: str, message: str) -> Violation:
    return Violation(rule=rule, path=path, message=message)


def _applies_to(agency_types: Sequence[str], agency: str) -> bool:
    return agency in agency_types or "ANY" in agency_types


def _most_specific(grants: Iterable[RoleGrant], agency: str, purpose: str) -> list[RoleGrant]:
    """The matching grants that name the agency type (over ANY) and purpose (over every)."""
    matching = [
        g
        for g in grants
        if _applies_to(g.agency_types, agency) and (not g.purposes or purpose in g.purposes)
    ]
    if not matching:
        return []

    def specificity(grant: RoleGrant) -> tuple[bool, bool]:
        return agency in grant.agency_types, bool(grant.purposes)

    best = max(specificity(g) for g in matching)
    return [g for g in matching if specificity(g) == best]


def allowed_roles(
    registry: Registry, act: RoleAct, agency: str, purpose: str, category: str | None = None
) -> tuple[frozenset[str], tuple[RoleGrant, ...]] | None:
    """The roles that may do ``act`` (for ``category``), and the grants that say so.

    None when no grant governs the act (or the category): the registry leaves it open.
    """
    grants = [
        g
        for g in registry.roles.grants
        if g.act == act and (category in g.categories if category else not g.categories)
    ]
    chosen = _most_specific(grants, agency, purpose)
    if not chosen:
        return None
    return frozenset(r for g in chosen for r in g.roles), tuple(chosen)


def _sources(grants: Iterable[RoleGrant]) -> str:
    ids = ", ".join(g.id for g in grants)
    local = all(g.local_policy for g in grants)
    return f"roles.yaml {ids}{' (local policy)' if local else ''}"


def check_roles(fields: EnvelopeFields, facts: PolicyFacts, registry: Registry) -> list[Violation]:
    """ROLE-01 .. ROLE-06 for a referral, decision or release: every violation."""
    act = _ACT_OF_KIND.get(fields.kind)
    if act is None:
        return []
    agency = facts.sender.agency_type
    role = fields.author.role
    out: list[Violation] = []
    base = allowed_roles(registry, act, agency, fields.purpose)
    if base is not None and role not in base[0]:
        out.append(
            _v(
                _BASE_RULE[act],
                "$.author.role",
                f"a {role} may not {_ACT_WORDS[act]} for a {agency.replace('_', ' ')} node "
                f"(purpose {fields.purpose}); this is for {', '.join(sorted(base[0]))} "
                f"[{_sources(base[1])}]",
            )
        )
    if act in ("decide", "release"):
        out += _check_categories(fields, act, agency, registry)
    if act == "decide":
        out += _check_consultations(fields, facts, agency, registry)
        out += _check_subject_record(fields, agency, registry)
    return out


def _categories(fields: EnvelopeFields, act: RoleAct) -> list[tuple[str, str]]:
    """(category, path) of what is decided on (the approved scope) or released."""
    if act == "decide":
        if fields.decision is None:
            return []
        return [
            (item.category, f"$.decision.approved_scope[{i}].category")
            for i, item in enumerate(fields.decision.approved_scope)
        ]
    return [(item.category, f"$.scope[{i}].category") for i, item in enumerate(fields.scope)]


def _check_categories(
    fields: EnvelopeFields, act: RoleAct, agency: str, registry: Registry
) -> list[Violation]:
    out: list[Violation] = []
    role = fields.author.role
    for category, path in _categories(fields, act):
        allowed = allowed_roles(registry, act, agency, fields.purpose, category)
        if allowed is not None and role not in allowed[0]:
            out.append(
                _v(
                    "ROLE-04",
                    path,
                    f"{category} may be {'approved' if act == 'decide' else 'released'} only "
                    f"by {', '.join(sorted(allowed[0]))}, not a {role} "
                    f"[{_sources(allowed[1])}]",
                )
            )
    return out


def _consultation_applies(
    rule: ConsultationRule, fields: EnvelopeFields, request: EnvelopeFields | None, agency: str
) -> bool:
    decision = fields.decision
    if decision is None or decision.outcome not in rule.outcomes:
        return False
    if not _applies_to(rule.agency_types, agency):
        return False
    legal_basis = fields.legal_basis or (request.legal_basis if request else None)
    consent = fields.consent or (request.consent if request else None)
    if rule.powers and (legal_basis is None or not set(rule.powers) & set(legal_basis.powers)):
        return False
    if rule.without_consent and consent is not None and consent.state in _CONSENTING:
        return False
    if rule.categories:
        considered = {item.category for item in decision.approved_scope}
        if decision.outcome == "REFUSED":
            considered |= {item.category for item in (request.scope if request else fields.scope)}
        if not considered & set(rule.categories):
            return False
    return not rule.subject_ages or (
        consent is not None and consent.subject_age in rule.subject_ages
    )


def _check_consultations(
    fields: EnvelopeFields, facts: PolicyFacts, agency: str, registry: Registry
) -> list[Violation]:
    decision = fields.decision
    if decision is None:
        return []
    out: list[Violation] = []
    consulted = {*decision.consulted, fields.author.role}
    for rule in registry.roles.consultations:
        if not _consultation_applies(rule, fields, facts.answers, agency):
            continue
        if consulted & set(rule.consult_one_of):
            continue
        local = " (local policy)" if rule.local_policy else ""
        out.append(
            _v(
                "ROLE-05",
                "$.decision.consulted",
                f"{rule.summary.rstrip('.')}: record the consultation with "
                f"{' or '.join(rule.consult_one_of)} in decision.consulted "
                f"[roles.yaml {rule.id}{local}]",
            )
        )
    return out


def _check_subject_record(
    fields: EnvelopeFields, agency: str, registry: Registry
) -> list[Violation]:
    decision = fields.decision
    if decision is None or decision.recorded_in_subject_record:
        return []
    for rule in registry.roles.subject_record_entry:
        if decision.outcome in rule.outcomes and _applies_to(rule.agency_types, agency):
            local = " (local policy)" if rule.local_policy else ""
            return [
                _v(
                    "ROLE-06",
                    "$.decision.recorded_in_subject_record",
                    "document the decision and its rationale in the patient record and say "
                    "so (decision.recorded_in_subject_record) "
                    f"[roles.yaml {rule.id}{local}]",
                )
            ]
    return []
