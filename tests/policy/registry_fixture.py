"""A small synthetic policy registry and message builders for the policy unit tests.

The registry is built here, not read from ``schemas/registry/``, so these tests pin the
rule logic and do not move when the real registry data is reviewed. Only the rule texts
come from ``schemas/registry/rules.yaml``: the tests check that every rule id emitted is
one the registry defines. Gateway ids, families and flags follow REFERENCE.md 2.2-2.9;
nodes and people are synthetic.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date
from functools import cache
from typing import Any

import yaml

from hub.model import EnvelopeFields, Violation
from hub.policy.facts import Party, PolicyFacts
from hub.policy.registry import DEFAULT_REGISTRY_DIR, Registry

TODAY = date(2026, 3, 1)

HEALTH = "health.bsw-icb"
POLICE = "police.ctp-sw"
LA = "la.wiltshire"
SCHOOL = "education.kingsdown"
CHARITY = "voluntary.youthreach"
PROBATION = "probation.sw"

NODES: dict[str, Party] = {
    HEALTH: Party(HEALTH, "health", "OFFICIAL-SENSITIVE"),
    POLICE: Party(POLICE, "police", "OFFICIAL-SENSITIVE"),
    LA: Party(LA, "local_authority", "OFFICIAL-SENSITIVE"),
    SCHOOL: Party(SCHOOL, "education", "OFFICIAL-SENSITIVE"),
    CHARITY: Party(CHARITY, "voluntary", "OFFICIAL-SENSITIVE"),
    PROBATION: Party(PROBATION, "probation", "OFFICIAL-SENSITIVE"),
}

PUBLIC_BODIES = ["police", "local_authority", "health", "education", "probation"]


def _gateway(gateway_id: str, family: str, **flags: Any) -> dict[str, Any]:
    return {
        "id": gateway_id,
        "title": gateway_id,
        "family": family,
        "citation": gateway_id,
        "summary": f"synthetic test entry for {gateway_id}",
        "who": flags.pop("who", ["ANY"]),
        "to_whom": flags.pop("to_whom", ["ANY"]),
        **flags,
    }


def _category(category_id: str, held_by: list[str], **flags: Any) -> dict[str, Any]:
    return {
        "id": category_id,
        "name": category_id.replace("_", " "),
        "held_by": held_by,
        "special_category": flags.pop("special_category", False),
        "criminal_offence": flags.pop("criminal_offence", False),
        "needs_period": flags.pop("needs_period", True),
        **flags,
    }


def _purpose(purpose_id: str, kinds: list[str], **flags: Any) -> dict[str, Any]:
    return {
        "id": purpose_id,
        "name": purpose_id.replace("_", " ").title(),
        "kinds": kinds,
        **flags,
    }


def _agency(
    agency_id: str, *, public_body: bool, competent_authority: bool, **flags: Any
) -> dict[str, Any]:
    return {
        "id": agency_id,
        "name": agency_id.replace("_", " ").title(),
        "public_body": public_body,
        "competent_authority": competent_authority,
        **flags,
    }


REQUEST_KINDS = ["information_request", "decision", "release", "note"]

SYNTHETIC_REGISTRY: dict[str, Any] = {
    "markings": {
        "tiers": [
            {
                "id": "OFFICIAL",
                "carried_by_hub": True,
                "minimum_vetting": "BPSS",
                "summary": "routine public sector business",
            }
        ],
        "handling_instructions": [],
        "descriptors": [],
        "national_caveat_examples": [],
        "legacy": [],
        "minimum_level_by_kind": {"information_request": "OFFICIAL-SENSITIVE"},
    },
    "agency_types": [
        _agency("police", public_body=True, competent_authority=True),
        _agency("probation", public_body=True, competent_authority=True),
        _agency("local_authority", public_body=True, competent_authority=False),
        _agency(
            "health", public_body=True, competent_authority=False, common_law_confidentiality=True
        ),
        _agency("education", public_body=True, competent_authority=False),
        _agency("voluntary", public_body=False, competent_authority=False),
    ],
    "gateways": [
        # L1 powers (REFERENCE.md 2.7, 2.8)
        _gateway(
            "CDA1998-s115",
            "power",
            to_whom=["police", "local_authority", "probation", "health"],
        ),
        _gateway(
            "CTSA2015-s36",
            "power",
            who=["local_authority", "police"],
            to_whom=["local_authority", "police", "health", "education"],
            statutory_function=True,
        ),
        _gateway(
            "CTSA2015-s38",
            "power",
            who=["health", "local_authority", "probation", "education"],
            to_whom=["police", "local_authority"],
        ),
        _gateway("CL-POLICING", "power", who=["police"]),
        _gateway("LGA1972-s111", "power", who=["local_authority"]),
        _gateway("IMPLIED-FUNCTION", "power", who=PUBLIC_BODIES, needs_named_function=True),
        _gateway("TA2000-s38B", "power", to_whom=["police"], overrides_refusal=True),
        _gateway("CareA2014-s45", "power", to_whom=["local_authority"], overrides_refusal=True),
        _gateway(
            "MCA2005-s4", "power", who=["health", "local_authority", "police"], best_interests=True
        ),
        # L2 common law confidentiality exceptions
        _gateway("CLDC-PUBINT", "confidentiality", overrides_refusal=True),
        _gateway(
            "CLDC-BESTINT",
            "confidentiality",
            who=["health", "local_authority"],
            best_interests=True,
        ),
        # L3 UK GDPR and DPA 2018
        _gateway("UKGDPR-A6-1e", "art6", who=PUBLIC_BODIES),
        _gateway("UKGDPR-A6-1a", "art6", consent_required=True),
        _gateway("UKGDPR-A6-1c", "art6", overrides_refusal=True),
        _gateway("UKGDPR-A6-1ea", "art6", who=["voluntary"]),
        _gateway("UKGDPR-A6-1f", "art6", who=["voluntary"]),
        _gateway("UKGDPR-A9-2g", "art9", needs_sch1=True),
        _gateway("UKGDPR-A9-2c", "art9"),
        _gateway("DPA2018-S1P2p18", "sch1"),
        _gateway(
            "DPA2018-S1P2p10",
            "sch1",
            appropriate_policy_document="needed_unless_to_competent_authority",
        ),
        _gateway("UKGDPR-A10-OA", "art10", who=PUBLIC_BODIES),
        _gateway("DPA2018-Pt3", "part3", who=["police", "probation"]),
        _gateway("DPA2018-S8p4", "part3", who=["police", "probation"]),
        _gateway("DPA2018-S2P1p2", "exemption"),
        _gateway("DPA2018-S2P1p5", "exemption"),
        # Not gateways at all
        _gateway("TA2000-s39", "constraint"),
        _gateway("CALD-P7", "guidance", who=["health", "local_authority"], to_whom=[]),
        # Statutory functions an implied power may rest on (seed 001, 003 Annex 1)
        _gateway(
            "CareA2014-s42",
            "guidance",
            who=["local_authority"],
            to_whom=[],
            statutory_function=True,
        ),
        _gateway(
            "CA2004-s11",
            "guidance",
            who=["local_authority", "health", "police"],
            to_whom=[],
            statutory_function=True,
        ),
    ],
    "data_categories": [
        _category(
            "mental_health_diagnoses", ["health"], special_category=True, max_period_days=730
        ),
        _category("gp_consultations", ["health"], special_category=True, max_period_days=365),
        _category(
            "safeguarding_concerns",
            ["health", "local_authority", "education", "police"],
            max_period_days=1095,
        ),
        _category(
            "contact_details",
            ["health", "local_authority", "education", "police", "voluntary"],
            needs_period=False,
        ),
        _category(
            "criminal_convictions",
            ["police", "probation"],
            criminal_offence=True,
            needs_period=False,
        ),
        _category("school_attendance", ["education"], max_period_days=365),
        _category(
            "prevent_vulnerability_assessment",
            ["police", "local_authority"],
            special_category=True,
            needs_period=False,
        ),
        _category("youth_work_contacts", ["voluntary"]),
    ],
    "purposes": [
        _purpose("PREVENT_REFERRAL", ["referral", "referral_outcome", "note"]),
        _purpose("PREVENT_TRIAGE", [*REQUEST_KINDS, "referral_outcome"]),
        _purpose(
            "CHANNEL_ASSESSMENT",
            [*REQUEST_KINDS, "case_open", "case_pack", "panel_outcome", "consent_record"],
        ),
        _purpose(
            "CHANNEL_SUPPORT",
            [*REQUEST_KINDS, "case_pack", "panel_outcome", "consent_record", "case_review"],
            consent_required=True,
        ),
        _purpose(
            "ADULT_SAFEGUARDING_S42",
            [*REQUEST_KINDS, "referral"],
            statutory_function="CareA2014-s42",
        ),
        _purpose("CRIME_PREVENTION", REQUEST_KINDS, law_enforcement=True),
        _purpose("TERRORISM_DISCLOSURE_S38B", ["release", "note"]),
    ],
    "agreements": [
        {
            "id": "DSA-SW-PREVENT-2025",
            "title": "South West Prevent information sharing agreement",
            "parties": [HEALTH, POLICE, LA],
            "purposes": ["PREVENT_TRIAGE", "CHANNEL_ASSESSMENT"],
            "categories": [
                "safeguarding_concerns",
                "mental_health_diagnoses",
                "contact_details",
                "prevent_vulnerability_assessment",
            ],
            "gateways": [
                "CDA1998-s115",
                "CTSA2015-s38",
                "UKGDPR-A6-1e",
                "UKGDPR-A9-2g",
                "DPA2018-S1P2p10",
                "DPA2018-S1P2p18",
            ],
            "valid_from": "2025-01-01",
            "valid_to": "2027-12-31",
        },
        {
            "id": "DSA-WILTS-CHANNEL-2019",
            "title": "Wiltshire Channel panel agreement (expired)",
            "parties": [LA, POLICE, HEALTH],
            "purposes": ["CHANNEL_ASSESSMENT"],
            "categories": ["safeguarding_concerns"],
            "gateways": ["CTSA2015-s38", "UKGDPR-A6-1e"],
            "valid_from": "2019-04-01",
            "valid_to": "2022-03-31",
        },
        {
            "id": "DSA-SCHOOLS-2026",
            "title": "Schools safeguarding agreement (not yet in force)",
            "parties": [SCHOOL, LA],
            "purposes": ["ADULT_SAFEGUARDING_S42"],
            "categories": ["school_attendance"],
            "gateways": ["UKGDPR-A6-1e"],
            "valid_from": "2026-09-01",
        },
    ],
    "settings": {"max_scope_categories": 4},
}


@cache
def synthetic_registry() -> Registry:
    """The synthetic registry, with the real rule texts from schemas/registry/rules.yaml."""
    rules_file = DEFAULT_REGISTRY_DIR / "rules.yaml"
    rules = yaml.safe_load(rules_file.read_text(encoding="utf-8"))["rules"]
    return Registry.model_validate({**SYNTHETIC_REGISTRY, "rules": rules})


def item(
    category: str,
    start: str | None = "2025-01-01",
    end: str | None = "2025-12-31",
    *,
    justified: bool = True,
    extension: bool = False,
) -> dict[str, Any]:
    """One scope item as it appears on the wire."""
    value: dict[str, Any] = {"category": category, "justification_present": justified}
    if start is not None:
        value["period_from"] = start
    if end is not None:
        value["period_to"] = end
    if extension:
        value["extension_reason_present"] = True
    return value


# Police ask health, for Prevent triage, about safeguarding concerns in 2025: CDA 1998
# s115 and public task; consent not sought because asking would prejudice the outcome.
LAWFUL_BASIS: dict[str, Any] = {"powers": ["CDA1998-s115"], "art6": "UKGDPR-A6-1e"}
NOT_SOUGHT: dict[str, Any] = {
    "state": "NOT_SOUGHT",
    "reason_code": "WOULD_PREJUDICE_OUTCOME",
    "subject_age": "ADULT",
}


def envelope(
    kind: str = "information_request",
    *,
    recipients: Iterable[str] = (HEALTH,),
    purpose: str = "PREVENT_TRIAGE",
    legal_basis: Mapping[str, Any] | None = LAWFUL_BASIS,
    consent: Mapping[str, Any] | None = NOT_SOUGHT,
    scope: Iterable[Mapping[str, Any]] = (item("safeguarding_concerns"),),
    decision: Mapping[str, Any] | None = None,
    in_reply_to: str | None = None,
) -> EnvelopeFields:
    """EnvelopeFields through the real strict JSON validation; defaults are lawful."""
    document: dict[str, Any] = {
        "kind": kind,
        "author": {"user_ref": "u-7f3a91", "role": "SAFEGUARDING_LEAD", "vetting": "SC"},
        "recipients": list(recipients),
        "marking": {"tier": "OFFICIAL", "sensitive": True, "descriptors": ["PERSONAL_DATA"]},
        "subject_ref": "subj-000123",
        "purpose": purpose,
        "scope": list(scope),
    }
    if legal_basis is not None:
        document["legal_basis"] = dict(legal_basis)
    if consent is not None:
        document["consent"] = dict(consent)
    if decision is not None:
        document["decision"] = dict(decision)
    if in_reply_to is not None:
        document["in_reply_to"] = in_reply_to
    return EnvelopeFields.model_validate_json(json.dumps(document))


def facts(
    fields: EnvelopeFields,
    sender: str = POLICE,
    *,
    answers: EnvelopeFields | None = None,
    answers_sender: str | None = None,
    today: date = TODAY,
) -> PolicyFacts:
    """The facts the hub would pass: the parties as its directory knows them."""
    return PolicyFacts(
        sender=NODES[sender],
        recipients={node: NODES[node] for node in fields.recipients if node in NODES},
        today=today,
        answers=answers,
        answers_sender=answers_sender,
    )


def rules_of(violations: list[Violation]) -> set[str]:
    """The rule ids violated, after checking what every result must satisfy.

    Every rule id is one the registry defines, every violation says where and what to do,
    and the list is in the documented order (by path, then rule).
    """
    known = synthetic_registry().rule_ids()
    for violation in violations:
        assert violation.rule in known, violation
        assert violation.path.startswith("$"), violation
        assert violation.message, violation
    assert violations == sorted(violations, key=lambda v: (v.path, v.rule, v.message))
    return {violation.rule for violation in violations}


def located(violations: list[Violation]) -> set[tuple[str, str]]:
    """(rule, path) pairs, for tests that pin where a violation points."""
    return {(violation.rule, violation.path) for violation in violations}
