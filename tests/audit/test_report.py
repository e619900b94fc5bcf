"""The assurance report, over the scripted story plus a quarter's other traffic.

Every expected number below is counted by hand from the entries and states built here;
the comments show the working.
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from functools import cache

import pytest

from hub.audit.report import (
    AssuranceReport,
    OverdueRequest,
    ReviewDue,
    assurance_report,
    nearest_rank,
    parse_period,
)
from hub.model import AuditEntry
from hub.policy.registry import Registry, load_registry
from hub.policy.workflow import CaseState, RequestState
from tests.audit.test_register import (
    AGENCY_TYPES,
    DECISION_A,
    DECISION_B,
    DECISION_C,
    HEALTH,
    LA,
    OS,
    POLICE,
    REQUEST_A,
    REQUEST_B,
    REQUEST_C,
    SCHOOL,
    at,
    entry,
    full_log,
    mid,
)

SVG = "{http://www.w3.org/2000/svg}"
OTHER_POLICE = "police.met-ctp"
AGENCIES = {**AGENCY_TYPES, OTHER_POLICE: "police"}
NOW = at(10, 2)  # 2026-10-02 09:00Z, the morning the Q3 report is run

REQUEST_D = mid(0x301)
REQUEST_E = mid(0x302)
REQUEST_F = mid(0x303)
REQUEST_G = mid(0x304)
REQUEST_I = mid(0x305)
REQUEST_J = mid(0x306)


@cache
def registry() -> Registry:
    return load_registry()


def quarter_entries() -> list[AuditEntry]:
    """Traffic beyond the story: more decisions, a third referral, refusals, edges."""
    common = {"marking": OS, "purpose": "CHANNEL_ASSESSMENT"}
    return [
        # Request G was submitted in Q2 (2026-06-29); its decision falls in Q3.
        entry(
            at=at(7, 2),
            actor=HEALTH,
            kind="decision",
            message_id=mid(0x311),
            recipients=(LA,),
            in_reply_to=REQUEST_G,
            outcome="APPROVED_FULL",
            **common,
        ),
        entry(
            at=at(8, 14, 13),
            actor=POLICE,
            kind="decision",
            message_id=mid(0x312),
            recipients=(LA,),
            in_reply_to=REQUEST_D,
            outcome="RETURNED_INCOMPLETE",
            **common,
        ),
        entry(
            at=at(9, 2),
            actor=HEALTH,
            kind="decision",
            message_id=mid(0x313),
            recipients=(POLICE,),
            in_reply_to=REQUEST_E,
            outcome="ESCALATED",
            **common,
        ),
        # A local authority's referral needs only the police; two police nodes count
        # as one referral received by the police.
        entry(
            at=at(9, 2, 12),
            actor=LA,
            kind="referral",
            message_id=mid(0x314),
            recipients=(POLICE, OTHER_POLICE),
            subject_ref="SUBJ-0003",
            marking=OS,
            purpose="PREVENT_REFERRAL",
        ),
        entry(at=at(7, 5), action="refused", actor=SCHOOL, kind="referral", rules=("WF-01",)),
        entry(
            at=at(9, 5),
            action="refused",
            actor=HEALTH,
            kind="release",
            rules=("SCOPE-03", "LB-02"),
        ),
        # A rule named twice in one refusal counts once.
        entry(
            at=at(9, 6),
            action="refused",
            actor=POLICE,
            kind="information_request",
            rules=("SCOPE-03", "SCOPE-03"),
        ),
        # Outside Q3 by a second either side: not counted.
        entry(
            at=datetime(2026, 6, 30, 23, 59, 59, tzinfo=UTC),
            action="refused",
            actor=SCHOOL,
            kind="referral",
            rules=("WF-01",),
        ),
        entry(
            at=datetime(2026, 10, 1, tzinfo=UTC),
            action="refused",
            actor=SCHOOL,
            kind="referral",
            rules=("WF-01",),
        ),
        entry(
            at=datetime(2026, 10, 1, tzinfo=UTC),
            actor=HEALTH,
            kind="release",
            message_id=mid(0x315),
            recipients=(LA,),
            in_reply_to=mid(0x311),
            **common,
        ),
    ]


def request(
    request_id: str,
    requester: str,
    disclosers: tuple[str, ...],
    submitted_at: datetime,
    *,
    purpose: str = "PREVENT_TRIAGE",
    urgency: str = "routine",
    outcome: str | None = None,
    decided_by: str | None = None,
    decided_at: datetime | None = None,
    decision_id: str | None = None,
    releases: int = 0,
) -> RequestState:
    return RequestState(
        request_id=request_id,
        requester=requester,
        disclosers=disclosers,
        purpose=purpose,
        urgency=urgency,
        submitted_at=submitted_at,
        decision_id=decision_id,
        decision_outcome=outcome,
        decided_by=decided_by,
        decided_at=decided_at,
        releases=releases,
    )


def requests() -> list[RequestState]:
    """The request states as at NOW. PREVENT_TRIAGE: 168 h routine; CHANNEL_ASSESSMENT:
    168 h routine, 48 h urgent (schemas/registry/purposes.yaml)."""
    return [
        # A: 07-06 09:00 -> 07-08 09:00 = 48 h.
        request(
            REQUEST_A,
            POLICE,
            (HEALTH,),
            at(7, 6),
            outcome="APPROVED_PARTIAL",
            decided_by=HEALTH,
            decided_at=at(7, 8),
            decision_id=DECISION_A,
            releases=2,
        ),
        # B: 07-06 10:00 -> 15:00 = 5 h.
        request(
            REQUEST_B,
            POLICE,
            (LA,),
            at(7, 6, 10),
            outcome="REFUSED",
            decided_by=LA,
            decided_at=at(7, 6, 15),
            decision_id=DECISION_B,
        ),
        # C: 08-03 09:00 -> 08-04 09:00 = 24 h.
        request(
            REQUEST_C,
            LA,
            (HEALTH,),
            at(8, 3),
            purpose="CHANNEL_ASSESSMENT",
            outcome="APPROVED_FULL",
            decided_by=HEALTH,
            decided_at=at(8, 4),
            decision_id=DECISION_C,
            releases=1,
        ),
        # D: 08-10 09:00 -> 08-14 13:00 = 96 h + 4 h = 100 h.
        request(
            REQUEST_D,
            LA,
            (POLICE,),
            at(8, 10),
            purpose="CHANNEL_ASSESSMENT",
            outcome="RETURNED_INCOMPLETE",
            decided_by=POLICE,
            decided_at=at(8, 14, 13),
        ),
        # E: escalated, so still awaiting its decision: not timed; due 09-08 09:00,
        # overdue at NOW by 24 days = 576 h.
        request(
            REQUEST_E,
            POLICE,
            (HEALTH,),
            at(9, 1),
            outcome="ESCALATED",
            decided_by=HEALTH,
            decided_at=at(9, 2),
        ),
        # F: urgent, 48 h: due 09-30 09:00, overdue at NOW by 48 h.
        request(
            REQUEST_F, LA, (POLICE,), at(9, 28), purpose="CHANNEL_ASSESSMENT", urgency="urgent"
        ),
        # I: asked of health and the local authority; due 10-07: not yet overdue.
        request(REQUEST_I, POLICE, (HEALTH, LA), at(9, 30)),
        # G: submitted in Q2, decided in Q3: not a Q3 request, not timed.
        request(
            REQUEST_G,
            LA,
            (HEALTH,),
            at(6, 29),
            purpose="CHANNEL_ASSESSMENT",
            outcome="APPROVED_FULL",
            decided_by=HEALTH,
            decided_at=at(7, 2),
        ),
        # J: submitted in Q2 and still undecided: due 06-27 09:00, overdue at NOW by
        # 4 + 31 + 31 + 30 + 1 = 97 days = 2328 h.
        request(REQUEST_J, POLICE, (HEALTH,), at(6, 20)),
    ]


def case(
    ref: str,
    stage: str,
    exited_on: date | None = None,
    reviews: tuple[str, ...] = (),
) -> CaseState:
    return CaseState.model_validate(
        {
            "case_ref": ref,
            "opened_by": LA,
            "chair": LA,
            "members": ((POLICE, "POLICE_PREVENT"), (HEALTH, "HEALTH")),
            "stage": stage,
            "exited_on": exited_on,
            "reviews": reviews,
            "consent": "GIVEN",
        }
    )


def cases() -> list[CaseState]:
    """Case states as at NOW. Reviews fall due 182 and 365 days after exit."""
    return [
        # The story's case: exited 2026-08-28, six-month review due 2027-02-26.
        case("CASE-0001", "EXITED", date(2026, 8, 28)),
        # 2026-02-01 + 182 d = 2026-08-02: due in Q3.
        case("CASE-0002", "EXITED", date(2026, 2, 1)),
        # Six-month review done; 2025-09-15 + 365 d = 2026-09-15: due in Q3.
        case("CASE-0003", "EXITED", date(2025, 9, 15), ("6_MONTHS",)),
        # Neither review done: 2025-09-30 and 2026-04-01, both before the period's end.
        case("CASE-0004", "EXITED", date(2025, 4, 1)),
        case("CASE-0005", "SUPPORT"),
        case("CASE-0006", "OPEN"),
        case("CASE-0007", "CLOSED", date(2025, 1, 1), ("6_MONTHS", "12_MONTHS")),
        # 2026-03-31 + 182 d = 2026-09-29, the last-but-one day of Q3: due.
        case("CASE-0008", "EXITED", date(2026, 3, 31)),
        # 2026-04-02 + 182 d = 2026-10-01, the first day of Q4: not due in Q3.
        case("CASE-0009", "EXITED", date(2026, 4, 2)),
        case("CASE-0010", "NOT_ADOPTED_REFERRED_ON"),
    ]


def q3_report() -> AssuranceReport:
    return assurance_report(
        "2026Q3",
        [*full_log(), *quarter_entries()],
        requests(),
        cases(),
        AGENCIES,
        registry(),
        NOW,
    )


# -- the numbers -------------------------------------------------------------------------


def test_quarter_report_counts_exactly() -> None:
    report = q3_report()

    assert report.period == "2026Q3"
    assert report.period_start == datetime(2026, 7, 1, tzinfo=UTC)
    assert report.period_end == datetime(2026, 10, 1, tzinfo=UTC)
    assert report.generated_at == NOW
    # Referrals: school (story), health (other subject), local authority (SUBJ-0003).
    assert report.referrals == 3
    assert report.referrals_made_by_agency == {
        "education": 1,
        "health": 1,
        "local_authority": 1,
    }
    # Two went to the LA and police; the third to two police nodes (police once).
    assert report.referrals_received_by_agency == {"local_authority": 2, "police": 3}
    assert report.triage_outcomes == {"NFA": 0, "SIGNPOSTED": 1, "CHANNEL": 1, "POLICE_LED": 0}
    # A, B, C, D, E, F, I submitted in Q3 (G and J in Q2); I asked health and the LA.
    assert report.requests_submitted == 7
    assert report.requests_received_by_agency == {
        "health": 4,
        "local_authority": 2,
        "police": 2,
    }
    # Decision entries in Q3: A partial, B refused, C full, D returned, E escalated and
    # G full (G's request is from Q2; its decision is a Q3 decision).
    assert report.decisions_by_outcome == {
        "APPROVED_FULL": 2,
        "APPROVED_PARTIAL": 1,
        "REFUSED": 1,
        "RETURNED_INCOMPLETE": 1,
        "ESCALATED": 1,
    }
    # Timed: Q3 requests with a final decision: 5, 24, 48, 100 hours.
    # Median = (24 + 48) / 2 = 36; p90 nearest rank = ceil(0.9 * 4) = 4th = 100.
    assert report.decisions_timed == 4
    assert report.median_hours_to_decision == 36.0
    assert report.p90_hours_to_decision == 100.0
    assert report.overdue_requests == (
        OverdueRequest(
            request_id=REQUEST_J,
            purpose="PREVENT_TRIAGE",
            urgency="routine",
            submitted_at=at(6, 20),
            due_at=at(6, 27),
            hours_overdue=2328.0,
        ),
        OverdueRequest(
            request_id=REQUEST_E,
            purpose="PREVENT_TRIAGE",
            urgency="routine",
            submitted_at=at(9, 1),
            due_at=at(9, 8),
            hours_overdue=576.0,
        ),
        OverdueRequest(
            request_id=REQUEST_F,
            purpose="CHANNEL_ASSESSMENT",
            urgency="urgent",
            submitted_at=at(9, 28),
            due_at=at(9, 30),
            hours_overdue=48.0,
        ),
    )
    # Releases A1, A2 and C1; the one at 2026-10-01 00:00 is Q4.
    assert report.releases == 3
    # 07-05 WF-01, 08-20 WF-06, 09-05 SCOPE-03 + LB-02, 09-06 SCOPE-03 (named twice).
    assert report.refusals == 4
    assert report.refusals_by_rule == {"LB-02": 1, "SCOPE-03": 2, "WF-01": 1, "WF-06": 1}
    assert report.cases_by_stage == {
        "OPEN": 1,
        "CONSENT_SOUGHT": 0,
        "SUPPORT": 1,
        "NOT_ADOPTED_NFA": 0,
        "NOT_ADOPTED_REFERRED_ON": 1,
        "EXITED": 6,
        "CLOSED": 1,
    }
    assert report.reviews_due == (
        ReviewDue(case_ref="CASE-0004", review_point="6_MONTHS", due_on=date(2025, 9, 30)),
        ReviewDue(case_ref="CASE-0004", review_point="12_MONTHS", due_on=date(2026, 4, 1)),
        ReviewDue(case_ref="CASE-0002", review_point="6_MONTHS", due_on=date(2026, 8, 2)),
        ReviewDue(case_ref="CASE-0003", review_point="12_MONTHS", due_on=date(2026, 9, 15)),
        ReviewDue(case_ref="CASE-0008", review_point="6_MONTHS", due_on=date(2026, 9, 29)),
    )


def test_median_of_an_odd_count_and_nearest_rank_p90() -> None:
    # Add a fifth timed request of 3 h: sorted 3, 5, 24, 48, 100.
    # Median = 3rd = 24; p90 = ceil(0.9 * 5) = 5th = 100.
    extra = request(
        mid(0x399), POLICE, (HEALTH,), at(9, 1), outcome="REFUSED", decided_at=at(9, 1, 12)
    )
    report = assurance_report("2026Q3", [], [*requests(), extra], [], AGENCIES, registry(), NOW)
    assert (report.decisions_timed, report.median_hours_to_decision) == (5, 24.0)
    assert report.p90_hours_to_decision == 100.0


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 11)]
    assert nearest_rank(values, 90) == 9.0
    assert nearest_rank(values, 91) == 10.0
    assert nearest_rank(values, 50) == 5.0
    assert nearest_rank(values, 100) == 10.0
    assert nearest_rank(values, 0) == 1.0
    assert nearest_rank([7.5], 90) == 7.5
    # 7 % of 100 is exactly rank 7 (floating point would make it 7.000000000000001 -> 8).
    assert nearest_rank([float(v) for v in range(1, 101)], 7) == 7.0
    with pytest.raises(ValueError, match="no values"):
        nearest_rank([], 90)


def test_times_are_none_when_nothing_was_decided() -> None:
    report = assurance_report(
        "2026Q3",
        [],
        [request(REQUEST_I, POLICE, (HEALTH,), at(9, 30))],
        [],
        AGENCIES,
        registry(),
        NOW,
    )
    assert report.decisions_timed == 0
    assert report.median_hours_to_decision is None
    assert report.p90_hours_to_decision is None
    assert report.to_json()["median_hours_to_decision"] is None


def test_overdue_starts_the_moment_after_the_deadline() -> None:
    # Urgent PREVENT_TRIAGE: 24 hours, due 2026-09-02 09:00.
    pending = request(REQUEST_I, POLICE, (HEALTH,), at(9, 1), urgency="urgent")
    due = at(9, 2)

    def overdue(now: datetime) -> tuple[OverdueRequest, ...]:
        return assurance_report(
            "2026Q3", [], [pending], [], AGENCIES, registry(), now
        ).overdue_requests

    assert overdue(due) == ()
    later = overdue(due + timedelta(minutes=90))
    assert [(o.request_id, o.due_at, o.hours_overdue) for o in later] == [(REQUEST_I, due, 1.5)]
    decided = pending.model_copy(
        update={"decision_outcome": "REFUSED", "decided_at": at(9, 3), "decided_by": HEALTH}
    )
    assert (
        assurance_report(
            "2026Q3", [], [decided], [], AGENCIES, registry(), due + timedelta(days=30)
        ).overdue_requests
        == ()
    )


def test_reviews_due_follow_the_story_case() -> None:
    exited = case("CASE-0001", "EXITED", date(2026, 8, 28))
    reviewed = exited.model_copy(update={"reviews": ("6_MONTHS",)})

    def due(period: str, state: CaseState) -> tuple[ReviewDue, ...]:
        return assurance_report(
            period, [], [], [state], AGENCIES, registry(), at(3, 31, year=2027)
        ).reviews_due

    assert due("2026Q4", exited) == ()
    assert due("2027Q1", exited) == (
        ReviewDue(case_ref="CASE-0001", review_point="6_MONTHS", due_on=date(2027, 2, 26)),
    )
    # A month period ending the day before the review date does not list it.
    assert due("2027-01", exited) == ()
    # Once the six-month review is recorded, nothing is due until 2027-08-28.
    assert due("2027Q1", reviewed) == ()
    assert due("2027Q3", reviewed) == (
        ReviewDue(case_ref="CASE-0001", review_point="12_MONTHS", due_on=date(2027, 8, 28)),
    )


def test_unmapped_nodes_count_as_unknown_agency() -> None:
    referral = entry(
        at=at(7, 1),
        actor="voluntary.youthreach",
        kind="referral",
        message_id=mid(0x398),
        recipients=(LA, POLICE),
    )
    report = assurance_report("2026Q3", [referral], [], [], AGENCIES, registry(), NOW)
    assert report.referrals_made_by_agency == {"unknown": 1}
    assert report.referrals_received_by_agency == {"local_authority": 1, "police": 1}


def test_now_must_carry_a_time_zone() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        assurance_report("2026Q3", [], [], [], AGENCIES, registry(), datetime(2026, 10, 2))


def test_bad_period_is_refused_by_the_report() -> None:
    with pytest.raises(ValueError, match="unrecognised reporting period 'Q3'"):
        assurance_report("Q3", [], [], [], AGENCIES, registry(), NOW)


# -- outputs -----------------------------------------------------------------------------


def test_to_json_is_plain_json() -> None:
    doc = q3_report().to_json()
    assert json.loads(json.dumps(doc)) == doc
    assert doc["period_start"] == "2026-07-01T00:00:00Z"
    assert doc["overdue_requests"][2]["due_at"] == "2026-09-30T09:00:00Z"
    assert doc["reviews_due"][0] == {
        "case_ref": "CASE-0004",
        "review_point": "6_MONTHS",
        "due_on": "2025-09-30",
    }


def test_csv_round_trips_through_the_csv_module() -> None:
    report = q3_report()
    rows = list(csv.reader(io.StringIO(report.to_csv())))

    assert rows[0] == ["section", "key", "value"]
    assert all(len(row) == 3 for row in rows)
    body = rows[1:]
    keys = [(section, key) for section, key, _ in body]
    assert len(keys) == len(set(keys))
    value = {(section, key): cell for section, key, cell in body}

    assert value["period", "period"] == "2026Q3"
    assert value["period", "start"] == "2026-07-01T00:00:00+00:00"
    assert value["period", "end"] == "2026-10-01T00:00:00+00:00"
    assert value["summary", "referrals"] == "3"
    assert value["summary", "requests_submitted"] == "7"
    assert value["summary", "median_hours_to_decision"] == "36"
    assert value["summary", "p90_hours_to_decision"] == "100"
    assert value["summary", "overdue_requests"] == "3"
    assert value["summary", "releases"] == "3"
    assert value["summary", "refusals"] == "4"
    assert value["summary", "reviews_due"] == "5"
    assert value["overdue_requests", REQUEST_F] == "2026-09-30T09:00:00+00:00"
    assert value["reviews_due", "CASE-0002 6_MONTHS"] == "2026-08-02"

    def section(name: str) -> dict[str, int]:
        return {key: int(cell) for sec, key, cell in body if sec == name}

    assert section("referrals_made") == report.referrals_made_by_agency
    assert section("referrals_received") == report.referrals_received_by_agency
    assert section("triage_outcomes") == report.triage_outcomes
    assert section("requests_received") == report.requests_received_by_agency
    assert section("decisions") == report.decisions_by_outcome
    assert section("refusals_by_rule") == report.refusals_by_rule
    assert section("cases_by_stage") == report.cases_by_stage


def test_csv_gives_an_empty_cell_for_no_value_and_defuses_formulas() -> None:
    report = q3_report().model_copy(
        update={"median_hours_to_decision": None, "refusals_by_rule": {"=1+2": 1}}
    )
    value = {
        (section, key): cell for section, key, cell in csv.reader(io.StringIO(report.to_csv()))
    }
    assert value["summary", "median_hours_to_decision"] == ""
    assert value["refusals_by_rule", "'=1+2"] == "1"


def _svg_root(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output, not untrusted input


def test_svg_is_a_self_contained_bar_chart() -> None:
    report = q3_report()
    root = _svg_root(report.to_svg())
    title = "Safeguarding Exchange Hub \N{EM DASH} assurance 2026Q3"

    assert root.tag == f"{SVG}svg"
    assert root.findtext(f"{SVG}title") == title
    texts = [text.text for text in root.iter(f"{SVG}text")]
    assert title in texts
    assert "Count" in texts  # x-axis label
    assert "Measure" in texts  # y-axis label
    bars = report.chart_bars()
    # Referrals, requests, 5 decision outcomes, releases, overdue, 7 case stages.
    assert len(bars) == 16
    rects = list(root.iter(f"{SVG}rect"))
    assert len(rects) == len(bars)
    for rect, bar in zip(rects, bars, strict=True):
        assert rect.findtext(f"{SVG}title") == f"{bar.label}: {bar.value}"
        assert str(bar.value) in texts
        assert bar.label in texts
    assert [(bar.label, bar.value) for bar in bars][:2] == [
        ("Referrals made", 3),
        ("Requests received", 7),
    ]
    # Bar lengths are proportional to the counts (drawn to 0.1 px).
    widths = {
        bar.label: float(rect.get("width", "")) for rect, bar in zip(rects, bars, strict=True)
    }
    assert widths["Referrals made"] * 2 == pytest.approx(
        widths["Channel cases: exited, under review"], abs=0.2
    )
    assert widths["Channel cases: not adopted, referred on"] > 0
    assert not any(
        ref.startswith("http") and not ref.startswith("http://www.w3.org/")
        for element in root.iter()
        for ref in element.attrib.values()
    )


def test_svg_escapes_text() -> None:
    report = q3_report().model_copy(
        update={"decisions_by_outcome": {"<script>&\"'": 2}, "cases_by_stage": {}}
    )
    svg = report.to_svg()
    assert "<script>" not in svg
    root = _svg_root(svg)
    assert "Decisions: <script>&\"'" in [text.text for text in root.iter(f"{SVG}text")]
    assert len(list(root.iter(f"{SVG}rect"))) == 1 + 1 + 1 + 1 + 1


def test_svg_of_an_empty_quarter_still_has_an_axis() -> None:
    report = assurance_report("2027Q1", [], [], [], AGENCIES, registry(), NOW)
    root = _svg_root(report.to_svg())
    assert all(float(rect.get("width", "")) == 0 for rect in root.iter(f"{SVG}rect"))
    texts = [text.text for text in root.iter(f"{SVG}text")]
    assert "0" in texts
    assert "1" in texts


# -- periods -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("2026Q1", (2026, 1, 1), (2026, 4, 1)),
        ("2026Q2", (2026, 4, 1), (2026, 7, 1)),
        ("2026Q3", (2026, 7, 1), (2026, 10, 1)),
        ("2026Q4", (2026, 10, 1), (2027, 1, 1)),
        ("2024Q1", (2024, 1, 1), (2024, 4, 1)),  # a leap year changes nothing
        ("2026q3", (2026, 7, 1), (2026, 10, 1)),
        (" 2026Q3 ", (2026, 7, 1), (2026, 10, 1)),
        ("2026-01", (2026, 1, 1), (2026, 2, 1)),
        ("2024-02", (2024, 2, 1), (2024, 3, 1)),
        ("2026-02", (2026, 2, 1), (2026, 3, 1)),
        ("2026-12", (2026, 12, 1), (2027, 1, 1)),
        ("2026", (2026, 1, 1), (2027, 1, 1)),
        ("9998Q4", (9998, 10, 1), (9999, 1, 1)),
    ],
)
def test_parse_period_bounds(
    period: str, start: tuple[int, int, int], end: tuple[int, int, int]
) -> None:
    assert parse_period(period) == (
        datetime(*start, tzinfo=UTC),
        datetime(*end, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("period", "message"),
    [
        ("", "no reporting period given"),
        ("   ", "no reporting period given"),
        ("2026Q5", "the quarter must be Q1 to Q4, not Q5"),
        ("2026Q0", "the quarter must be Q1 to Q4, not Q0"),
        ("2026-13", "the month must be 01 to 12, not 13"),
        ("2026-00", "the month must be 01 to 12, not 00"),
        ("0000", "the year must be from 0001 to 9998"),
        ("9999Q4", "the year must be from 0001 to 9998"),
        ("26Q3", "unrecognised reporting period '26Q3'"),
        ("2026-7", "unrecognised reporting period"),
        ("2026-Q3", "unrecognised reporting period"),
        ("Q3 2026", "unrecognised reporting period"),
        ("2026Q10", "unrecognised reporting period"),
        ("2026-07-01", "unrecognised reporting period"),
        ("\uff12\uff10\uff12\uff16", "unrecognised reporting period"),  # fullwidth digits
        ("last quarter", "use a year \\(2026\\), a quarter \\(2026Q3\\) or a month"),
    ],
)
def test_parse_period_refuses_bad_strings(period: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_period(period)
