"""The layered lawful-basis test (REFERENCE.md 2.1-2.9): GW-01..GW-15 and GW-EX."""

from __future__ import annotations

from typing import Any

import pytest

from hub.model import EnvelopeFields
from hub.policy.facts import PolicyFacts
from hub.policy.lawful_basis import check_lawful_basis, cited_gateways, disclosers_and_receivers
from tests.policy.registry_fixture import (
    CHARITY,
    HEALTH,
    LA,
    LAWFUL_BASIS,
    NODES,
    POLICE,
    PROBATION,
    SCHOOL,
    envelope,
    facts,
    item,
    located,
    rules_of,
    synthetic_registry,
)

REGISTRY = synthetic_registry()

SPECIAL: dict[str, Any] = {
    "powers": ["CDA1998-s115"],
    "art6": "UKGDPR-A6-1e",
    "art9": "UKGDPR-A9-2g",
    "sch1": "DPA2018-S1P2p10",
}


# Health disclosing without consent names its exception to the common law duty of
# confidentiality (GW-13; seed 004 Appendix 4a section 5).
HEALTH_BASIS: dict[str, Any] = {**LAWFUL_BASIS, "confidentiality": ["CLDC-PUBINT"]}


def check(fields: EnvelopeFields, sender: str = POLICE) -> set[str]:
    return rules_of(check_lawful_basis(fields, facts(fields, sender), REGISTRY))


def where(fields: EnvelopeFields, sender: str = POLICE) -> set[tuple[str, str]]:
    return located(check_lawful_basis(fields, facts(fields, sender), REGISTRY))


CASES: list[tuple[str, EnvelopeFields, str, set[str]]] = [
    (
        "police ask health about safeguarding concerns under CDA s115 and public task: lawful",
        envelope(),
        POLICE,
        set(),
    ),
    (
        "police ask health for mental health diagnoses under s115, public task, Art 9(2)(g) "
        "and Sch 1 para 10: lawful",
        envelope(legal_basis=SPECIAL, scope=[item("mental_health_diagnoses")]),
        POLICE,
        set(),
    ),
    (
        "health refers to police and the local authority with s115, public task, Art 9(2)(g) "
        "and Sch 1 para 18: lawful",
        envelope(
            "referral",
            recipients=[LA, POLICE],
            purpose="PREVENT_REFERRAL",
            legal_basis={**SPECIAL, "sch1": "DPA2018-S1P2p18", "confidentiality": ["CLDC-PUBINT"]},
            scope=[],
        ),
        HEALTH,
        set(),
    ),
    (
        "police ask health without citing any legal basis → GW-12",
        envelope(legal_basis=None),
        POLICE,
        {"GW-12"},
    ),
    (
        "police send the local authority a note without a legal basis: none needed",
        envelope("note", recipients=[LA], legal_basis=None, scope=[]),
        POLICE,
        set(),
    ),
    (
        "police ask health for mental health diagnoses without consent citing only the Sch 2 "
        "crime exemption → GW-01, GW-02, GW-EX, GW-03",
        envelope(
            legal_basis={"exemptions": ["DPA2018-S2P1p2"]},
            scope=[item("mental_health_diagnoses")],
        ),
        POLICE,
        {"GW-01", "GW-02", "GW-EX", "GW-03"},
    ),
    (
        "health refers a person to police with s115 and public task but no Art 9 condition: "
        "a Prevent referral is special category by default → GW-03",
        envelope(
            "referral",
            recipients=[POLICE],
            purpose="PREVENT_REFERRAL",
            legal_basis=HEALTH_BASIS,
            scope=[],
        ),
        HEALTH,
        {"GW-03"},
    ),
    (
        "police ask health for GP consultations citing Art 9(2)(g) without a Schedule 1 "
        "condition → GW-04",
        envelope(
            legal_basis={**SPECIAL, "sch1": None},
            scope=[item("gp_consultations")],
        ),
        POLICE,
        {"GW-04"},
    ),
    (
        "police ask health for GP consultations citing Art 9(2)(c) (vital interests), which "
        "needs no Schedule 1 condition: lawful",
        envelope(
            legal_basis={**SPECIAL, "art9": "UKGDPR-A9-2c", "sch1": None},
            scope=[item("gp_consultations")],
        ),
        POLICE,
        set(),
    ),
    (
        "the local authority asks police for criminal convictions without an Art 10 "
        "condition → GW-05",
        envelope(recipients=[POLICE], scope=[item("criminal_convictions", None, None)]),
        LA,
        {"GW-05"},
    ),
    (
        "the local authority asks police for criminal convictions with the Art 10 official "
        "authority condition: lawful",
        envelope(
            recipients=[POLICE],
            legal_basis={**LAWFUL_BASIS, "art10": "UKGDPR-A10-OA"},
            scope=[item("criminal_convictions", None, None)],
        ),
        LA,
        set(),
    ),
    (
        "the local authority asks police for criminal convictions with a Schedule 1 "
        "condition in the Art 10 place: lawful",
        envelope(
            recipients=[POLICE],
            legal_basis={**LAWFUL_BASIS, "art10": "DPA2018-S1P2p10"},
            scope=[item("criminal_convictions", None, None)],
        ),
        LA,
        set(),
    ),
    (
        "police cite s115 and a power the registry does not know → GW-06",
        envelope(legal_basis={**LAWFUL_BASIS, "powers": ["CDA1998-s115", "CDA1998-s999"]}),
        POLICE,
        {"GW-06"},
    ),
    (
        "police cite an Art 6 basis the registry does not know → GW-06, GW-02",
        envelope(legal_basis={**LAWFUL_BASIS, "art6": "UKGDPR-A6-1z"}),
        POLICE,
        {"GW-06", "GW-02"},
    ),
    (
        "police give the Sch 2 crime exemption as their power, with public task → GW-07, GW-01",
        envelope(legal_basis={"powers": ["DPA2018-S2P1p2"], "art6": "UKGDPR-A6-1e"}),
        POLICE,
        {"GW-07", "GW-01"},
    ),
    (
        "health cites Caldicott principle 7 (guidance) as a power beside s115 → GW-07",
        envelope(
            "release",
            recipients=[POLICE],
            legal_basis={**HEALTH_BASIS, "powers": ["CDA1998-s115", "CALD-P7"]},
        ),
        HEALTH,
        {"GW-07"},
    ),
    (
        "police put a Schedule 1 condition in the Art 6 place → GW-07, GW-02",
        envelope(legal_basis={**LAWFUL_BASIS, "art6": "DPA2018-S1P2p18"}),
        POLICE,
        {"GW-07", "GW-02"},
    ),
    (
        "police ask health citing the common law policing purpose, a power health cannot "
        "rely on, and no other power → GW-08, GW-01",
        envelope(legal_basis={**LAWFUL_BASIS, "powers": ["CL-POLICING"]}),
        POLICE,
        {"GW-08", "GW-01"},
    ),
    (
        "the local authority asks police citing the common law policing purpose, which the "
        "police (the disclosers) may rely on: lawful",
        envelope(
            recipients=[POLICE],
            legal_basis={**LAWFUL_BASIS, "powers": ["CL-POLICING"]},
        ),
        LA,
        set(),
    ),
    (
        "a school asks health under s115, which does not permit disclosure to a school → GW-09",
        envelope(),
        SCHOOL,
        {"GW-09"},
    ),
    (
        "health releases to a school under CTSA s38, which permits disclosure only to police "
        "and local authorities → GW-09",
        envelope(
            "release",
            recipients=[SCHOOL],
            legal_basis={**HEALTH_BASIS, "powers": ["CTSA2015-s38"]},
        ),
        HEALTH,
        {"GW-09"},
    ),
    # Was GW-10 on the exemption. Seed 004 Appendix 4 binds the competent-authority test
    # to disclosure "for the purposes of the prevention and detection of crime" (Part 3);
    # Appendix 4a cites the exemption in a Prevent referral to the local authority. So a
    # safeguarding purpose may reach the council; a law-enforcement purpose may not.
    (
        "the local authority asks health for Prevent triage citing s115 and the Sch 2 crime "
        "exemption: a safeguarding purpose, lawful",
        envelope(legal_basis={**LAWFUL_BASIS, "exemptions": ["DPA2018-S2P1p2"]}),
        LA,
        set(),
    ),
    (
        "the local authority asks health for the prevention or detection of crime, a law "
        "enforcement purpose, but is not a competent authority → GW-10",
        envelope(purpose="CRIME_PREVENTION"),
        LA,
        {"GW-10"},
    ),
    (
        "police ask health for the prevention or detection of crime: police are a competent "
        "authority, lawful",
        envelope(purpose="CRIME_PREVENTION"),
        POLICE,
        set(),
    ),
    (
        "police ask health relying on the Sch 2 crime exemption besides s115 and public "
        "task: police are a competent authority, lawful",
        envelope(legal_basis={**LAWFUL_BASIS, "exemptions": ["DPA2018-S2P1p2"]}),
        POLICE,
        set(),
    ),
    (
        "police ask health to rely on recognised legitimate interests (Art 6(1)(ea)); health "
        "is a public body → GW-11",
        envelope(
            legal_basis={
                **LAWFUL_BASIS,
                "art6": "UKGDPR-A6-1ea",
                "public_task_statement": True,
            }
        ),
        POLICE,
        {"GW-11"},
    ),
    (
        "health releases to police on legitimate interests (Art 6(1)(f)) → GW-11",
        envelope(
            "release",
            recipients=[POLICE],
            legal_basis={**HEALTH_BASIS, "art6": "UKGDPR-A6-1f"},
        ),
        HEALTH,
        {"GW-11"},
    ),
    (
        "police ask a youth charity to rely on Art 6(1)(ea) without stating their public "
        "task → GW-11",
        envelope(
            recipients=[CHARITY],
            legal_basis={**LAWFUL_BASIS, "art6": "UKGDPR-A6-1ea"},
            scope=[item("youth_work_contacts")],
        ),
        POLICE,
        {"GW-11"},
    ),
    (
        "police ask a youth charity to rely on Art 6(1)(ea), stating their public task: lawful",
        envelope(
            recipients=[CHARITY],
            legal_basis={
                **LAWFUL_BASIS,
                "art6": "UKGDPR-A6-1ea",
                "public_task_statement": True,
            },
            scope=[item("youth_work_contacts")],
        ),
        POLICE,
        set(),
    ),
    (
        "a youth charity refers to police on legitimate interests (Art 6(1)(f)) with Art "
        "9(2)(g) and Sch 1 para 18: lawful for a non-public partner",
        envelope(
            "referral",
            recipients=[POLICE],
            purpose="PREVENT_REFERRAL",
            legal_basis={**SPECIAL, "art6": "UKGDPR-A6-1f", "sch1": "DPA2018-S1P2p18"},
            scope=[],
        ),
        CHARITY,
        set(),
    ),
    (
        "health asks to rely on s115 and the Sch 2 crime exemption without an Art 6 basis → "
        "GW-02, GW-EX",
        envelope(
            legal_basis={"powers": ["CDA1998-s115"], "exemptions": ["DPA2018-S2P1p2"]},
        ),
        POLICE,
        {"GW-02", "GW-EX"},
    ),
    (
        "police release to the local authority under the policing purpose and DPA 2018 Part "
        "3: lawful for a competent authority",
        envelope(
            "release",
            recipients=[LA],
            legal_basis={"powers": ["CL-POLICING"], "art6": "DPA2018-Pt3"},
        ),
        POLICE,
        set(),
    ),
    (
        "probation releases special category data to police under Part 3 and its Schedule 8 "
        "safeguarding condition: lawful",
        envelope(
            "release",
            recipients=[POLICE],
            legal_basis={
                "powers": ["CDA1998-s115"],
                "art6": "DPA2018-Pt3",
                "art9": "DPA2018-S8p4",
            },
            scope=[item("mental_health_diagnoses")],
        ),
        PROBATION,
        set(),
    ),
    (
        "probation releases special category data to police under Part 3 but with the UK "
        "GDPR Art 9(2)(g) condition, mixing the regimes → GW-16",
        envelope(
            "release",
            recipients=[POLICE],
            legal_basis={
                "powers": ["CDA1998-s115"],
                "art6": "DPA2018-Pt3",
                "art9": "UKGDPR-A9-2g",
                "sch1": "DPA2018-S1P2p18",
            },
            scope=[item("mental_health_diagnoses")],
        ),
        PROBATION,
        {"GW-16"},
    ),
    (
        "police release to probation for the prevention or detection of crime citing the UK "
        "GDPR public task: a competent authority's law-enforcement sharing is Part 3 → GW-16",
        envelope(
            "release",
            recipients=[PROBATION],
            purpose="CRIME_PREVENTION",
            legal_basis={"powers": ["CL-POLICING"], "art6": "UKGDPR-A6-1e"},
        ),
        POLICE,
        {"GW-16"},
    ),
    (
        "police release to probation for the prevention or detection of crime under Part 3: lawful",
        envelope(
            "release",
            recipients=[PROBATION],
            purpose="CRIME_PREVENTION",
            legal_basis={"powers": ["CL-POLICING"], "art6": "DPA2018-Pt3"},
        ),
        POLICE,
        set(),
    ),
    (
        "health releases to police relying on DPA 2018 Part 3, which is for competent "
        "authorities → GW-08",
        envelope(
            "release",
            recipients=[POLICE],
            legal_basis={**HEALTH_BASIS, "art6": "DPA2018-Pt3"},
        ),
        HEALTH,
        {"GW-08"},
    ),
    (
        "health releases to police against a refusal under s115 and the public-interest "
        "exception to confidentiality: lawful",
        envelope(
            "release",
            recipients=[POLICE],
            legal_basis={**LAWFUL_BASIS, "confidentiality": ["CLDC-PUBINT"]},
        ),
        HEALTH,
        set(),
    ),
    (
        "health releases to police giving the public-interest exception to confidentiality "
        "as its only power, so no exception is named where it counts → GW-07, GW-01, GW-13",
        envelope(
            "release",
            recipients=[POLICE],
            legal_basis={**LAWFUL_BASIS, "powers": ["CLDC-PUBINT"]},
        ),
        HEALTH,
        {"GW-07", "GW-01", "GW-13"},
    ),
    (
        "health cites the Prevent duty to have regard (guidance) as a confidentiality "
        "exception beside s115, and so names no real exception → GW-07, GW-13",
        envelope(
            "release",
            recipients=[POLICE],
            legal_basis={**LAWFUL_BASIS, "confidentiality": ["CALD-P7"]},
        ),
        HEALTH,
        {"GW-07", "GW-13"},
    ),
    (
        "police send health a note citing the Sch 2 exemption as a power: a cited basis is "
        "checked even where none is required → GW-07",
        envelope(
            "note",
            legal_basis={"powers": ["DPA2018-S2P1p2"]},
            scope=[],
        ),
        POLICE,
        {"GW-07"},
    ),
    (
        "a school asks health and police for criminal convictions citing the policing "
        "purpose, an unknown Art 9 condition and TA 2000 s39 as an exemption → every "
        "violation, not the first",
        envelope(
            recipients=[HEALTH, POLICE],
            legal_basis={
                "powers": ["CL-POLICING"],
                "art6": "UKGDPR-A6-1e",
                "art9": "UKGDPR-A9-2q",
                "exemptions": ["TA2000-s39"],
            },
            scope=[item("criminal_convictions", None, None)],
        ),
        SCHOOL,
        {"GW-08", "GW-01", "GW-06", "GW-07", "GW-05"},
    ),
]


@pytest.mark.parametrize(
    ("fields", "sender", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_lawful_basis(fields: EnvelopeFields, sender: str, expected: set[str]) -> None:
    assert check(fields, sender) == expected


def test_an_unknown_power_is_located_by_its_index() -> None:
    fields = envelope(legal_basis={**LAWFUL_BASIS, "powers": ["CDA1998-s115", "CDA1998-s999"]})
    assert where(fields) == {("GW-06", "$.legal_basis.powers[1]")}


def test_the_brief_example_points_at_each_missing_layer() -> None:
    fields = envelope(
        legal_basis={"exemptions": ["DPA2018-S2P1p2"]},
        scope=[item("mental_health_diagnoses")],
    )
    assert where(fields) == {
        ("GW-01", "$.legal_basis.powers"),
        ("GW-02", "$.legal_basis.art6"),
        ("GW-03", "$.legal_basis.art9"),
        ("GW-EX", "$.legal_basis.exemptions"),
    }


def test_a_request_to_several_disclosers_names_each_one_that_cannot_rely_on_the_power() -> None:
    # MCA 2005 s4 is for health, local authorities and police; the school cannot rely on it.
    fields = envelope(
        recipients=[HEALTH, SCHOOL], legal_basis={**LAWFUL_BASIS, "powers": ["MCA2005-s4"]}
    )
    violations = check_lawful_basis(fields, facts(fields, LA), REGISTRY)
    assert located(violations) == {
        ("GW-01", "$.legal_basis.powers"),
        ("GW-08", "$.legal_basis.powers[0]"),
    }
    gw08 = next(v for v in violations if v.rule == "GW-08")
    assert SCHOOL in gw08.message
    assert HEALTH not in gw08.message


def test_each_discloser_needs_one_power_it_may_rely_on_not_every_power_cited() -> None:
    """GW-08 is judged per discloser and layer (REFERENCE 2.9): s115 is for anyone, so the
    school asked beside health may rely on it even though MCA 2005 s4 is not for schools."""
    fields = envelope(
        recipients=[HEALTH, SCHOOL],
        legal_basis={**LAWFUL_BASIS, "powers": ["CDA1998-s115", "MCA2005-s4"]},
    )
    assert check(fields, LA) == set()


def test_legitimate_interests_for_a_public_body_is_reported_once_not_also_as_gw_08() -> None:
    fields = envelope(
        legal_basis={**LAWFUL_BASIS, "art6": "UKGDPR-A6-1ea", "public_task_statement": True}
    )
    assert where(fields) == {("GW-11", "$.legal_basis.art6")}


def test_an_information_request_is_disclosed_by_its_recipients_to_its_sender() -> None:
    fields = envelope(recipients=[HEALTH, LA])
    disclosers, receivers = disclosers_and_receivers(fields, facts(fields, POLICE))
    assert [p.node_id for p in disclosers] == [HEALTH, LA]
    assert receivers == (NODES[POLICE],)


def test_every_other_kind_is_disclosed_by_its_sender_to_its_recipients() -> None:
    fields = envelope("referral", recipients=[LA, POLICE], purpose="PREVENT_REFERRAL")
    disclosers, receivers = disclosers_and_receivers(fields, facts(fields, HEALTH))
    assert disclosers == (NODES[HEALTH],)
    assert [p.node_id for p in receivers] == [LA, POLICE]


def test_recipients_the_hub_does_not_know_are_left_to_routing() -> None:
    fields = envelope(recipients=[HEALTH, "health.unknown-trust"])
    known = PolicyFacts(
        sender=NODES[POLICE], recipients={HEALTH: NODES[HEALTH]}, today=facts(fields).today
    )
    assert check_lawful_basis(fields, known, REGISTRY) == []


def test_cited_gateways_lists_every_slot_in_envelope_order() -> None:
    fields = envelope(
        legal_basis={
            **SPECIAL,
            "powers": ["CDA1998-s115", "TA2000-s38B"],
            "art10": "UKGDPR-A10-OA",
            "exemptions": ["DPA2018-S2P1p2"],
            "confidentiality": ["CLDC-PUBINT"],
        }
    )
    assert fields.legal_basis is not None
    assert [(c.path, c.gateway_id) for c in cited_gateways(fields.legal_basis, REGISTRY)] == [
        ("$.legal_basis.powers[0]", "CDA1998-s115"),
        ("$.legal_basis.powers[1]", "TA2000-s38B"),
        ("$.legal_basis.art6", "UKGDPR-A6-1e"),
        ("$.legal_basis.art9", "UKGDPR-A9-2g"),
        ("$.legal_basis.sch1", "DPA2018-S1P2p10"),
        ("$.legal_basis.art10", "UKGDPR-A10-OA"),
        ("$.legal_basis.exemptions[0]", "DPA2018-S2P1p2"),
        ("$.legal_basis.confidentiality[0]", "CLDC-PUBINT"),
    ]
