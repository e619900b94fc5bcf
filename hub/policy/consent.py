"""The consent position and the terrorism-planning rule (REFERENCE.md 3.2, 3.3).

Consent to share (the common law duty of confidentiality, engagement with the person) is
kept apart from the UK GDPR lawful basis, which is checked in ``lawful_basis``. Here:
is the position stated and complete, does it fit the subject's age, and where there is
no consent, does a cited gateway allow sharing anyway?

Pure: facts in, every violation out (STYLE.md rule 2).
"""

from __future__ import annotations

from hub.model import Consent, EnvelopeFields, Violation
from hub.policy.facts import PolicyFacts
from hub.policy.lawful_basis import CONSENT_STATES, cited_gateways
from hub.policy.registry import Gateway, Registry

__all__ = [
    "CONSENT_CHECKED_KINDS",
    "CONSENT_STATES",
    "NOT_SOUGHT_REASONS",
    "check_consent",
]

# Kinds whose consent position is checked besides those that must cite a lawful basis:
# the Channel steps, where consent is what the process turns on (REFERENCE.md 4).
CONSENT_CHECKED_KINDS = frozenset({"case_open", "consent_record", "panel_outcome"})

# CONSENT_STATES (from lawful_basis): states that are consent to share; every other
# state is sharing without consent.
# Under-18 consent given by a parent or guardian (for Channel support, CS-04).
_PARENTAL_CONSENT_STATES = frozenset({"OBTAINED", "CHILD_PARENT_CONSENT"})
_CHILD_STATES = frozenset({"CHILD_PARENT_CONSENT", "CHILD_OWN_CONSENT"})
_UNDER_18 = frozenset({"UNDER_16", "AGED_16_17"})

# "Not yet sought: to be sought as the support plan sets out" (REFERENCE 4.2 stage 7;
# seed 004 para 59) fits only sharing for a Channel panel's assessment, before support.
SUPPORT_PLAN_REASON = "NOT_YET_SOUGHT_SUPPORT_PLAN"
_REASON_PURPOSES = {SUPPORT_PLAN_REASON: frozenset({"CHANNEL_ASSESSMENT"})}

# Why consent was deliberately not sought (REFERENCE.md 3.2 NOT_SOUGHT, 6A).
NOT_SOUGHT_REASONS = frozenset(
    {
        "WOULD_PREJUDICE_OUTCOME",
        "RISK_TO_OTHERS_OR_STAFF",
        "URGENT_NO_TIME",
        "CANNOT_CONTACT",
        "TERRORISM_RISK",
        "DECONFLICTION_STAGE",
        SUPPORT_PLAN_REASON,
    }
)


def _reasons_for(purpose: str) -> frozenset[str]:
    """The not-sought reasons that fit a purpose (some fit only particular purposes)."""
    return frozenset(
        reason
        for reason in NOT_SOUGHT_REASONS
        if reason not in _REASON_PURPOSES or purpose in _REASON_PURPOSES[reason]
    )


def check_consent(
    fields: EnvelopeFields, facts: PolicyFacts, registry: Registry
) -> list[Violation]:
    """CS-01..CS-08, GW-00 and DC-TERR-1 for kinds that share or turn on consent.

    The checks that depend on the gateways cited (GW-00, CS-05 and the gateway half of
    CS-03) apply to the kinds that must cite a lawful basis; on the Channel steps
    (``case_open``, ``consent_record``, ``panel_outcome``) recording a refusal or
    withdrawal is exactly what must happen, so only the shape of the position is checked.
    """
    discloses = fields.kind in registry.settings.legal_basis_required_for
    if not discloses and fields.kind not in CONSENT_CHECKED_KINDS:
        return []
    consent = fields.consent
    if consent is None:
        return [
            Violation(
                rule="CS-01",
                path="$.consent",
                message=(
                    "state the consent position: whether consent was obtained, refused, "
                    "withdrawn or not sought (and why), or that the person lacks capacity"
                ),
            )
        ]
    purpose = registry.purpose(fields.purpose)
    needs_consent = purpose is not None and purpose.consent_required
    violations = [
        *_state_shape(fields, consent),
        *_age_fit(consent),
        *_channel_support(fields, consent, needs_consent),
        *_not_to_be_told(fields, consent, needs_consent),
    ]
    if discloses:
        violations.extend(_gateways_without_consent(fields, consent, registry))
        if needs_consent:
            violations.extend(_adult_consent_for_purpose(fields, consent))
    return sorted(violations, key=lambda v: (v.path, v.rule, v.message))


def _state_shape(fields: EnvelopeFields, consent: Consent) -> list[Violation]:
    violations: list[Violation] = []
    if consent.state == "UNKNOWN":
        violations.append(
            Violation(
                rule="CS-06",
                path="$.consent.state",
                message=(
                    "the consent position has not been considered: consider seeking consent "
                    "first, then record it as obtained, refused or not sought with a reason"
                ),
            )
        )
    if consent.state == "NOT_SOUGHT" and consent.reason_code not in NOT_SOUGHT_REASONS:
        given = (
            f"{consent.reason_code} is not a recognised reason"
            if consent.reason_code is not None
            else "no reason is given"
        )
        violations.append(
            Violation(
                rule="CS-02",
                path="$.consent.reason_code",
                message=(
                    f"consent was not sought and {given}: set consent.reason_code to one of "
                    f"{', '.join(sorted(_reasons_for(fields.purpose)))}"
                ),
            )
        )
    allowed_for = _REASON_PURPOSES.get(consent.reason_code or "")
    if (
        consent.state == "NOT_SOUGHT"
        and allowed_for is not None
        and fields.purpose not in allowed_for
    ):
        violations.append(
            Violation(
                rule="CS-02",
                path="$.consent.reason_code",
                message=(
                    f"{consent.reason_code} (not yet sought: to be sought as the support plan "
                    f"sets out) fits only {', '.join(sorted(allowed_for))}, not "
                    f"{fields.purpose}: give the reason consent was not sought"
                ),
            )
        )
    if consent.state == "LACKS_CAPACITY" and not consent.best_interests:
        violations.append(
            Violation(
                rule="CS-03",
                path="$.consent.best_interests",
                message=(
                    "the person lacks capacity: share only after a recorded best-interests "
                    "decision (Mental Capacity Act 2005 s4), then set consent.best_interests"
                ),
            )
        )
    return violations


def _age_fit(consent: Consent) -> list[Violation]:
    violations: list[Violation] = []
    if consent.state in _CHILD_STATES and consent.subject_age not in _UNDER_18:
        violations.append(
            Violation(
                rule="CS-07",
                path="$.consent.state",
                message=(
                    f"{consent.state} is only for a subject under 18, but the subject's age "
                    f"band is {consent.subject_age}: correct consent.subject_age, or record "
                    "the subject's own consent as OBTAINED"
                ),
            )
        )
    if consent.state == "LACKS_CAPACITY" and consent.subject_age == "UNDER_16":
        violations.append(
            Violation(
                rule="CS-07",
                path="$.consent.subject_age",
                message=(
                    "the Mental Capacity Act 2005 applies from age 16; for a child under 16 "
                    "record parent or guardian consent, or consent not sought with a reason"
                ),
            )
        )
    return violations


def _channel_support(
    fields: EnvelopeFields, consent: Consent, needs_consent: bool
) -> list[Violation]:
    """CS-04: Channel support for an under-18 needs parent or guardian consent (CTSA s36(4)).

    Applies to every purpose the registry marks ``consent_required`` (Channel support).
    An unstated age band counts as possibly under 18, so the rule cannot be side-stepped
    by leaving ``subject_age`` at its default. A ``consent_record`` that records a refusal
    or withdrawal is not support being given and is let through.
    """
    if not needs_consent or consent.subject_age == "ADULT":
        return []
    if fields.kind == "consent_record" and consent.state not in CONSENT_STATES:
        return []
    if consent.given_by == "PARENT_OR_GUARDIAN" and consent.state in _PARENTAL_CONSENT_STATES:
        return []
    if consent.subject_age == "UNKNOWN":
        message = (
            "Channel support for a person under 18 needs parent or guardian consent: state "
            "consent.subject_age, and for an under-18 record the parent or guardian's consent "
            "(consent.given_by PARENT_OR_GUARDIAN)"
        )
    else:
        message = (
            "Channel support for a person under 18 needs the consent of a parent or guardian "
            "(CTSA 2015 s36(4)), even if the child consents: record it with consent.given_by "
            "PARENT_OR_GUARDIAN and state CHILD_PARENT_CONSENT"
        )
    return [Violation(rule="CS-04", path="$.consent.given_by", message=message)]


def _adult_consent_for_purpose(fields: EnvelopeFields, consent: Consent) -> list[Violation]:
    """CS-08: sharing for Channel support needs the adult's own consent, whatever is cited.

    Seed 004 para 43: the person "must also consent to participating in the process and
    for their personal sensitive information to be shared with multi-agency partners";
    Appendix 5: Channel "requires the consent of the individual and or their parent or
    guardian (if aged under 18 years) to participate"; CTSA 2015 s36(4). Consent is
    checked per purpose, not per gateway: citing s38 or LGA 1972 s111 beside s36 does not
    make support-stage sharing lawful without it. Under-18s (and an unstated age) are
    CS-04's; a child state for an adult is CS-07's.
    """
    if consent.subject_age != "ADULT" or consent.state in {
        "CHILD_PARENT_CONSENT",
        "CHILD_OWN_CONSENT",
    }:
        return []
    if consent.state == "OBTAINED" and consent.given_by != "PARENT_OR_GUARDIAN":
        return []
    return [
        Violation(
            rule="CS-08",
            path="$.consent.state",
            message=(
                f"sharing for {fields.purpose} needs the adult's own consent (CTSA 2015 "
                f"s36(4)); the consent position is {consent.state}"
                + (
                    " given by a parent or guardian"
                    if consent.given_by == "PARENT_OR_GUARDIAN"
                    else ""
                )
                + ": seek it as the support plan sets out, or share for the panel's "
                "assessment (CHANNEL_ASSESSMENT) instead"
            ),
        )
    ]


def _not_to_be_told(
    fields: EnvelopeFields, consent: Consent, needs_consent: bool
) -> list[Violation]:
    """DC-TERR-1: a subject who must not be told cannot be in a consent-based step.

    Channel support is voluntary and consent-based, so such a case is routed to police-led
    management instead (REFERENCE.md 3.3). A consent state that means consent was sought
    contradicts the flag: asking would have told the person.
    """
    if not consent.subject_not_to_be_told:
        return []
    violations: list[Violation] = []
    if needs_consent:
        violations.append(
            Violation(
                rule="DC-TERR-1",
                path="$.purpose",
                message=(
                    "the subject must not be told (terrorism-planning concern), so they "
                    "cannot be in Channel support, which is voluntary and consent-based; "
                    "route the case to police-led management"
                ),
            )
        )
    if consent.state in CONSENT_STATES:
        violations.append(
            Violation(
                rule="DC-TERR-1",
                path="$.consent.state",
                message=(
                    f"consent state {consent.state} means the subject or their parent was "
                    "asked, which would tell them; for a subject who must not be told record "
                    "NOT_SOUGHT with reason TERRORISM_RISK"
                ),
            )
        )
    return violations


def _gateways_without_consent(
    fields: EnvelopeFields, consent: Consent, registry: Registry
) -> list[Violation]:
    if consent.state in CONSENT_STATES:
        return []
    cited = cited_gateways(fields.legal_basis, registry) if fields.legal_basis is not None else ()
    usable = [c.gateway for c in cited if c.well_placed and c.gateway is not None]
    by_slot: dict[str, list[Gateway]] = {}
    for c in cited:
        if c.well_placed and c.gateway is not None:
            by_slot.setdefault(c.slot, []).append(c.gateway)
    violations: list[Violation] = []
    # GW-00, layer by layer: a layer met only by gateways that need consent (CTSA 2015 s36
    # support, Art 6(1)(a), the confidant's consent) is not met without it. A layer with
    # nothing valid cited is left to GW-01..GW-05 and GW-12, which say what to add.
    for slot, gateways in by_slot.items():
        if all(g.consent_required for g in gateways):
            violations.append(
                Violation(
                    rule="GW-00",
                    path=f"$.legal_basis.{slot}",
                    message=(
                        f"{', '.join(g.id for g in gateways)} "
                        f"{'needs' if len(gateways) == 1 else 'need'} the person's consent, "
                        f"and the consent position is {consent.state}: without consent, cite "
                        "a gateway that does not need it, or obtain consent"
                    ),
                )
            )
    if consent.state in {"REFUSED", "WITHDRAWN"} and not any(g.overrides_refusal for g in usable):
        violations.append(
            Violation(
                rule="CS-05",
                path="$.consent.state",
                message=(
                    f"consent was {consent.state.lower()}: respect it, or cite a gateway that "
                    "allows sharing against the person's wishes (public interest in "
                    "preventing serious harm or crime, or a legal duty such as TA2000-s38B)"
                ),
            )
        )
    if consent.state == "LACKS_CAPACITY" and not any(g.best_interests for g in usable):
        violations.append(
            Violation(
                rule="CS-03",
                path="$.legal_basis",
                message=(
                    "the person lacks capacity: cite a gateway for sharing in their best "
                    "interests (e.g. MCA2005-s4 or CLDC-BESTINT)"
                ),
            )
        )
    return violations
