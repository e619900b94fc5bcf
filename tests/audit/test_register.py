"""The per-subject disclosure register, over a scripted audit log.

The story (synthetic nodes and subjects): a school refers subject SUBJ-0001 to the local
authority and police together; police triage it to Channel; police ask health (approved
in part, released in two parts) and the local authority (refused); the local authority
opens a Channel case, sends the panel a case pack, the case is adopted, exits and has its
six-month review. Another subject's referral, request and release, a case pack for an
unrelated case and a refused release run alongside and must not appear.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from hub.audit.register import (
    DisclosedCategory,
    Disclosure,
    disclosure_register,
    render_register_text,
)
from hub.model import AuditEntry, ReleaseManifest, ScopeItem
from hub.policy.workflow import RequestState

SCHOOL = "education.kingsdown"
HEALTH = "health.bsw-icb"
POLICE = "police.ctp-sw"
LA = "la.wiltshire"
AGENCY_TYPES = {
    SCHOOL: "education",
    HEALTH: "health",
    POLICE: "police",
    LA: "local_authority",
}
SUBJECT = "SUBJ-0001"
OTHER_SUBJECT = "SUBJ-0002"
CASE = "CASE-0001"
OS = "OFFICIAL-SENSITIVE"
S38_HEALTH = ("CTSA2015-s38", "UKGDPR-A6-1e", "UKGDPR-A9-2g", "CLDC-PUBINT")


def mid(n: int) -> str:
    """A fixed UUIDv7-shaped message id."""
    return f"01900000-0000-7000-8000-{n:012x}"


def at(month: int, day: int, hour: int = 9, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def item(category: str, start: date | None = None, end: date | None = None) -> ScopeItem:
    return ScopeItem(
        category=category, period_from=start, period_to=end, justification_present=True
    )


def entry(**fields: Any) -> AuditEntry:
    fields.setdefault("action", "submitted")
    return AuditEntry(**fields)


# Message ids of the story.
REFERRAL = mid(0x101)
TRIAGE = mid(0x102)
REQUEST_A = mid(0x103)  # police -> health, approved in part, two releases
REQUEST_B = mid(0x104)  # police -> local authority, refused
DECISION_B = mid(0x105)
DECISION_A = mid(0x106)
RELEASE_A1 = mid(0x107)
RELEASE_A2 = mid(0x108)
CASE_OPEN = mid(0x109)
CONSENT = mid(0x10A)
CASE_PACK = mid(0x10B)
ADOPTED = mid(0x10C)
EXITED = mid(0x10D)
REVIEW_6M = mid(0x10E)
# The other subject, and noise.
REFERRAL_2 = mid(0x201)
TRIAGE_2 = mid(0x202)
REQUEST_C = mid(0x203)
DECISION_C = mid(0x204)
RELEASE_C1 = mid(0x205)
OTHER_CASE_PACK = mid(0x206)
REFUSED_RELEASE = mid(0x207)


def story_entries() -> list[AuditEntry]:
    """The audit log of the story, in the order the hub appended it."""
    return [
        entry(
            at=at(7, 1),
            actor=SCHOOL,
            role="DSL",
            kind="referral",
            message_id=REFERRAL,
            recipients=(LA, POLICE),
            subject_ref=SUBJECT,
            marking=OS,
            purpose="PREVENT_REFERRAL",
            gateways=("CTSA2015-s36", "UKGDPR-A6-1e", "CLDC-PUBINT"),
            scope=(
                item("education_attendance_exclusions", date(2025, 9, 1), date(2026, 6, 30)),
                item("safeguarding_flags"),
            ),
            consent_state="NOT_SOUGHT",
        ),
        entry(at=at(7, 1, 9, 1), action="delivered", actor=LA, message_id=REFERRAL),
        entry(at=at(7, 1, 9, 2), action="delivered", actor=POLICE, message_id=REFERRAL),
        entry(
            at=at(7, 3, 10),
            actor=POLICE,
            kind="referral_outcome",
            message_id=TRIAGE,
            recipients=(SCHOOL,),
            subject_ref=SUBJECT,
            in_reply_to=REFERRAL,
            marking=OS,
            purpose="PREVENT_REFERRAL",
            outcome="CHANNEL",
        ),
        entry(
            at=at(7, 6),
            actor=POLICE,
            kind="information_request",
            message_id=REQUEST_A,
            recipients=(HEALTH,),
            subject_ref=SUBJECT,
            marking=OS,
            purpose="PREVENT_TRIAGE",
            gateways=S38_HEALTH,
            scope=(
                item("gp_registration", date(2025, 1, 1), date(2026, 6, 30)),
                item("mental_health_diagnoses", date(2024, 7, 1), date(2026, 6, 30)),
                item("medication", date(2024, 7, 1), date(2026, 6, 30)),
            ),
            consent_state="NOT_SOUGHT",
        ),
        entry(at=at(7, 6, 9, 5), action="acknowledged", actor=HEALTH, message_id=REQUEST_A),
        entry(
            at=at(7, 6, 10),
            actor=POLICE,
            kind="information_request",
            message_id=REQUEST_B,
            recipients=(LA,),
            subject_ref=SUBJECT,
            marking=OS,
            purpose="PREVENT_TRIAGE",
            scope=(item("childrens_social_care", date(2024, 1, 1), date(2026, 6, 30)),),
            consent_state="NOT_SOUGHT",
        ),
        entry(
            at=at(7, 6, 15),
            actor=LA,
            kind="decision",
            message_id=DECISION_B,
            recipients=(POLICE,),
            subject_ref=SUBJECT,
            in_reply_to=REQUEST_B,
            marking=OS,
            purpose="PREVENT_TRIAGE",
            outcome="REFUSED",
        ),
        entry(
            at=at(7, 8),
            actor=HEALTH,
            kind="decision",
            message_id=DECISION_A,
            recipients=(POLICE,),
            subject_ref=SUBJECT,
            in_reply_to=REQUEST_A,
            marking=OS,
            purpose="PREVENT_TRIAGE",
            outcome="APPROVED_PARTIAL",
            scope=(
                item("gp_registration", date(2025, 1, 1), date(2026, 6, 30)),
                item("mental_health_diagnoses", date(2024, 7, 1), date(2026, 6, 30)),
            ),
        ),
        entry(
            at=at(7, 9, 14, 30),
            actor=HEALTH,
            kind="release",
            message_id=RELEASE_A1,
            recipients=(POLICE,),
            subject_ref=SUBJECT,
            in_reply_to=DECISION_A,
            marking=OS,
            purpose="PREVENT_TRIAGE",
            gateways=S38_HEALTH,
            scope=(item("gp_registration", date(2025, 1, 1), date(2026, 6, 30)),),
            consent_state="NOT_SOUGHT",
        ),
        entry(
            at=at(7, 10, 11),
            actor=HEALTH,
            kind="release",
            message_id=RELEASE_A2,
            recipients=(POLICE,),
            subject_ref=SUBJECT,
            in_reply_to=DECISION_A,
            marking=OS,
            purpose="PREVENT_TRIAGE",
            gateways=S38_HEALTH,
            scope=(item("mental_health_diagnoses", date(2024, 7, 1), date(2026, 6, 30)),),
            consent_state="NOT_SOUGHT",
        ),
        entry(
            at=at(7, 15),
            actor=LA,
            kind="case_open",
            message_id=CASE_OPEN,
            recipients=(POLICE, HEALTH),
            subject_ref=SUBJECT,
            case_ref=CASE,
            marking=OS,
            purpose="CHANNEL_ASSESSMENT",
        ),
        entry(
            at=at(7, 16),
            actor=LA,
            kind="consent_record",
            message_id=CONSENT,
            recipients=(POLICE, HEALTH),
            case_ref=CASE,
            marking=OS,
            purpose="CHANNEL_ASSESSMENT",
            consent_state="OBTAINED",
        ),
        # The case pack carries only the case reference: the register ties it to the
        # subject through the case.
        entry(
            at=at(7, 20, 10),
            actor=LA,
            kind="case_pack",
            message_id=CASE_PACK,
            recipients=(POLICE, HEALTH),
            case_ref=CASE,
            marking="OFFICIAL-SENSITIVE PERSONAL DATA",
            purpose="CHANNEL_ASSESSMENT",
            gateways=("CTSA2015-s36", "UKGDPR-A6-1e"),
            scope=(item("childrens_social_care", date(2025, 1, 1), date(2026, 7, 15)),),
            consent_state="OBTAINED",
        ),
        entry(
            at=at(7, 22),
            actor=LA,
            kind="panel_outcome",
            message_id=ADOPTED,
            recipients=(POLICE, HEALTH),
            case_ref=CASE,
            marking=OS,
            purpose="CHANNEL_ASSESSMENT",
            outcome="ADOPTED",
        ),
        entry(
            at=at(8, 28),
            actor=LA,
            kind="panel_outcome",
            message_id=EXITED,
            recipients=(POLICE, HEALTH),
            case_ref=CASE,
            marking=OS,
            purpose="CHANNEL_SUPPORT",
            outcome="EXITED",
        ),
        entry(
            at=at(2, 26, year=2027),
            actor=LA,
            kind="case_review",
            message_id=REVIEW_6M,
            recipients=(POLICE, HEALTH),
            case_ref=CASE,
            marking=OS,
            purpose="CHANNEL_REVIEW",
        ),
    ]


def other_entries() -> list[AuditEntry]:
    """Another subject's workflows and noise that must stay out of SUBJ-0001's register."""
    return [
        entry(
            at=at(8, 3),
            actor=LA,
            kind="information_request",
            message_id=REQUEST_C,
            recipients=(HEALTH,),
            subject_ref=OTHER_SUBJECT,
            marking=OS,
            purpose="CHANNEL_ASSESSMENT",
        ),
        entry(
            at=at(8, 4),
            actor=HEALTH,
            kind="decision",
            message_id=DECISION_C,
            recipients=(LA,),
            subject_ref=OTHER_SUBJECT,
            in_reply_to=REQUEST_C,
            marking=OS,
            purpose="CHANNEL_ASSESSMENT",
            outcome="APPROVED_FULL",
        ),
        entry(
            at=at(8, 5),
            actor=HEALTH,
            kind="release",
            message_id=RELEASE_C1,
            recipients=(LA,),
            subject_ref=OTHER_SUBJECT,
            in_reply_to=DECISION_C,
            marking=OS,
            purpose="CHANNEL_ASSESSMENT",
            gateways=S38_HEALTH,
            scope=(item("medication", date(2026, 1, 1), date(2026, 7, 31)),),
            consent_state="OBTAINED",
        ),
        entry(
            at=at(8, 12),
            actor=HEALTH,
            kind="referral",
            message_id=REFERRAL_2,
            recipients=(LA, POLICE),
            subject_ref=OTHER_SUBJECT,
            marking=OS,
            purpose="PREVENT_REFERRAL",
            consent_state="OBTAINED",
        ),
        entry(
            at=at(8, 15),
            actor=POLICE,
            kind="referral_outcome",
            message_id=TRIAGE_2,
            recipients=(HEALTH,),
            subject_ref=OTHER_SUBJECT,
            in_reply_to=REFERRAL_2,
            marking=OS,
            purpose="PREVENT_REFERRAL",
            outcome="SIGNPOSTED",
        ),
        entry(
            at=at(8, 20),
            actor=LA,
            kind="case_pack",
            message_id=OTHER_CASE_PACK,
            recipients=(POLICE,),
            case_ref="CASE-0002",
            marking=OS,
            purpose="CHANNEL_SUPPORT",
        ),
        # A release the hub refused is not a disclosure.
        entry(
            at=at(8, 20, 12),
            action="refused",
            actor=HEALTH,
            kind="release",
            message_id=REFUSED_RELEASE,
            recipients=(POLICE,),
            subject_ref=SUBJECT,
            in_reply_to=DECISION_B,
            rules=("WF-06",),
        ),
    ]


def full_log() -> list[AuditEntry]:
    return sorted([*story_entries(), *other_entries()], key=lambda e: e.at)


EXPECTED = [
    Disclosure(
        kind="referral",
        message_id=REFERRAL,
        at=at(7, 1),
        discloser=SCHOOL,
        recipients=(LA, POLICE),
        subject_ref=SUBJECT,
        scope=(
            DisclosedCategory(
                category="education_attendance_exclusions",
                period_from=date(2025, 9, 1),
                period_to=date(2026, 6, 30),
            ),
            DisclosedCategory(category="safeguarding_flags"),
        ),
        gateways=("CTSA2015-s36", "UKGDPR-A6-1e", "CLDC-PUBINT"),
        consent_state="NOT_SOUGHT",
        purpose="PREVENT_REFERRAL",
        marking=OS,
    ),
    Disclosure(
        kind="release",
        message_id=RELEASE_A1,
        at=at(7, 9, 14, 30),
        discloser=HEALTH,
        recipients=(POLICE,),
        subject_ref=SUBJECT,
        scope=(
            DisclosedCategory(
                category="gp_registration",
                period_from=date(2025, 1, 1),
                period_to=date(2026, 6, 30),
            ),
        ),
        gateways=S38_HEALTH,
        consent_state="NOT_SOUGHT",
        purpose="PREVENT_TRIAGE",
        request_id=REQUEST_A,
        decision_id=DECISION_A,
        decision_outcome="APPROVED_PARTIAL",
        decided_by=HEALTH,
        marking=OS,
    ),
    Disclosure(
        kind="release",
        message_id=RELEASE_A2,
        at=at(7, 10, 11),
        discloser=HEALTH,
        recipients=(POLICE,),
        subject_ref=SUBJECT,
        scope=(
            DisclosedCategory(
                category="mental_health_diagnoses",
                period_from=date(2024, 7, 1),
                period_to=date(2026, 6, 30),
            ),
        ),
        gateways=S38_HEALTH,
        consent_state="NOT_SOUGHT",
        purpose="PREVENT_TRIAGE",
        request_id=REQUEST_A,
        decision_id=DECISION_A,
        decision_outcome="APPROVED_PARTIAL",
        decided_by=HEALTH,
        marking=OS,
    ),
    Disclosure(
        kind="case_pack",
        message_id=CASE_PACK,
        at=at(7, 20, 10),
        discloser=LA,
        recipients=(POLICE, HEALTH),
        subject_ref=SUBJECT,
        case_ref=CASE,
        scope=(
            DisclosedCategory(
                category="childrens_social_care",
                period_from=date(2025, 1, 1),
                period_to=date(2026, 7, 15),
            ),
        ),
        gateways=("CTSA2015-s36", "UKGDPR-A6-1e"),
        consent_state="OBTAINED",
        purpose="CHANNEL_ASSESSMENT",
        marking="OFFICIAL-SENSITIVE PERSONAL DATA",
    ),
]


def test_register_lists_every_disclosure_about_the_subject_exactly() -> None:
    assert disclosure_register(SUBJECT, full_log()) == EXPECTED


def test_register_answers_who_shared_what_with_whom_when() -> None:
    rows = [
        (d.at, d.kind, d.discloser, d.recipients, d.categories)
        for d in disclosure_register(SUBJECT, full_log())
    ]
    assert rows == [
        (
            at(7, 1),
            "referral",
            SCHOOL,
            (LA, POLICE),
            ("education_attendance_exclusions", "safeguarding_flags"),
        ),
        (at(7, 9, 14, 30), "release", HEALTH, (POLICE,), ("gp_registration",)),
        (at(7, 10, 11), "release", HEALTH, (POLICE,), ("mental_health_diagnoses",)),
        (at(7, 20, 10), "case_pack", LA, (POLICE, HEALTH), ("childrens_social_care",)),
    ]


def test_refused_request_leaves_no_disclosure() -> None:
    register = disclosure_register(SUBJECT, full_log())
    assert REQUEST_B not in {d.request_id for d in register}
    assert DECISION_B not in {d.decision_id for d in register}
    assert REFUSED_RELEASE not in {d.message_id for d in register}


def test_register_is_sorted_by_time_whatever_the_input_order() -> None:
    assert disclosure_register(SUBJECT, list(reversed(full_log()))) == EXPECTED


def test_other_subjects_register_holds_only_their_disclosures() -> None:
    register = disclosure_register(OTHER_SUBJECT, full_log())
    assert [(d.kind, d.message_id) for d in register] == [
        ("release", RELEASE_C1),
        ("referral", REFERRAL_2),
    ]
    release = register[0]
    assert (release.request_id, release.decision_id, release.decision_outcome) == (
        REQUEST_C,
        DECISION_C,
        "APPROVED_FULL",
    )
    assert release.decided_by == HEALTH


def test_unknown_subject_has_an_empty_register() -> None:
    assert disclosure_register("SUBJ-9999", full_log()) == []


def test_request_state_fills_in_a_decision_missing_from_the_entries() -> None:
    releases_only = [e for e in story_entries() if e.kind == "release"]
    state = RequestState(
        request_id=REQUEST_A,
        requester=POLICE,
        disclosers=(HEALTH,),
        purpose="PREVENT_TRIAGE",
        urgency="routine",
        submitted_at=at(7, 6),
        decision_id=DECISION_A,
        decision_outcome="APPROVED_PARTIAL",
        decided_by=HEALTH,
        decided_at=at(7, 8),
        releases=2,
    )

    without = disclosure_register(SUBJECT, releases_only)
    with_state = disclosure_register(SUBJECT, releases_only, requests={REQUEST_A: state})

    assert [(d.request_id, d.decision_id, d.decision_outcome) for d in without] == [
        (None, DECISION_A, None),
        (None, DECISION_A, None),
    ]
    assert with_state == EXPECTED[1:3]


def test_to_json_is_plain_json() -> None:
    doc = EXPECTED[1].to_json()
    assert json.loads(json.dumps(doc)) == doc
    assert doc["at"] == "2026-07-09T14:30:00Z"
    assert doc["scope"] == [
        {"category": "gp_registration", "period_from": "2025-01-01", "period_to": "2026-06-30"}
    ]
    assert doc["request_id"] == REQUEST_A
    assert doc["decided_by"] == HEALTH


def test_disclosure_is_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        EXPECTED[0].discloser = HEALTH  # type: ignore[misc]


def test_render_register_text_is_a_readable_table() -> None:
    text = render_register_text(disclosure_register(SUBJECT, full_log()))
    lines = text.splitlines()

    header = [cell.strip() for cell in lines[0].split(" | ")]
    assert header == [
        "When (UTC)",
        "Kind",
        "From",
        "To",
        "Categories and periods",
        "Gateways",
        "Consent",
        "Purpose",
        "Answers",
        "Decision",
        "Marking",
        "Message",
        "Rejected by",
    ]
    assert set(lines[1]) <= {"-", "+"}
    first_release = next(i for i, line in enumerate(lines) if RELEASE_A1 in line)
    cells = [cell.strip() for cell in lines[first_release].split(" | ")]
    assert cells == [
        "2026-07-09 14:30:00Z",
        "release",
        HEALTH,
        POLICE,
        "gp_registration 2025-01-01..2026-06-30",
        "CTSA2015-s38",
        "NOT_SOUGHT",
        "PREVENT_TRIAGE",
        f"request {REQUEST_A}",
        f"APPROVED_PARTIAL by {HEALTH}",
        OS,
        RELEASE_A1,
        "-",
    ]
    continuation = [cell.strip() for cell in lines[first_release + 1].split(" | ")]
    assert continuation[5] == "UKGDPR-A6-1e"
    assert continuation[8] == f"decision {DECISION_A}"
    assert "safeguarding_flags (no period)" in text
    assert f"case {CASE}" in text
    assert lines[-1] == "4 disclosures."
    # Columns line up: every separator sits where the header's does.
    bars = [i for i, ch in enumerate(lines[0]) if ch == "|"]
    assert len(bars) == 12
    for line in lines[2:-2]:
        if set(line) <= {"-", "+"}:
            assert [i for i, ch in enumerate(line) if ch == "+"] == bars
        else:
            assert all(line[i] == "|" for i in bars if i < len(line))


def test_render_empty_register() -> None:
    assert render_register_text([]) == "No disclosures recorded.\n"


def test_render_replaces_control_characters() -> None:
    odd = EXPECTED[0].model_copy(update={"marking": "OFFICIAL\nSENSITIVE"})
    text = render_register_text([odd])
    assert "OFFICIAL?SENSITIVE" in text
    # Header, rule, a three-line row (three gateways), a blank line and the count.
    assert len(text.splitlines()) == 7


def test_a_release_shows_its_manifest_and_any_rejection() -> None:
    """What was actually sent (the signed manifest) and who refused it on arrival."""
    manifest = ReleaseManifest.model_validate_json(
        json.dumps(
            {
                "content_sha256": "ab" * 32,
                "content_size": 2048,
                "resource_count": 3,
                "categories": [
                    {
                        "category": "medication",
                        "period_from": "2025-11-01",
                        "period_to": "2026-10-31",
                        "resources": {"MedicationStatement": 3},
                    }
                ],
            }
        )
    )
    release_id = mid(0x301)
    entries = [
        entry(
            at=at(8, 1),
            actor=HEALTH,
            kind="release",
            message_id=release_id,
            recipients=(POLICE,),
            subject_ref=SUBJECT,
            scope=(item("medication", date(2025, 11, 1), date(2026, 10, 31)),),
            manifest=manifest,
        ),
        entry(
            at=at(8, 1, 10),
            action="rejected",
            actor=POLICE,
            kind="release",
            message_id=release_id,
            subject_ref=SUBJECT,
            rules=("MAN-05", "REL-03"),
        ),
        # A rejection of another message does not attach to this one.
        entry(at=at(8, 2), action="rejected", actor=POLICE, message_id=mid(0x302)),
    ]
    (row,) = disclosure_register(SUBJECT, entries)
    assert row.resource_count == 3
    assert row.content_sha256 == "ab" * 32
    assert [(c.category, c.resources) for c in row.released] == [
        ("medication", {"MedicationStatement": 3})
    ]
    assert [(r.node, r.rules) for r in row.rejected_by] == [(POLICE, ("MAN-05", "REL-03"))]
    text = render_register_text([row])
    assert "medication 2025-11-01..2026-10-31: 3 MedicationStatement" in text
    assert f"{POLICE} (MAN-05, REL-03)" in text
    assert row.to_json()["rejected_by"][0]["rules"] == ["MAN-05", "REL-03"]
