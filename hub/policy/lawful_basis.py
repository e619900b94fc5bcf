"""The layered lawful-basis test for a disclosure (REFERENCE.md 2.1-2.9; rules GW-*).

Every disclosure must pass every applicable layer: a power to share (L1), an Art 6
basis (L3), an Art 9 condition for special category data (with a DPA 2018 Schedule 1
condition for Art 9(2)(g)), an Art 10 condition for criminal offence data; and every
gateway cited must be one the discloser may rely on, towards the receiver.

Exceptions to the common law duty of confidentiality (L2) are cited in
``legal_basis.confidentiality``; they count towards the consent rules (an exception that
overrides a refusal, or covers a person lacking capacity) but are not a power.

Who discloses depends on the kind of message: an ``information_request`` asks its
recipients to disclose to the sender, so the recipients rely on the gateways and the
sender receives; every other kind discloses from the sender to the recipients.

Pure: facts in, every violation out (STYLE.md rule 2).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hub.model import EnvelopeFields, LegalBasis, ScopeItem, Violation
from hub.policy.facts import Party, PolicyFacts
from hub.policy.registry import Gateway, GatewayFamily, Registry

__all__ = [
    "ANY_AGENCY",
    "CONSENT_STATES",
    "LEGITIMATE_INTEREST_BASES",
    "SLOT_FAMILIES",
    "CitedGateway",
    "check_lawful_basis",
    "cited_gateways",
    "disclosers_and_receivers",
    "scope_categories",
]

ANY_AGENCY = "ANY"

# Which gateway families each legal_basis slot accepts (GW-07). Three slots take more
# than one family, because the envelope has no separate place for them:
# - art6 and art9: DPA 2018 Part 3 and its Schedule 8 conditions, which a competent
#   authority relies on *instead of* Art 6 / Art 9 when processing for law enforcement
#   purposes (REFERENCE.md 2.1 L3, 2.6);
# - art10: an Art 10 condition or a DPA 2018 Schedule 1 condition, since criminal offence
#   data may be processed "where a Sch 1 condition is met" (REFERENCE.md 2.4).
SLOT_FAMILIES: dict[str, frozenset[GatewayFamily]] = {
    "powers": frozenset({"power"}),
    "art6": frozenset({"art6", "part3"}),
    "art9": frozenset({"art9", "part3"}),
    "sch1": frozenset({"sch1"}),
    "art10": frozenset({"art10", "sch1"}),
    "exemptions": frozenset({"exemption"}),
    "confidentiality": frozenset({"confidentiality"}),
}

_SLOT_WORDS = {
    "powers": "a power to share",
    "art6": "a UK GDPR Article 6 basis",
    "art9": "an Article 9(2) condition",
    "sch1": "a DPA 2018 Schedule 1 condition",
    "art10": "an Article 10 condition",
    "exemptions": "a DPA 2018 Schedule 2 exemption",
    "confidentiality": "an exception to the common law duty of confidentiality",
}

_FAMILY_SLOT = {
    "power": "legal_basis.powers",
    "confidentiality": "legal_basis.confidentiality",
    "art6": "legal_basis.art6",
    "part3": "legal_basis.art6 or legal_basis.art9",
    "art9": "legal_basis.art9",
    "sch1": "legal_basis.sch1 (or legal_basis.art10 for criminal offence data)",
    "art10": "legal_basis.art10",
    "exemption": "legal_basis.exemptions",
}

# UK GDPR Art 6(1)(ea) recognised legitimate interests (Data (Use and Access) Act 2025)
# and Art 6(1)(f) legitimate interests: not for public authorities performing their tasks
# (REFERENCE.md 2.2, ICO guidance [SRC:S12]).
RECOGNISED_LEGITIMATE_INTEREST = "UKGDPR-A6-1ea"
LEGITIMATE_INTEREST_BASES = frozenset({RECOGNISED_LEGITIMATE_INTEREST, "UKGDPR-A6-1f"})

# Consent states that are consent to share (the common law duty is then met).
CONSENT_STATES = frozenset({"OBTAINED", "CHILD_PARENT_CONSENT", "CHILD_OWN_CONSENT"})

# Prevent referrals and Channel case packs are special category by default: ideology,
# religion, politics and health are inherent in them (REFERENCE.md 3.4 SC-04).
_SPECIAL_CATEGORY_BY_DEFAULT = frozenset({"referral", "case_pack"})


@dataclass(frozen=True, slots=True)
class CitedGateway:
    """One gateway id as cited in the envelope, where, and what the registry says of it."""

    slot: str  # a key of SLOT_FAMILIES
    gateway_id: str
    path: str
    gateway: Gateway | None  # None: the registry does not define the id

    @property
    def well_placed(self) -> bool:
        """Known to the registry and cited in a slot that accepts its family."""
        return self.gateway is not None and self.gateway.family in SLOT_FAMILIES[self.slot]


def cited_gateways(legal_basis: LegalBasis, registry: Registry) -> tuple[CitedGateway, ...]:
    """Every gateway id in the legal basis, in envelope order, with its registry entry."""
    cited: list[CitedGateway] = []
    for index, gateway_id in enumerate(legal_basis.powers):
        cited.append(
            CitedGateway(
                "powers",
                gateway_id,
                f"$.legal_basis.powers[{index}]",
                registry.gateway(gateway_id),
            )
        )
    for slot, value in (
        ("art6", legal_basis.art6),
        ("art9", legal_basis.art9),
        ("sch1", legal_basis.sch1),
        ("art10", legal_basis.art10),
    ):
        if value is not None:
            cited.append(
                CitedGateway(slot, value, f"$.legal_basis.{slot}", registry.gateway(value))
            )
    for slot, values in (
        ("exemptions", legal_basis.exemptions),
        ("confidentiality", legal_basis.confidentiality),
    ):
        for index, gateway_id in enumerate(values):
            cited.append(
                CitedGateway(
                    slot,
                    gateway_id,
                    f"$.legal_basis.{slot}[{index}]",
                    registry.gateway(gateway_id),
                )
            )
    return tuple(cited)


def disclosers_and_receivers(
    fields: EnvelopeFields, facts: PolicyFacts
) -> tuple[tuple[Party, ...], tuple[Party, ...]]:
    """Who relies on the gateways, and who the information goes to.

    An information request asks its recipients to disclose to the sender; every other
    kind discloses from the sender to its recipients. Recipients the hub does not know
    are left out here (routing refuses them, ROUTE-01).
    """
    recipients = tuple(
        facts.recipients[node] for node in fields.recipients if node in facts.recipients
    )
    if fields.kind == "information_request":
        return recipients, (facts.sender,)
    return (facts.sender,), recipients


def scope_categories(fields: EnvelopeFields) -> tuple[ScopeItem, ...]:
    """The scope items the message discloses or asks for, approved scope included."""
    approved = fields.decision.approved_scope if fields.decision is not None else ()
    return (*fields.scope, *approved)


def check_lawful_basis(
    fields: EnvelopeFields, facts: PolicyFacts, registry: Registry
) -> list[Violation]:
    """Apply the layered test (GW-01..GW-16, GW-EX); consent-related GW-00 is in consent.

    Kinds in ``settings.legal_basis_required_for`` must cite a complete basis. Other
    kinds need not cite one, but what they do cite is still checked: the ids exist, sit
    in the right place, and the discloser may rely on them towards the receiver.
    """
    required = fields.kind in registry.settings.legal_basis_required_for
    legal_basis = fields.legal_basis
    if legal_basis is None:
        if not required:
            return []
        return [
            Violation(
                rule="GW-12",
                path="$.legal_basis",
                message=(
                    f"a {fields.kind} discloses or asks for personal data: add legal_basis "
                    "with the power to share, the Article 6 basis and, where the data needs "
                    "them, the Article 9/Schedule 1 and Article 10 conditions"
                ),
            )
        ]

    cited = cited_gateways(legal_basis, registry)
    disclosers, receivers = disclosers_and_receivers(fields, facts)
    violations: list[Violation] = []
    violations.extend(_unknown_or_misplaced(cited))
    violations.extend(_who_and_to_whom(cited, disclosers, receivers, registry))
    violations.extend(_competent_authority_for_law_enforcement(fields, receivers, registry))
    violations.extend(_legitimate_interests(legal_basis, disclosers, registry))
    violations.extend(_named_function(fields, legal_basis, cited, disclosers, registry))
    if required:
        violations.extend(_layers_complete(fields, legal_basis, cited, disclosers, registry))
        violations.extend(_common_law_confidentiality(fields, cited, disclosers, registry))
        violations.extend(_part3_regime(fields, cited, disclosers, registry))
        if fields.kind != "information_request":
            violations.extend(_appropriate_policy_document(legal_basis, cited, receivers, registry))
    return sorted(violations, key=lambda v: (v.path, v.rule, v.message))


def _unknown_or_misplaced(cited: Iterable[CitedGateway]) -> list[Violation]:
    violations: list[Violation] = []
    for item in cited:
        if item.gateway is None:
            violations.append(
                Violation(
                    rule="GW-06",
                    path=item.path,
                    message=(
                        f"{item.gateway_id} is not a gateway in the registry; cite "
                        f"{_SLOT_WORDS[item.slot]} by its registry id"
                    ),
                )
            )
        elif not item.well_placed:
            violations.append(
                Violation(
                    rule="GW-07",
                    path=item.path,
                    message=(
                        f"{item.gateway_id} is {_family_words(item.gateway.family)}, not "
                        f"{_SLOT_WORDS[item.slot]}; move it to {_FAMILY_SLOT[item.gateway.family]}"
                        if item.gateway.family in _FAMILY_SLOT
                        else f"{item.gateway_id} is {_family_words(item.gateway.family)} and "
                        "not a lawful gateway; remove it from legal_basis"
                    ),
                )
            )
    return violations


def _family_words(family: str) -> str:
    return {
        "power": "a power to share",
        "art6": "an Article 6 basis",
        "art9": "an Article 9(2) condition",
        "sch1": "a Schedule 1 condition",
        "art10": "an Article 10 condition",
        "part3": "a DPA 2018 Part 3 basis or Schedule 8 condition",
        "exemption": "a Schedule 2 exemption",
        "confidentiality": "a common law confidentiality exception",
        "constraint": "a constraint on disclosure",
        "guidance": "guidance",
    }.get(family, family)


def _admits(allowed: Sequence[str], agency_type: str) -> bool:
    return ANY_AGENCY in allowed or agency_type in allowed


def _parties(parties: Iterable[Party]) -> str:
    return ", ".join(f"{p.node_id} ({p.agency_type})" for p in parties)


def _who_and_to_whom(
    cited: Iterable[CitedGateway],
    disclosers: Sequence[Party],
    receivers: Sequence[Party],
    registry: Registry,
) -> list[Violation]:
    """GW-08 and GW-09, judged per party and per layer, not per gateway.

    Each discloser needs, in every layer (slot) cited, a gateway it may rely on; each
    receiver needs, in every layer cited, a gateway that permits disclosure to it. A case
    pack to three panel members may cite one power that reaches two of them and another
    that reaches the third: every member is covered, so nothing is refused.
    """
    by_slot: dict[str, list[CitedGateway]] = {}
    for item in cited:
        if item.gateway is not None and item.well_placed:
            by_slot.setdefault(item.slot, []).append(item)
    violations: list[Violation] = []
    for slot, items in by_slot.items():
        gateways = [item.gateway for item in items if item.gateway is not None]
        path = items[0].path if len(items) == 1 else f"$.legal_basis.{slot}"
        names = ", ".join(g.id for g in gateways)
        barred = [
            p
            for p in disclosers
            if not any(_admits(g.who, p.agency_type) for g in gateways)
            # GW-11 already says why a public body cannot rely on (ea) or (f).
            and not (
                all(g.id in LEGITIMATE_INTEREST_BASES for g in gateways) and _is_public(p, registry)
            )
        ]
        if barred:
            whose = "; ".join(f"{g.id} is for {', '.join(g.who)}" for g in gateways)
            violations.append(
                Violation(
                    rule="GW-08",
                    path=path,
                    message=(
                        f"{_parties(barred)} cannot rely on {names} as discloser ({whose}); "
                        "cite a gateway the discloser may rely on, or address the message "
                        "to a discloser who may"
                    ),
                )
            )
        unreached = [
            p for p in receivers if not any(_admits(g.to_whom, p.agency_type) for g in gateways)
        ]
        if unreached:
            reach = "; ".join(f"{g.id} to {', '.join(g.to_whom) or 'no one'}" for g in gateways)
            violations.append(
                Violation(
                    rule="GW-09",
                    path=path,
                    message=(
                        f"no gateway cited in legal_basis.{slot} permits disclosure to "
                        f"{_parties(unreached)} ({reach}); cite one that permits disclosure "
                        "to each recipient"
                    ),
                )
            )
    return violations


def _competent_authority_for_law_enforcement(
    fields: EnvelopeFields, receivers: Sequence[Party], registry: Registry
) -> list[Violation]:
    """GW-10: the competent-authority test follows the purpose, not the citation.

    Seed 004 Appendix 4: "if the sharing is to any organisation other than the Police, if
    the disclosure is for the purposes of the prevention and detection of crime, that
    receiving organisation must be a competent authority". That is DPA 2018 Part 3
    processing, so it binds purposes the registry marks ``law_enforcement``. A Prevent
    referral or request, or Channel, is a safeguarding purpose: UK GDPR processing that a
    local authority may receive, whatever Schedule 1 condition or exemption is cited
    (Appendix 4a sends a referral citing s115 and Sch 2 para 2 to the local authority).
    """
    purpose = registry.purpose(fields.purpose)
    if purpose is None or not purpose.law_enforcement:
        return []
    not_competent = [p for p in receivers if not _is_competent(p, registry)]
    if not not_competent:
        return []
    return [
        Violation(
            rule="GW-10",
            path="$.recipients",
            message=(
                f"{purpose.id} is sharing for the prevention or detection of crime (DPA 2018 "
                f"Part 3), which goes to no one but the police or another competent "
                f"authority (DPA 2018 Sch 7); {_parties(not_competent)} is not one: share "
                "with them for a safeguarding purpose instead, or only with the police"
            ),
        )
    ]


def _part3_regime(
    fields: EnvelopeFields,
    cited: Sequence[CitedGateway],
    disclosers: Sequence[Party],
    registry: Registry,
) -> list[Violation]:
    """GW-16: a law-enforcement purpose brings DPA 2018 Part 3 and its Schedule 8 conditions.

    Seed 004 Appendix 4: "Part 3 of the DPA 2018 allows for the processing of personal
    data by a competent authority for the purposes of the detection and/or prevention of
    crime ... Part 3 (Schedule 8) allows for the processing of sensitive data"; REFERENCE
    2.6. So a competent authority sharing for a law-enforcement purpose cites the Part 3
    basis, and the two regimes are not mixed: a Schedule 8 condition stands in for
    Article 9 only under a Part 3 basis, and a Part 3 basis takes a Schedule 8 condition,
    not an Article 9 one. A discloser that is not a competent authority (health, the
    council) shares under UK GDPR even for a law-enforcement purpose (REFERENCE 2.6).
    """

    def valid(slot: str) -> list[Gateway]:
        return [c.gateway for c in cited if c.slot == slot and c.well_placed and c.gateway]

    art6, art9 = valid("art6"), valid("art9")
    part3_basis = any(g.family == "part3" for g in art6)
    violations: list[Violation] = []
    if art6 and art9 and part3_basis != (art9[0].family == "part3"):
        violations.append(
            Violation(
                rule="GW-16",
                path="$.legal_basis.art9",
                message=(
                    f"{art9[0].id} does not go with {art6[0].id}: under a DPA 2018 Part 3 basis "
                    "sensitive processing needs a Schedule 8 condition (e.g. DPA2018-S8p4); "
                    "under UK GDPR an Article 9(2) condition (e.g. UKGDPR-A9-2g with a "
                    "Schedule 1 condition)"
                ),
            )
        )
    purpose = registry.purpose(fields.purpose)
    law_enforcement = purpose is not None and purpose.law_enforcement
    if (
        law_enforcement
        and art6
        and not part3_basis
        and disclosers
        and all(_is_competent(p, registry) for p in disclosers)
    ):
        violations.append(
            Violation(
                rule="GW-16",
                path="$.legal_basis.art6",
                message=(
                    f"{_parties(disclosers)} is a competent authority sharing for "
                    f"{fields.purpose}, a law enforcement purpose: that is DPA 2018 Part 3 "
                    "processing, so cite DPA2018-Pt3 (and for special category data a "
                    "Schedule 8 condition) rather than a UK GDPR basis"
                ),
            )
        )
    return violations


def _common_law_confidentiality(
    fields: EnvelopeFields,
    cited: Sequence[CitedGateway],
    disclosers: Sequence[Party],
    registry: Registry,
) -> list[Violation]:
    """GW-13: a discloser that owes the common law duty names its exception without consent.

    Seed 004 Appendix 4a section 5: "The CLDC is an additional legal requirement for
    health and must be satisfied in addition to the DPA 2018/HRA1998." With consent the
    duty is met; without it the disclosure names its exception (public interest, best
    interests of a person lacking capacity, required or permitted by law) in
    ``legal_basis.confidentiality``. Requests are left out: the discloser is the one
    asked, and its release names the exception.
    """
    consent = fields.consent
    if fields.kind == "information_request" or consent is None:
        return []
    if consent.state in CONSENT_STATES:
        return []
    bound = [
        p
        for p in disclosers
        if (agency := registry.agency(p.agency_type)) is not None
        and agency.common_law_confidentiality
    ]
    if not bound:
        return []
    exceptions = [
        c.gateway
        for c in cited
        if c.slot == "confidentiality"
        and c.well_placed
        and c.gateway is not None
        and not c.gateway.consent_required
    ]
    unexcepted = [p for p in bound if not any(_admits(g.who, p.agency_type) for g in exceptions)]
    if not unexcepted:
        return []
    return [
        Violation(
            rule="GW-13",
            path="$.legal_basis.confidentiality",
            message=(
                f"{_parties(unexcepted)} owes the common law duty of confidentiality and the "
                f"consent position is {consent.state}: name the exception relied on in "
                "legal_basis.confidentiality (CLDC-PUBINT public interest, CLDC-BESTINT best "
                "interests of a person lacking capacity, CLDC-LAW required or permitted by law)"
            ),
        )
    ]


def _appropriate_policy_document(
    legal_basis: LegalBasis,
    cited: Sequence[CitedGateway],
    receivers: Sequence[Party],
    registry: Registry,
) -> list[Violation]:
    """GW-14: a Schedule 1 condition that needs an appropriate policy document names it.

    DPA 2018 Sch 1 para 5 (REFERENCE 2.3): relying on a Part 2 condition needs an
    appropriate policy document; for para 10 not where the disclosure is to a competent
    authority. Which conditions need one is registry data (``appropriate_policy_document``).
    """
    if legal_basis.appropriate_policy_document is not None:
        return []
    violations: list[Violation] = []
    for item in cited:
        gateway = item.gateway
        if gateway is None or not item.well_placed:
            continue
        need = gateway.appropriate_policy_document
        if need == "not_needed":
            continue
        to_non_competent = [p for p in receivers if not _is_competent(p, registry)]
        if need == "needed_unless_to_competent_authority" and not to_non_competent:
            continue
        why = (
            f" (the disclosure is to {_parties(to_non_competent)}, not a competent authority)"
            if need == "needed_unless_to_competent_authority"
            else ""
        )
        violations.append(
            Violation(
                rule="GW-14",
                path="$.legal_basis.appropriate_policy_document",
                message=(
                    f"relying on {gateway.id} needs the discloser's appropriate policy "
                    f"document (DPA 2018 Sch 1 para 5){why}: give its reference in "
                    "legal_basis.appropriate_policy_document"
                ),
            )
        )
    return violations


def _named_function(
    fields: EnvelopeFields,
    legal_basis: LegalBasis,
    cited: Sequence[CitedGateway],
    disclosers: Sequence[Party],
    registry: Registry,
) -> list[Violation]:
    """GW-15: an implied power to share names the statutory function it rests on.

    Seeds 001 and 003 (Annex 1): "it will be possible to imply a power to share information
    because it is necessary for the fulfilment of an organisation's statutory functions."
    The function named must be one the registry marks ``statutory_function``, and be the
    discloser's own (its agency type may rely on that entry) or the function the
    message's purpose serves.
    """
    implied = [
        c.gateway
        for c in cited
        if c.gateway is not None and c.well_placed and c.gateway.needs_named_function
    ]
    if not implied:
        return []
    named = legal_basis.statutory_function
    names = ", ".join(g.id for g in implied)
    if named is None:
        return [
            Violation(
                rule="GW-15",
                path="$.legal_basis.statutory_function",
                message=(
                    f"{names} is an implied power: name the statutory function that depends "
                    "on the sharing in legal_basis.statutory_function (e.g. CareA2014-s42, "
                    "CA1989-s47, CA2004-s11, CTSA2015-s26)"
                ),
            )
        ]
    function = registry.gateway(named)
    if function is None or not function.statutory_function:
        return [
            Violation(
                rule="GW-15",
                path="$.legal_basis.statutory_function",
                message=(
                    f"{named} is not a statutory function in the registry: name one marked "
                    "statutory_function in gateways.yaml"
                ),
            )
        ]
    purpose = registry.purpose(fields.purpose)
    serves = purpose is not None and purpose.statutory_function == named
    foreign = [p for p in disclosers if not serves and not _admits(function.who, p.agency_type)]
    if not foreign:
        return []
    return [
        Violation(
            rule="GW-15",
            path="$.legal_basis.statutory_function",
            message=(
                f"{named} is a function of {', '.join(function.who)}, not of "
                f"{_parties(foreign)}, and the purpose {fields.purpose} does not serve it: "
                "name the discloser's own function, or the one the purpose serves"
            ),
        )
    ]


def _is_public(party: Party, registry: Registry) -> bool:
    agency = registry.agency(party.agency_type)
    return agency is not None and agency.public_body


def _is_competent(party: Party, registry: Registry) -> bool:
    agency = registry.agency(party.agency_type)
    return agency is not None and agency.competent_authority


def _legitimate_interests(
    legal_basis: LegalBasis, disclosers: Sequence[Party], registry: Registry
) -> list[Violation]:
    art6 = legal_basis.art6
    if art6 not in LEGITIMATE_INTEREST_BASES:
        return []
    violations: list[Violation] = []
    public = [p for p in disclosers if _is_public(p, registry)]
    if public:
        violations.append(
            Violation(
                rule="GW-11",
                path="$.legal_basis.art6",
                message=(
                    f"{_parties(public)} is a public body and cannot rely on {art6} when "
                    "performing its tasks; cite the public task basis (UKGDPR-A6-1e) or "
                    "legal obligation instead"
                ),
            )
        )
    if art6 == RECOGNISED_LEGITIMATE_INTEREST and not legal_basis.public_task_statement:
        violations.append(
            Violation(
                rule="GW-11",
                path="$.legal_basis.public_task_statement",
                message=(
                    f"{art6} relies on the requester's statement that it needs the "
                    "information for its public tasks or official functions laid down in law; "
                    "set legal_basis.public_task_statement (and state it in the request)"
                ),
            )
        )
    return violations


def _layers_complete(
    fields: EnvelopeFields,
    legal_basis: LegalBasis,
    cited: Sequence[CitedGateway],
    disclosers: Sequence[Party],
    registry: Registry,
) -> list[Violation]:
    """L1 and L3 of the layered test: is every needed slot filled with a valid gateway?"""
    violations: list[Violation] = []

    def valid(slot: str) -> list[Gateway]:
        return [c.gateway for c in cited if c.slot == slot and c.well_placed and c.gateway]

    powers = valid("powers")
    # GW-01 asks for a power *the discloser can rely on*: every discloser needs one. That
    # a particular power is not for them is said again, per power, by GW-08.
    powerless = [p for p in disclosers if not any(_admits(g.who, p.agency_type) for g in powers)]
    has_art6 = bool(valid("art6"))
    if not powers:
        violations.append(
            Violation(
                rule="GW-01",
                path="$.legal_basis.powers",
                message=(
                    "cite a power to share (L1) that the discloser may rely on, e.g. "
                    "CDA1998-s115 or CTSA2015-s38; an exemption, a confidentiality "
                    "exception or a duty to have regard is not a power"
                ),
            )
        )
    elif powerless:
        violations.append(
            Violation(
                rule="GW-01",
                path="$.legal_basis.powers",
                message=(
                    f"{_parties(powerless)} may not rely on any power cited: cite a power to "
                    "share (L1) that they may rely on"
                ),
            )
        )
    if not has_art6:
        violations.append(
            Violation(
                rule="GW-02",
                path="$.legal_basis.art6",
                message=(
                    "cite a UK GDPR Article 6 lawful basis in legal_basis.art6, normally "
                    "UKGDPR-A6-1e (public task); a competent authority processing for law "
                    "enforcement may cite DPA2018-Pt3 instead"
                ),
            )
        )
    if legal_basis.exemptions and not (powers and has_art6):
        violations.append(
            Violation(
                rule="GW-EX",
                path="$.legal_basis.exemptions",
                message=(
                    "a DPA 2018 Schedule 2 exemption only lifts specific obligations and is "
                    "never a lawful basis on its own; cite a power and an Article 6 basis too"
                ),
            )
        )

    items = scope_categories(fields)
    categories = [registry.category(item.category) for item in items]
    special = [c.id for c in categories if c is not None and c.special_category]
    criminal = [c.id for c in categories if c is not None and c.criminal_offence]
    art9 = valid("art9")
    if (special or fields.kind in _SPECIAL_CATEGORY_BY_DEFAULT) and not art9:
        why = (
            f"the scope includes special category data ({', '.join(dict.fromkeys(special))})"
            if special
            else f"a {fields.kind} is treated as special category data by default"
        )
        violations.append(
            Violation(
                rule="GW-03",
                path="$.legal_basis.art9",
                message=(
                    f"{why}: cite an Article 9(2) condition in legal_basis.art9, e.g. "
                    "UKGDPR-A9-2g with a Schedule 1 Part 2 condition"
                ),
            )
        )
    needs_sch1 = [g.id for g in art9 if g.needs_sch1]
    if needs_sch1 and not valid("sch1"):
        violations.append(
            Violation(
                rule="GW-04",
                path="$.legal_basis.sch1",
                message=(
                    f"{needs_sch1[0]} (substantial public interest) must be paired with a DPA "
                    "2018 Schedule 1 Part 2 condition: cite one in legal_basis.sch1, e.g. "
                    "DPA2018-S1P2p18 (safeguarding) or DPA2018-S1P2p10 (unlawful acts)"
                ),
            )
        )
    if criminal and not valid("art10"):
        violations.append(
            Violation(
                rule="GW-05",
                path="$.legal_basis.art10",
                message=(
                    f"the scope includes criminal offence data "
                    f"({', '.join(dict.fromkeys(criminal))}): cite an Article 10 condition "
                    "in legal_basis.art10"
                ),
            )
        )
    return violations
