"""Protective markings: parsing, rendering and the MK-* rules (REFERENCE.md 1.2-1.9).

The registry is built here from ``schemas/registry/markings.yaml`` and ``rules.yaml``
with minimal stubs for the other sections, so these tests do not depend on the other
registry files; one test also loads the real registry when every file is present.
"""

from __future__ import annotations

import functools
import string
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.model import MESSAGE_KINDS, Author, EnvelopeFields, Marking, Violation
from hub.policy.facts import Party, PolicyFacts
from hub.policy.marking import (
    MAX_MARKING_CHARS,
    MarkingParse,
    check_marking,
    check_marking_rules,
    marking_level,
    parse_marking,
    render_marking,
)
from hub.policy.registry import REGISTRY_FILES, Registry, load_registry

REGISTRY_DIR = Path(__file__).resolve().parents[2] / "schemas" / "registry"
TODAY = date(2026, 11, 21)
SENDER = Party("health.bsw-icb", "health", "OFFICIAL-SENSITIVE")
PARTIES = {
    "police.ctp-sw": Party("police.ctp-sw", "police", "OFFICIAL-SENSITIVE"),
    "la.wiltshire": Party("la.wiltshire", "local_authority", "OFFICIAL-SENSITIVE"),
    "education.school": Party("education.school", "education", "OFFICIAL"),
}
PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _yaml(name: str) -> Any:
    return yaml.safe_load((REGISTRY_DIR / name).read_text(encoding="utf-8"))


@functools.cache
def registry() -> Registry:
    """markings.yaml and rules.yaml as written, the other sections as minimal stubs."""
    return Registry.model_validate(
        {
            "markings": _yaml("markings.yaml")["markings"],
            "agency_types": [
                {
                    "id": "police",
                    "name": "Police",
                    "public_body": True,
                    "competent_authority": True,
                }
            ],
            "gateways": [],
            "data_categories": [],
            "purposes": [],
            "rules": _yaml("rules.yaml")["rules"],
        }
    )


def parse(text: str) -> MarkingParse:
    return parse_marking(text, registry())


def canonical(text: str) -> str:
    result = parse(text)
    assert result.marking is not None, result.violations
    return render_marking(result.marking)


def rules_of(violations: tuple[Violation, ...] | list[Violation]) -> list[str]:
    return [v.rule for v in violations]


def envelope(
    marking: Marking,
    *,
    kind: str = "referral",
    recipients: tuple[str, ...] = ("police.ctp-sw",),
) -> EnvelopeFields:
    return EnvelopeFields.model_validate(
        {
            "kind": kind,
            "author": Author(user_ref="user-0001", role="REFERRER", vetting="BPSS"),
            "recipients": recipients,
            "marking": marking,
            "purpose": "PREVENT_REFERRAL",
        }
    )


def facts(
    fields: EnvelopeFields,
    *,
    answers: EnvelopeFields | None = None,
    answers_sender: str | None = None,
) -> PolicyFacts:
    return PolicyFacts(
        sender=SENDER,
        recipients={r: PARTIES[r] for r in fields.recipients if r in PARTIES},
        today=TODAY,
        answers=answers,
        answers_sender=answers_sender,
    )


def check(marking: Marking, **kwargs: Any) -> list[Violation]:
    fields = envelope(marking, **kwargs)
    return check_marking(fields, facts(fields), registry())


OS = Marking(tier="OFFICIAL", sensitive=True)
OS_PERSONAL = Marking(tier="OFFICIAL", sensitive=True, descriptors=("PERSONAL_DATA",))
EMBARGO_UNTIL = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


# --- the registry file ------------------------------------------------------------------


def test_markings_yaml_tiers_and_handling_strings() -> None:
    markings = registry().markings
    assert {t.id: t.carried_by_hub for t in markings.tiers} == {
        "OFFICIAL": True,
        "SECRET": False,
        "TOP SECRET": False,
    }
    assert {t.id: t.minimum_vetting for t in markings.tiers} == {
        "OFFICIAL": "BPSS",
        "SECRET": "SC",
        "TOP SECRET": "DV",
    }
    handling = {h.id: (h.string, set(h.allowed_with)) for h in markings.handling_instructions}
    assert handling == {
        "RECIPIENTS_ONLY": ("RECIPIENTS ONLY", {"OFFICIAL-SENSITIVE", "SECRET", "TOP SECRET"}),
        "FOR_PUBLIC_RELEASE": ("FOR PUBLIC RELEASE", {"OFFICIAL"}),
        "ORG_USE_ONLY": (
            "USE ONLY",
            {"OFFICIAL", "OFFICIAL-SENSITIVE", "SECRET", "TOP SECRET"},
        ),
        "HMG_USE_ONLY": ("HMG USE ONLY", {"OFFICIAL", "OFFICIAL-SENSITIVE", "SECRET"}),
        "EMBARGOED": ("EMBARGOED", {"OFFICIAL", "OFFICIAL-SENSITIVE", "SECRET"}),
    }


def test_markings_yaml_descriptors_and_legacy() -> None:
    markings = registry().markings
    descriptors = {d.id: d for d in markings.descriptors}
    current = {d.id for d in markings.descriptors if d.scheme == "current"}
    assert current == {
        "PERSONAL_DATA",
        "LPP",
        "LEGAL",
        "MARKET_SENSITIVE",
        "COMMERCIAL",
        "HR_MANAGEMENT",
    }
    assert set(descriptors["LEGAL"].allowed_with) == {"OFFICIAL", "OFFICIAL-SENSITIVE"}
    assert descriptors["PERSONAL_2014"].current_equivalent == "PERSONAL_DATA"
    assert descriptors["COMMERCIAL_2014"].current_equivalent == "COMMERCIAL"
    assert descriptors["LOCSEN"].scheme == "local"
    assert descriptors["LOCSEN"].flag_for_review
    legacy = {entry.string: (entry.treatment, entry.maps_to) for entry in markings.legacy}
    assert legacy == {
        "UNCLASSIFIED": ("map", "OFFICIAL"),
        "NOT PROTECTIVELY MARKED": ("map", "OFFICIAL"),
        "PROTECT": ("map", "OFFICIAL"),
        "RESTRICTED": ("map", "OFFICIAL"),
        "CONFIDENTIAL": ("reject", None),
        "SECRET": ("reject", None),
        "TOP SECRET": ("reject", None),
    }


def test_every_kind_has_a_minimum_level() -> None:
    minimum = registry().markings.minimum_level_by_kind
    assert set(minimum) == set(MESSAGE_KINDS)
    assert {kind for kind, level in minimum.items() if level == "OFFICIAL"} == {
        "note",
        "withdrawal",
    }
    assert set(minimum.values()) == {"OFFICIAL", "OFFICIAL-SENSITIVE"}


@pytest.mark.skipif(
    not all((REGISTRY_DIR / name).exists() for name in REGISTRY_FILES.values()),
    reason="the other registry files are not all written yet",
)
def test_the_real_registry_loads_with_these_markings() -> None:
    real = load_registry()
    assert real.markings == registry().markings
    assert parse_marking("OFFICIAL SENSITIVE: PERSONAL", real).marking == OS_PERSONAL


# --- parsing: normalisation (REFERENCE 1.7) ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "note"),
    [
        ("OFFICIAL SENSITIVE", "OFFICIAL-SENSITIVE", "normalised 'OFFICIAL SENSITIVE'"),
        ("OFFICIAL - SENSITIVE", "OFFICIAL-SENSITIVE", "normalised 'OFFICIAL - SENSITIVE'"),
        ("Official-Sensitive", "OFFICIAL-SENSITIVE", "normalised 'Official-Sensitive'"),
        ("OFFICIAL\u2013SENSITIVE", "OFFICIAL-SENSITIVE", "normalised 'OFFICIAL\u2013SENSITIVE'"),
        ("OFFICIAL\u2014SENSITIVE", "OFFICIAL-SENSITIVE", "normalised 'OFFICIAL\u2014SENSITIVE'"),
        ("OFFICIAL SENSTIVE", "OFFICIAL-SENSITIVE", "normalised 'OFFICIAL SENSTIVE'"),
        ("official_sensitive", "OFFICIAL-SENSITIVE", "normalised 'official_sensitive'"),
        (
            "OFFICIAL-SENSITIVE: PERSONAL",
            "OFFICIAL-SENSITIVE - PERSONAL DATA",
            "read the 2014 descriptor PERSONAL as PERSONAL DATA",
        ),
        (
            "OFFICIAL-SENSITIVE PERSONAL",
            "OFFICIAL-SENSITIVE - PERSONAL DATA",
            "read the 2014 descriptor PERSONAL as PERSONAL DATA",
        ),
        (
            "OFFICIAL SENSITIVE - PERSONAL DATA",
            "OFFICIAL-SENSITIVE - PERSONAL DATA",
            "normalised 'OFFICIAL SENSITIVE'",
        ),
        (
            "OFFICIAL-SENSITIVE LOCSEN",
            "OFFICIAL-SENSITIVE - LOCSEN",
            "flagged for information governance review",
        ),
        ("TOP_SECRET", "TOP SECRET", "normalised 'TOP_SECRET' to TOP SECRET"),
    ],
)
def test_normalisation(text: str, expected: str, note: str) -> None:
    result = parse(text)
    assert result.violations == ()
    assert result.marking is not None
    assert render_marking(result.marking) == expected
    assert any(note in n for n in result.notes), result.notes
    assert result.original == text


@pytest.mark.parametrize("separator", [" - ", " \u2013 ", " \u2014 ", ": ", "\n", " -- "])
def test_separators(separator: str) -> None:
    text = separator.join(["OFFICIAL-SENSITIVE", "RECIPIENTS ONLY", "PERSONAL DATA"])
    assert canonical(text) == "OFFICIAL-SENSITIVE - RECIPIENTS ONLY - PERSONAL DATA"


def test_canonical_text_has_no_notes() -> None:
    result = parse("OFFICIAL-SENSITIVE - RECIPIENTS ONLY - PERSONAL DATA")
    assert result.notes == ()
    assert result.violations == ()
    assert result.marking == Marking(
        tier="OFFICIAL",
        sensitive=True,
        handling="RECIPIENTS_ONLY",
        descriptors=("PERSONAL_DATA",),
    )


def test_commercial_is_unchanged_and_2014_forms_map_to_current() -> None:
    result = parse("OFFICIAL-SENSITIVE COMMERCIAL")
    assert result.marking is not None
    assert result.marking.descriptors == ("COMMERCIAL",)
    assert result.notes == ()


@pytest.mark.parametrize(
    ("text", "descriptors"),
    [
        ("OFFICIAL - LEGAL PROFESSIONAL PRIVILEGE (LPP)", ("LPP",)),
        ("OFFICIAL - LEGAL PROFESSIONAL PRIVILEGE", ("LPP",)),
        ("OFFICIAL - LPP", ("LPP",)),
        ("OFFICIAL - LEGAL", ("LEGAL",)),
        ("OFFICIAL - HR/MANAGEMENT", ("HR_MANAGEMENT",)),
        ("OFFICIAL - HR / MANAGEMENT", ("HR_MANAGEMENT",)),
        ("OFFICIAL - MARKET SENSITIVE - COMMERCIAL", ("MARKET_SENSITIVE", "COMMERCIAL")),
        ("OFFICIAL-SENSITIVE - PERSONAL DATA - PERSONAL", ("PERSONAL_DATA",)),
    ],
)
def test_descriptors(text: str, descriptors: tuple[str, ...]) -> None:
    result = parse(text)
    assert result.violations == ()
    assert result.marking is not None
    assert result.marking.descriptors == descriptors


def test_repeated_descriptor_is_dropped_with_a_note() -> None:
    result = parse("OFFICIAL-SENSITIVE - PERSONAL DATA - PERSONAL")
    assert any("repeated descriptor" in note for note in result.notes)


def test_parts_out_of_order_are_reordered_with_a_note() -> None:
    result = parse("OFFICIAL-SENSITIVE - PERSONAL DATA - RECIPIENTS ONLY")
    assert result.marking is not None
    assert render_marking(result.marking) == (
        "OFFICIAL-SENSITIVE - RECIPIENTS ONLY - PERSONAL DATA"
    )
    assert any("canonical order" in note for note in result.notes)


@pytest.mark.parametrize(
    "text",
    [
        "UK OFFICIAL-SENSITIVE\nREL-EU",
        "UK OFFICIAL-SENSITIVE\nREL EU",
        "UK OFFICIAL-SENSITIVE REL EU",
        "UK OFFICIAL-SENSITIVE - REL-EU",
        "uk official sensitive\r\nrel-eu",
    ],
)
def test_uk_prefix_and_rel_eu(text: str) -> None:
    result = parse(text)
    assert result.violations == ()
    assert result.marking == Marking(tier="OFFICIAL", sensitive=True, uk_prefix=True, rel_eu=True)
    assert render_marking(result.marking) == "UK OFFICIAL-SENSITIVE - REL EU"


@pytest.mark.parametrize(
    ("text", "orgs"),
    [
        ("OFFICIAL - HOME OFFICE USE ONLY", ("HOME OFFICE",)),
        ("OFFICIAL - Home Office use only", ("HOME OFFICE",)),
        ("OFFICIAL-SENSITIVE HOME OFFICE USE ONLY", ("HOME OFFICE",)),
        ("OFFICIAL - HOME OFFICE / MOJ USE ONLY", ("HOME OFFICE", "MOJ")),
        ("OFFICIAL - HOME OFFICE/MOJ USE ONLY", ("HOME OFFICE", "MOJ")),
        ("OFFICIAL - HOME OFFICE, MOJ, DFE USE ONLY", ("HOME OFFICE", "MOJ", "DFE")),
        ("OFFICIAL - B&NES COUNCIL USE ONLY", ("B&NES COUNCIL",)),
        ("OFFICIAL - HMG / NHS ENGLAND USE ONLY", ("HMG", "NHS ENGLAND")),
        # A part of its own ending in USE ONLY names organisations, whatever the words.
        ("OFFICIAL - LEGAL SERVICES USE ONLY", ("LEGAL SERVICES",)),
        ("OFFICIAL - UK BORDER FORCE USE ONLY", ("UK BORDER FORCE",)),
        (
            "OFFICIAL - PERSONAL DATA TEAM / HOME OFFICE USE ONLY",
            ("PERSONAL DATA TEAM", "HOME OFFICE"),
        ),
    ],
)
def test_organisation_use_only(text: str, orgs: tuple[str, ...]) -> None:
    result = parse(text)
    assert result.violations == ()
    assert result.marking is not None
    assert result.marking.handling == "ORG_USE_ONLY"
    assert result.marking.handling_orgs == orgs


@pytest.mark.parametrize(
    ("text", "handling"),
    [
        ("OFFICIAL - HMG USE ONLY", "HMG_USE_ONLY"),
        ("OFFICIAL, HMG USE ONLY", "HMG_USE_ONLY"),
        ("OFFICIAL-SENSITIVE - RECIPIENTS ONLY", "RECIPIENTS_ONLY"),
        ("OFFICIAL - FOR PUBLIC RELEASE", "FOR_PUBLIC_RELEASE"),
        ("Official - for public release", "FOR_PUBLIC_RELEASE"),
    ],
)
def test_handling_instructions(text: str, handling: str) -> None:
    result = parse(text)
    assert result.violations == ()
    assert result.marking is not None
    assert result.marking.handling == handling


@pytest.mark.parametrize(
    ("text", "caveats"),
    [
        ("SECRET - UK EYES ONLY", ("UK EYES ONLY",)),
        ("TOP SECRET \u2013 UK / US EYES ONLY", ("UK/US EYES ONLY",)),
        ("SECRET - UK/US EYES ONLY", ("UK/US EYES ONLY",)),
        ("SECRET - FIVE EYES ONLY", ("FIVE EYES ONLY",)),
        ("SECRET - FIVE EYES ONLY - UK EYES ONLY", ("FIVE EYES ONLY", "UK EYES ONLY")),
    ],
)
def test_national_caveats_are_read(text: str, caveats: tuple[str, ...]) -> None:
    # Read faithfully so that check_marking can refuse them with MK-09 and say why.
    result = parse(text)
    assert result.violations == ()
    assert result.marking is not None
    assert result.marking.national_caveats == caveats


def test_codeword_is_kept_as_a_note_on_secret() -> None:
    result = parse("UK SECRET - RECIPIENTS ONLY - BADGER - UK EYES ONLY")
    assert result.violations == ()
    assert result.marking == Marking(
        tier="SECRET",
        uk_prefix=True,
        handling="RECIPIENTS_ONLY",
        national_caveats=("UK EYES ONLY",),
    )
    assert any("codeword BADGER" in note for note in result.notes)
    # ... and the hub refuses the marking anyway.
    assert "MK-09" in rules_of(check(result.marking))


def test_a_codeword_on_official_is_not_understood() -> None:
    result = parse("OFFICIAL - BADGER")
    assert result.marking is None
    assert rules_of(result.violations) == ["MK-01"]
    assert "'BADGER'" in result.violations[0].message


# --- parsing: legacy GPMS (REFERENCE 1.9) -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "legacy"),
    [
        ("PROTECT", "OFFICIAL", "PROTECT"),
        ("RESTRICTED", "OFFICIAL", "RESTRICTED"),
        ("Restricted", "OFFICIAL", "RESTRICTED"),
        ("UNCLASSIFIED", "OFFICIAL", "UNCLASSIFIED"),
        ("NOT PROTECTIVELY MARKED", "OFFICIAL", "NOT PROTECTIVELY MARKED"),
        ("NPM", "OFFICIAL", "NOT PROTECTIVELY MARKED"),
        ("PROTECT - PERSONAL", "OFFICIAL - PERSONAL DATA", "PROTECT"),
        ("RESTRICTED - PERSONAL", "OFFICIAL - PERSONAL DATA", "RESTRICTED"),
        ("RESTRICTED \u2013 PERSONAL", "OFFICIAL - PERSONAL DATA", "RESTRICTED"),
    ],
)
def test_legacy_markings_map_for_routing(text: str, expected: str, legacy: str) -> None:
    result = parse(text)
    assert result.violations == ()
    assert result.marking is not None
    assert render_marking(result.marking) == expected
    assert f"legacy {legacy} mapped to OFFICIAL for routing; original kept: '{text}'" in (
        result.notes
    )
    assert result.original == text


@pytest.mark.parametrize("text", ["CONFIDENTIAL", "Confidential", "CONFIDENTIAL - PERSONAL"])
def test_legacy_confidential_is_refused_until_reclassified(text: str) -> None:
    result = parse(text)
    assert result.marking is None
    assert rules_of(result.violations) == ["MK-13"]
    assert "reclassify" in result.violations[0].message
    assert result.violations[0].path == "$.marking"


@pytest.mark.parametrize(("text", "tier"), [("SECRET", "SECRET"), ("TOP SECRET", "TOP SECRET")])
def test_gpms_secret_reads_as_the_current_tier_and_mk09_refuses_it(text: str, tier: str) -> None:
    result = parse(text)
    assert result.violations == ()
    assert result.marking == Marking(tier=tier)  # type: ignore[arg-type]
    assert rules_of(check(result.marking)) == ["MK-09"]


def test_a_mapped_legacy_referral_still_needs_official_sensitive() -> None:
    # The hub never raises a marking itself (HR-01): the sender must re-mark it.
    result = parse("RESTRICTED - PERSONAL")
    assert result.marking is not None
    assert rules_of(check(result.marking, kind="referral")) == ["MK-10"]


# --- parsing: refusals (MK-01) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("hello", "no classification tier"),
        ("PERSONAL DATA", "no classification tier"),
        ("OFFICIAL SECRET", "exactly one classification tier"),
        ("OFFICIAL - RESTRICTED", "exactly one classification tier"),
        ("SECRET - TOP SECRET", "exactly one classification tier"),
        ("PERSONAL DATA - OFFICIAL", "starts with its classification tier"),
        ("OFFICIAL - UK", "UK prefix"),
        ("OFFICIAL - SPECIAL", "not understood: 'SPECIAL'"),
        ("OFFICIAL-SENSITIVE - PERSONAL DATA - STAFF", "not understood: 'STAFF'"),
        ("OFFICIAL - HMG USE ONLY - RECIPIENTS ONLY", "at most one handling instruction"),
        ("OFFICIAL - USE ONLY", "needs the organisation"),
        ("OFFICIAL - HOME OFFICE <SCRIPT> USE ONLY", "not an organisation name"),
        ("OFFICIAL - " + "X" * 90 + " USE ONLY", "not an organisation name"),
        ("OFFICIAL, CONFIDENTIAL USE ONLY", "not an organisation name"),
        ("OFFICIAL / SENSITIVE TEAM USE ONLY", "not an organisation name"),
        ("OFFICIAL - RESTRICTED TEAM USE ONLY", "exactly one classification tier"),
        ("SENSITIVE", "no classification tier"),
        ("X" * (MAX_MARKING_CHARS + 1), "at most"),
    ],
)
def test_not_understood(text: str, fragment: str) -> None:
    result = parse(text)
    assert result.marking is None
    assert result.violations
    assert set(rules_of(result.violations)) == {"MK-01"}
    assert all(v.path == "$.marking" for v in result.violations)
    assert any(fragment in v.message for v in result.violations), result.violations


@pytest.mark.parametrize(
    "text",
    [
        "OFFICIAL - " + "AB/" * 600,
        "OFFICIAL - " + "A USE ONLY B USE ONLY " * 75,
        "SECRET - " + "UK/" * 500 + "EYES ONLY",
        "OFFICIAL-SENSITIVE " * 100,
        "OFFICIAL\n" * 220,
        "OFFICIAL - EMBARGOED. This information will remain classified until " + "1/" * 900,
    ],
)
def test_long_hostile_text_is_refused_not_choked_on(text: str) -> None:
    assert len(text) <= MAX_MARKING_CHARS
    result = parse(text)
    assert result.violations


def test_two_problems_are_both_reported() -> None:
    result = parse("WIBBLE - OFFICIAL - SECRET")
    messages = " | ".join(v.message for v in result.violations)
    assert "exactly one classification tier" in messages
    assert "starts with its classification tier" in messages
    assert "not understood: 'WIBBLE'" in messages


def test_repeated_handling_instruction_is_dropped_with_a_note() -> None:
    result = parse("OFFICIAL - HMG USE ONLY - HMG USE ONLY")
    assert result.violations == ()
    assert any("repeated handling instruction" in note for note in result.notes)


def test_zero_width_and_odd_spaces_are_ignored() -> None:
    text = "OFFICIAL\u200b-SENSITIVE\u00a0-\u00a0PERSONAL\u2003DATA"
    assert canonical(text) == "OFFICIAL-SENSITIVE - PERSONAL DATA"


def test_fullwidth_letters_are_read() -> None:
    assert canonical("\uff2f\uff26\uff26\uff29\uff23\uff29\uff21\uff2c") == "OFFICIAL"


# --- parsing: embargo (MK-07) -----------------------------------------------------------

SENTENCE = (
    "This information will remain classified until {when}, after which the information "
    "will be OFFICIAL - FOR PUBLIC RELEASE"
)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("01/03/2026 at 09:30 UTC", EMBARGO_UNTIL),
        ("01/03/26 at 09:30", EMBARGO_UNTIL),
        ("the Budget announcement on 01/03/26 at 09:30", EMBARGO_UNTIL),
        ("1/3/2026 at 9.30am GMT", EMBARGO_UNTIL),
        ("01/03/2026 at 10:30 BST", EMBARGO_UNTIL),
        ("01/03/2026 at 10:30 +01:00", EMBARGO_UNTIL),
        ("2026-03-01T09:30Z", EMBARGO_UNTIL),
        ("2026-03-01 09:30:00 UTC", EMBARGO_UNTIL),
        ("01/03/2026 at 9:30 pm", datetime(2026, 3, 1, 21, 30, tzinfo=UTC)),
    ],
)
def test_embargo_sentence_is_read(when: str, expected: datetime) -> None:
    result = parse(f"OFFICIAL-SENSITIVE - EMBARGOED. {SENTENCE.format(when=when)}.")
    assert result.violations == ()
    assert result.marking is not None
    assert result.marking.handling == "EMBARGOED"
    assert result.marking.embargo_until == expected
    assert result.marking.embargo_then == "OFFICIAL - FOR PUBLIC RELEASE"
    assert check_marking_rules(result.marking, registry()) == []


def test_embargo_without_zone_is_read_as_utc_with_a_note() -> None:
    result = parse(
        f"OFFICIAL - EMBARGOED\n{SENTENCE.format(when='the Budget on 01/03/26 at 09:30')}"
    )
    assert any("no time zone" in note for note in result.notes)
    assert any("announcement 'BUDGET'" in note for note in result.notes)


def test_embargo_renders_and_reads_back() -> None:
    marking = Marking(
        tier="OFFICIAL",
        sensitive=True,
        handling="EMBARGOED",
        embargo_until=EMBARGO_UNTIL,
        embargo_then="OFFICIAL - FOR PUBLIC RELEASE",
    )
    text = render_marking(marking)
    assert text == (
        "OFFICIAL-SENSITIVE - EMBARGOED. This information will remain classified until "
        "01/03/2026 at 09:30 UTC, after which the information will be OFFICIAL - FOR PUBLIC "
        "RELEASE"
    )
    result = parse(text)
    assert result.violations == ()
    assert result.notes == ()
    assert result.marking == marking


def test_the_marking_after_the_embargo_is_normalised() -> None:
    result = parse(
        "OFFICIAL-SENSITIVE - EMBARGOED. This information will remain classified until "
        "01/03/2026 at 09:30 UTC, after which the information will be Official Sensitive"
    )
    assert result.marking is not None
    assert result.marking.embargo_then == "OFFICIAL-SENSITIVE"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("OFFICIAL - EMBARGOED", "EMBARGOED needs the sentence"),
        (
            "OFFICIAL - EMBARGOED. This information will remain classified until later",
            "embargo sentence was not understood",
        ),
        (
            "OFFICIAL - EMBARGOED. " + SENTENCE.format(when="next Tuesday"),
            "embargo time 'NEXT TUESDAY' was not understood",
        ),
        (
            "OFFICIAL - EMBARGOED. " + SENTENCE.format(when="31/02/2026 at 09:30"),
            "not a valid date and time",
        ),
        (
            "OFFICIAL - EMBARGOED. " + SENTENCE.format(when="01/03/2026 at 13:30 pm"),
            "not a valid time",
        ),
        (
            "OFFICIAL - EMBARGOED. This information will remain classified until 01/03/2026 "
            "at 09:30, after which the information will be PUBLIC",
            "after the embargo ('PUBLIC') is not understood",
        ),
        (
            "OFFICIAL - EMBARGOED. This information will remain classified until 01/03/2026 "
            "at 09:30, after which the information will be",
            "does not say what marking applies after it",
        ),
        (
            "OFFICIAL - HMG USE ONLY. " + SENTENCE.format(when="01/03/2026 at 09:30"),
            "needs the EMBARGOED handling instruction",
        ),
    ],
)
def test_embargo_problems(text: str, fragment: str) -> None:
    result = parse(text)
    assert "MK-07" in rules_of(result.violations)
    assert result.marking is not None  # the marking is understood; only the embargo is not
    assert any(fragment in v.message for v in result.violations), result.violations


def test_nested_embargo_is_refused() -> None:
    inner = SENTENCE.format(when="02/03/2026 at 09:30")
    text = (
        "OFFICIAL - EMBARGOED. This information will remain classified until 01/03/2026 at "
        f"09:30, after which the information will be OFFICIAL - EMBARGOED. {inner}"
    )
    result = parse(text)
    assert "MK-07" in rules_of(result.violations)


# --- rendering --------------------------------------------------------------------------

CANONICAL_STRINGS = [
    "OFFICIAL",
    "OFFICIAL-SENSITIVE",
    "OFFICIAL - FOR PUBLIC RELEASE",
    "OFFICIAL - HMG USE ONLY",
    "OFFICIAL-SENSITIVE - RECIPIENTS ONLY",
    "OFFICIAL-SENSITIVE - PERSONAL DATA",
    "OFFICIAL-SENSITIVE - RECIPIENTS ONLY - PERSONAL DATA - LEGAL",
    "OFFICIAL - HOME OFFICE / MOJ USE ONLY - HR / MANAGEMENT",
    "OFFICIAL - LEGAL PROFESSIONAL PRIVILEGE (LPP) - MARKET SENSITIVE - COMMERCIAL",
    "OFFICIAL-SENSITIVE - LOCSEN",
    "UK OFFICIAL-SENSITIVE - REL EU",
    "UK OFFICIAL - HMG USE ONLY - PERSONAL DATA - REL EU",
    "SECRET",
    "UK SECRET - RECIPIENTS ONLY - COMMERCIAL - UK EYES ONLY",
    "TOP SECRET - UK/US EYES ONLY",
    "SECRET-SENSITIVE",
]


@pytest.mark.parametrize("text", CANONICAL_STRINGS)
def test_canonical_strings_round_trip(text: str) -> None:
    result = parse(text)
    assert result.violations == ()
    assert result.marking is not None
    assert render_marking(result.marking) == text


def test_render_uses_the_model_render_for_the_plain_part() -> None:
    marking = Marking(tier="OFFICIAL", sensitive=True, descriptors=("PERSONAL_DATA",))
    assert render_marking(marking) == marking.render() == "OFFICIAL-SENSITIVE - PERSONAL DATA"


def test_render_embargo_time_in_utc() -> None:
    marking = Marking(
        tier="OFFICIAL",
        handling="EMBARGOED",
        embargo_until=datetime(2026, 7, 1, 10, 30, 15, tzinfo=timezone(timedelta(hours=1))),
        embargo_then="OFFICIAL",
    )
    assert "until 01/07/2026 at 09:30:15 UTC," in render_marking(marking)
    result = parse(render_marking(marking))
    assert result.marking is not None
    assert result.marking.embargo_until == marking.embargo_until


def test_render_never_raises_on_an_out_of_range_embargo_time() -> None:
    marking = Marking(
        tier="OFFICIAL",
        handling="EMBARGOED",
        embargo_until=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        embargo_then="OFFICIAL",
    )
    result = parse(render_marking(marking))
    assert rules_of(result.violations) == ["MK-07"]


@pytest.mark.parametrize(
    ("marking", "level"),
    [
        (Marking(tier="OFFICIAL"), "OFFICIAL"),
        (OS, "OFFICIAL-SENSITIVE"),
        (Marking(tier="SECRET"), "SECRET"),
        (Marking(tier="TOP SECRET"), "TOP SECRET"),
        # -SENSITIVE on a higher tier (MK-02) never lowers the level.
        (Marking(tier="SECRET", sensitive=True), "SECRET"),
    ],
)
def test_marking_level(marking: Marking, level: str) -> None:
    assert marking_level(marking) == level


# --- checking: every rule fires and does not fire ----------------------------------------


def test_a_clean_referral_has_no_violations() -> None:
    assert check(OS_PERSONAL) == []
    assert check(Marking(tier="OFFICIAL", sensitive=True, handling="RECIPIENTS_ONLY")) == []


def test_mk02_sensitive_only_with_official() -> None:
    violations = check(Marking(tier="SECRET", sensitive=True))
    assert ("MK-02", "$.marking.sensitive") in [(v.rule, v.path) for v in violations]
    assert "MK-02" not in rules_of(check(OS))


def test_mk03_for_public_release_only_with_plain_official() -> None:
    bad = Marking(tier="OFFICIAL", sensitive=True, handling="FOR_PUBLIC_RELEASE")
    assert [(v.rule, v.path) for v in check(bad)] == [("MK-03", "$.marking.handling")]
    assert check(Marking(tier="OFFICIAL", handling="FOR_PUBLIC_RELEASE"), kind="note") == []


def test_mk04_recipients_only_not_with_plain_official() -> None:
    bad = Marking(tier="OFFICIAL", handling="RECIPIENTS_ONLY")
    violations = check(bad, kind="note")
    assert [(v.rule, v.path) for v in violations] == [("MK-04", "$.marking.handling")]
    assert "OFFICIAL-SENSITIVE" in violations[0].message
    assert check(Marking(tier="OFFICIAL", sensitive=True, handling="RECIPIENTS_ONLY")) == []


@pytest.mark.parametrize(
    ("marking", "path"),
    [
        (Marking(tier="TOP SECRET", handling="HMG_USE_ONLY"), "$.marking.handling"),
        (
            Marking(
                tier="TOP SECRET",
                handling="EMBARGOED",
                embargo_until=EMBARGO_UNTIL,
                embargo_then="TOP SECRET",
            ),
            "$.marking.handling",
        ),
        (Marking(tier="SECRET", descriptors=("LEGAL",)), "$.marking.descriptors[0]"),
        (
            Marking(tier="TOP SECRET", descriptors=("PERSONAL_DATA", "LEGAL")),
            "$.marking.descriptors[1]",
        ),
        (Marking(tier="OFFICIAL", descriptors=("LOCSEN",)), "$.marking.descriptors[0]"),
        (Marking(tier="OFFICIAL", descriptors=("SPECIAL_STUFF",)), "$.marking.descriptors[0]"),
        (
            Marking(tier="OFFICIAL", sensitive=True, descriptors=("PERSONAL_2014",)),
            "$.marking.descriptors[0]",
        ),
    ],
)
def test_mk05_handling_and_descriptors_with_their_tiers(marking: Marking, path: str) -> None:
    violations = check(marking)
    assert ("MK-05", path) in [(v.rule, v.path) for v in violations], violations


@pytest.mark.parametrize(
    "marking",
    [
        Marking(tier="OFFICIAL", sensitive=True, handling="HMG_USE_ONLY"),
        Marking(tier="OFFICIAL", sensitive=True, descriptors=("LEGAL", "LPP")),
        Marking(tier="OFFICIAL", sensitive=True, descriptors=("LOCSEN",)),
        Marking(tier="OFFICIAL", sensitive=True, handling="ORG_USE_ONLY", handling_orgs=("X",)),
    ],
)
def test_mk05_allowed_combinations(marking: Marking) -> None:
    assert check(marking) == []


def test_mk05_not_for_secret_with_personal_data() -> None:
    assert "MK-05" not in rules_of(check(Marking(tier="SECRET", descriptors=("PERSONAL_DATA",))))


def test_mk06_national_caveats_only_on_secret_and_sorted() -> None:
    on_official = check(
        Marking(tier="OFFICIAL", sensitive=True, national_caveats=("UK EYES ONLY",))
    )
    assert [(v.rule, v.path) for v in on_official] == [
        ("MK-06", "$.marking.national_caveats"),
        ("MK-09", "$.marking.national_caveats"),
    ]
    unsorted = check(Marking(tier="SECRET", national_caveats=("UK EYES ONLY", "FIVE EYES ONLY")))
    assert rules_of(unsorted) == ["MK-06", "MK-09", "MK-09"]
    assert "FIVE EYES ONLY - UK EYES ONLY" in unsorted[0].message
    sorted_ok = check(Marking(tier="SECRET", national_caveats=("FIVE EYES ONLY", "UK EYES ONLY")))
    assert "MK-06" not in rules_of(sorted_ok)


@pytest.mark.parametrize(
    ("marking", "paths"),
    [
        (
            Marking(tier="OFFICIAL", sensitive=True, handling="EMBARGOED"),
            ["$.marking.embargo_until", "$.marking.embargo_then"],
        ),
        (
            Marking(
                tier="OFFICIAL", sensitive=True, handling="EMBARGOED", embargo_until=EMBARGO_UNTIL
            ),
            ["$.marking.embargo_then"],
        ),
        (
            Marking(tier="OFFICIAL", sensitive=True, embargo_until=EMBARGO_UNTIL),
            ["$.marking.handling"],
        ),
        (
            Marking(
                tier="OFFICIAL",
                sensitive=True,
                handling="EMBARGOED",
                embargo_until=datetime(2026, 3, 1, 9, 30),  # naive, on purpose
                embargo_then="OFFICIAL",
            ),
            ["$.marking.embargo_until"],
        ),
        (
            Marking(
                tier="OFFICIAL",
                sensitive=True,
                handling="EMBARGOED",
                embargo_until=EMBARGO_UNTIL,
                embargo_then="PUBLIC",
            ),
            ["$.marking.embargo_then"],
        ),
        (
            Marking(
                tier="OFFICIAL",
                sensitive=True,
                handling="EMBARGOED",
                embargo_until=EMBARGO_UNTIL,
                embargo_then="OFFICIAL - EMBARGOED",
            ),
            ["$.marking.embargo_then"],
        ),
    ],
)
def test_mk07_embargo_needs_time_and_marking_after(marking: Marking, paths: list[str]) -> None:
    violations = check(marking)
    assert rules_of(violations) == ["MK-07"] * len(paths)
    assert [v.path for v in violations] == paths


def test_mk07_a_complete_embargo_passes() -> None:
    marking = Marking(
        tier="OFFICIAL",
        sensitive=True,
        handling="EMBARGOED",
        embargo_until=EMBARGO_UNTIL,
        embargo_then="OFFICIAL - FOR PUBLIC RELEASE",
    )
    assert check(marking) == []


def test_mk08_rel_eu_needs_the_uk_prefix() -> None:
    assert [
        (v.rule, v.path) for v in check(Marking(tier="OFFICIAL", sensitive=True, rel_eu=True))
    ] == [("MK-08", "$.marking.rel_eu")]
    assert check(Marking(tier="OFFICIAL", sensitive=True, uk_prefix=True, rel_eu=True)) == []
    result = parse("OFFICIAL-SENSITIVE\nREL-EU")
    assert result.marking is not None
    assert rules_of(check(result.marking)) == ["MK-08"]


@pytest.mark.parametrize("tier", ["SECRET", "TOP SECRET"])
def test_mk09_the_hub_carries_only_official(tier: str) -> None:
    violations = check(Marking(tier=tier))  # type: ignore[arg-type]
    assert [(v.rule, v.path) for v in violations] == [("MK-09", "$.marking.tier")]
    assert "Nothing was stored" in violations[0].message


def test_mk09_not_for_official() -> None:
    assert "MK-09" not in rules_of(check(OS_PERSONAL))


@pytest.mark.parametrize("kind", sorted(set(MESSAGE_KINDS) - {"note", "withdrawal"}))
def test_mk10_personal_kinds_are_at_least_official_sensitive(kind: str) -> None:
    violations = check(Marking(tier="OFFICIAL"), kind=kind)
    assert [(v.rule, v.path) for v in violations] == [("MK-10", "$.marking.sensitive")]
    assert "OFFICIAL-SENSITIVE" in violations[0].message
    assert check(OS, kind=kind) == []


@pytest.mark.parametrize("kind", ["note", "withdrawal"])
def test_mk10_notes_and_withdrawals_may_be_official(kind: str) -> None:
    assert check(Marking(tier="OFFICIAL"), kind=kind) == []


def test_mk11_recipient_accredited_below_the_marking() -> None:
    violations = check(OS, recipients=("police.ctp-sw", "education.school"))
    assert [(v.rule, v.path) for v in violations] == [("MK-11", "$.recipients[1]")]
    assert "education.school" in violations[0].message
    assert check(Marking(tier="OFFICIAL"), kind="note", recipients=("education.school",)) == []


def test_mk11_unknown_recipients_are_left_to_routing() -> None:
    assert check(OS, recipients=("police.ctp-sw", "probation.unknown")) == []


def test_mk11_unknown_accreditation_receives_nothing() -> None:
    fields = envelope(OS, recipients=("police.ctp-sw",))
    odd = PolicyFacts(
        sender=SENDER,
        recipients={"police.ctp-sw": Party("police.ctp-sw", "police", "")},
        today=TODAY,
    )
    assert rules_of(check_marking(fields, odd, registry())) == ["MK-11"]


def _reply(marking: Marking, answered: Marking, answers_sender: str | None) -> list[Violation]:
    request = envelope(answered, kind="information_request")
    reply = envelope(marking, kind="note")
    return check_marking(
        reply, facts(reply, answers=request, answers_sender=answers_sender), registry()
    )


def test_mk12_reply_not_marked_lower_than_what_it_answers() -> None:
    violations = _reply(Marking(tier="OFFICIAL"), OS, answers_sender="police.ctp-sw")
    assert [(v.rule, v.path) for v in violations] == [("MK-12", "$.marking.sensitive")]
    assert "Mark the reply OFFICIAL-SENSITIVE" in violations[0].message
    # Unknown originator: not the sender, so not allowed either.
    assert rules_of(_reply(Marking(tier="OFFICIAL"), OS, answers_sender=None)) == ["MK-12"]


def test_mk12_the_originator_may_downgrade_and_equal_or_higher_is_fine() -> None:
    assert _reply(Marking(tier="OFFICIAL"), OS, answers_sender=SENDER.node_id) == []
    assert _reply(OS, OS, answers_sender="police.ctp-sw") == []
    assert _reply(OS, Marking(tier="OFFICIAL"), answers_sender="police.ctp-sw") == []


def test_every_violation_is_returned_together() -> None:
    marking = Marking(
        tier="TOP SECRET",
        sensitive=True,
        handling="HMG_USE_ONLY",
        descriptors=("LEGAL",),
        national_caveats=("UK EYES ONLY", "FIVE EYES ONLY"),
        rel_eu=True,
        embargo_then="OFFICIAL",
    )
    violations = check(marking)
    assert rules_of(violations) == [
        "MK-02",
        "MK-05",
        "MK-05",
        "MK-06",
        "MK-07",
        "MK-08",
        "MK-09",
        "MK-09",
    ]
    low = envelope(
        Marking(tier="OFFICIAL", handling="RECIPIENTS_ONLY", rel_eu=True),
        kind="referral",
        recipients=("police.ctp-sw", "education.school"),
    )
    answered = envelope(OS, kind="information_request")
    violations = check_marking(low, facts(low, answers=answered), registry())
    assert rules_of(violations) == ["MK-04", "MK-08", "MK-10", "MK-12"]


def test_every_rule_id_used_is_in_the_registry() -> None:
    rule_ids = registry().rule_ids()
    texts = [
        "",
        "CONFIDENTIAL",
        "OFFICIAL - EMBARGOED",
        "WIBBLE",
        "TOP SECRET-SENSITIVE - HMG USE ONLY - LEGAL - UK EYES ONLY",
    ]
    used = {v.rule for text in texts for v in parse(text).violations}
    result = parse("TOP SECRET-SENSITIVE - HMG USE ONLY - LEGAL - UK EYES ONLY")
    assert result.marking is not None
    used |= set(rules_of(check(result.marking)))
    assert used <= rule_ids
    assert {f"MK-{n:02d}" for n in range(1, 14)} <= rule_ids


def test_messages_are_plain_english_sentences() -> None:
    marking = Marking(tier="SECRET", sensitive=True, descriptors=("LEGAL",), rel_eu=True)
    for violation in check(marking):
        assert violation.message[0].isalpha() or violation.message[0] == "-"
        assert "{" not in violation.message
        assert "Literal" not in violation.message


# --- properties (hypothesis) -----------------------------------------------------------

FRAGMENTS = [
    "OFFICIAL",
    "Official",
    "-SENSITIVE",
    " SENSITIVE",
    " SENSTIVE",
    "SECRET",
    "TOP SECRET",
    "UK ",
    "REL-EU",
    "REL EU",
    " - ",
    " \u2013 ",
    " \u2014 ",
    "-",
    ": ",
    "\n",
    "/",
    ", ",
    " ",
    "RECIPIENTS ONLY",
    "FOR PUBLIC RELEASE",
    "HMG USE ONLY",
    " USE ONLY",
    "HOME OFFICE",
    "EMBARGOED",
    "EYES ONLY",
    "US",
    "FIVE",
    "PERSONAL",
    " DATA",
    "LEGAL",
    "LPP",
    "(LPP)",
    "HR",
    "MANAGEMENT",
    "COMMERCIAL",
    "LOCSEN",
    "PROTECT",
    "RESTRICTED",
    "CONFIDENTIAL",
    "NOT PROTECTIVELY MARKED",
    "BADGER",
    ". This information will remain classified until ",
    "01/03/26 at 09:30",
    "2026-03-01T09:30Z",
    " BST",
    ", after which the information will be ",
    "\u200b",
    "\u00a0",
    "ß",
    "\uff2f",
]


MARKING_ALPHABET = [
    *string.ascii_uppercase,
    *string.digits,
    *" -/:,;.()&\n\t",
    "\u2013",
    "\u2014",
    "\u00a0",
    "\u200b",
]


def _check_parse_invariants(text: str, result: MarkingParse) -> None:
    assert result.original == text
    rule_ids = registry().rule_ids()
    assert all(v.rule in rule_ids for v in result.violations)
    assert all(v.path == "$.marking" for v in result.violations)
    refused = {"MK-01", "MK-13"} & set(rules_of(result.violations))
    assert (result.marking is None) == bool(refused)
    if result.marking is not None and not result.violations:
        # Idempotent: the canonical form reads back to itself, with nothing to report.
        again = parse(render_marking(result.marking))
        assert again.violations == ()
        assert again.marking is not None
        assert render_marking(again.marking) == render_marking(result.marking)


@PROPERTY_SETTINGS
@given(st.text())
def test_parse_never_raises_on_any_text(text: str) -> None:
    _check_parse_invariants(text, parse(text))


@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join))
def test_parse_never_raises_on_marking_like_text(text: str) -> None:
    _check_parse_invariants(text, parse(text))


@PROPERTY_SETTINGS
@given(
    st.text(
        alphabet=st.sampled_from(MARKING_ALPHABET),
        max_size=80,
    )
)
def test_parse_never_raises_on_marking_alphabet(text: str) -> None:
    _check_parse_invariants(text, parse(text))


# Words a generated organisation name must not use: they mean something in a marking.
_RESERVED_WORDS = frozenset(
    {
        "UK",
        "REL",
        "EU",
        "EYES",
        "USE",
        "ONLY",
        "HMG",
        "OFFICIAL",
        "SECRET",
        "TOP",
        "SENSITIVE",
        "SENSTIVE",
        "SENSITVE",
        "SENSATIVE",
        "SENSETIVE",
        "SENSITIV",
        "RECIPIENTS",
        "FOR",
        "PUBLIC",
        "RELEASE",
        "EMBARGOED",
        "PERSONAL",
        "DATA",
        "LEGAL",
        "PROFESSIONAL",
        "PRIVILEGE",
        "LPP",
        "MARKET",
        "COMMERCIAL",
        "HR",
        "MANAGEMENT",
        "LOCSEN",
        "UNCLASSIFIED",
        "UNCLAS",
        "NOT",
        "PROTECTIVELY",
        "MARKED",
        "NPM",
        "PROTECT",
        "RESTRICTED",
        "CONFIDENTIAL",
        "THIS",
        "INFORMATION",
        "WILL",
        "REMAIN",
    }
)
_ORG_WORDS = st.from_regex(r"[A-Z][A-Z&]{1,9}", fullmatch=True).filter(
    lambda w: w not in _RESERVED_WORDS
)
_ORG_NAMES = st.lists(_ORG_WORDS, min_size=1, max_size=3).map(" ".join)


def _allowed(kind: str, level: str) -> list[str]:
    markings = registry().markings
    if kind == "handling":
        return [h.id for h in markings.handling_instructions if level in h.allowed_with]
    return [d.id for d in markings.descriptors if d.scheme != "2014" and level in d.allowed_with]


@st.composite
def carried_markings(draw: st.DrawFn, *, allow_embargo: bool = True) -> Marking:
    """Any marking the hub carries and check_marking_rules accepts."""
    sensitive = draw(st.booleans())
    level = "OFFICIAL-SENSITIVE" if sensitive else "OFFICIAL"
    handlings = [h for h in _allowed("handling", level) if allow_embargo or h != "EMBARGOED"]
    handling = draw(st.none() | st.sampled_from(handlings))
    uk_prefix = draw(st.booleans())
    document: dict[str, Any] = {
        "tier": "OFFICIAL",
        "sensitive": sensitive,
        "uk_prefix": uk_prefix,
        "handling": handling,
        "descriptors": tuple(
            draw(st.lists(st.sampled_from(_allowed("descriptor", level)), max_size=4, unique=True))
        ),
        "rel_eu": uk_prefix and draw(st.booleans()),
    }
    if handling == "ORG_USE_ONLY":
        document["handling_orgs"] = tuple(
            draw(st.lists(_ORG_NAMES, min_size=1, max_size=3, unique=True))
        )
    if handling == "EMBARGOED":
        document["embargo_until"] = draw(
            st.datetimes(
                min_value=datetime(2000, 1, 1),  # hypothesis takes naive bounds
                max_value=datetime(2099, 12, 31),
                timezones=st.just(UTC),
            ).map(lambda d: d.replace(second=0, microsecond=0))
        )
        after = draw(carried_markings(allow_embargo=False))
        document["embargo_then"] = render_marking(after)
        if len(document["embargo_then"]) > 120:
            document["embargo_then"] = "OFFICIAL - FOR PUBLIC RELEASE"
    return Marking.model_validate(document)


@PROPERTY_SETTINGS
@given(carried_markings())
def test_round_trip_of_every_carried_marking(marking: Marking) -> None:
    assert check_marking_rules(marking, registry()) == []
    text = render_marking(marking)
    result = parse(text)
    assert result.violations == (), (text, result.violations)
    assert result.marking is not None
    assert render_marking(result.marking) == text
    assert result.marking == marking
    # Only LOCSEN (flagged for review) or an embargo time may leave a note.
    assert all("LOCSEN" in note for note in result.notes), result.notes


@st.composite
def any_markings(draw: st.DrawFn) -> Marking:
    """Markings the model accepts, valid or not."""
    document: dict[str, Any] = {
        "tier": draw(st.sampled_from(["OFFICIAL", "SECRET", "TOP SECRET"])),
        "sensitive": draw(st.booleans()),
        "uk_prefix": draw(st.booleans()),
        "rel_eu": draw(st.booleans()),
        "descriptors": tuple(
            draw(
                st.lists(
                    st.sampled_from([d.id for d in registry().markings.descriptors]),
                    max_size=3,
                )
            )
        ),
        "national_caveats": tuple(
            draw(
                st.lists(st.sampled_from(registry().markings.national_caveat_examples), max_size=2)
            )
        ),
    }
    handling = draw(
        st.none() | st.sampled_from([h.id for h in registry().markings.handling_instructions])
    )
    document["handling"] = handling
    if handling == "ORG_USE_ONLY":
        document["handling_orgs"] = tuple(draw(st.lists(_ORG_NAMES, min_size=1, max_size=2)))
    return Marking.model_validate(document)


@PROPERTY_SETTINGS
@given(any_markings())
def test_any_rendered_marking_parses_without_raising(marking: Marking) -> None:
    text = render_marking(marking)
    result = parse(text)
    _check_parse_invariants(text, result)
    check_marking_rules(marking, registry())
