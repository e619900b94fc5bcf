"""The periodic assurance report for the Prevent/Channel partnership board.

Counts for one period (a year, a quarter or a month, UTC) from the audit log's metadata
and the workflow state the hub tracks (DESIGN.md sections 6 and 7): referrals made and
received by agency type, triage outcomes, information requests and their decisions, time
to decision, overdue requests, releases, refusals by rule, Channel cases by stage and the
post-exit reviews that fall due. Metadata only: no subject or payload ever appears.

Pure (STYLE.md rule 2): the caller reads the log and the state, and passes the time.
"""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from pydantic import BaseModel, ConfigDict

from hub.model import AuditEntry
from hub.policy.registry import Registry
from hub.policy.workflow import CaseState, RequestState, request_due_at

__all__ = [
    "REVIEW_POINTS",
    "AssuranceReport",
    "ChartBar",
    "OverdueRequest",
    "ReviewDue",
    "assurance_report",
    "nearest_rank",
    "parse_period",
    "quarter_of",
]

# Reviews at 6 and 12 months after exit from Channel support (DESIGN.md section 6),
# counted in days from the exit date: 182 and 365 days, as the brief for this report fixed.
REVIEW_POINTS: tuple[tuple[str, timedelta], ...] = (
    ("6_MONTHS", timedelta(days=182)),
    ("12_MONTHS", timedelta(days=365)),
)

# Known codes, so every report shows the same rows (zero when nothing happened).
_TRIAGE_OUTCOMES = ("NFA", "SIGNPOSTED", "CHANNEL", "POLICE_LED")
_DECISION_OUTCOMES = (
    "APPROVED_FULL",
    "APPROVED_PARTIAL",
    "REFUSED",
    "RETURNED_INCOMPLETE",
    "ESCALATED",
)
_CASE_STAGES = (
    "OPEN",
    "CONSENT_SOUGHT",
    "SUPPORT",
    "NOT_ADOPTED_NFA",
    "NOT_ADOPTED_REFERRED_ON",
    "EXITED",
    "CLOSED",
)
# A request still waits for a decision when none was made, or it was escalated to the
# Caldicott guardian and the final decision has not followed.
_AWAITING_DECISION = (None, "ESCALATED")
_UNKNOWN_AGENCY = "unknown"

_PERIOD_HELP = "use a year (2026), a quarter (2026Q3) or a month (2026-07)"
_YEAR_RE = re.compile(r"([0-9]{4})")
_QUARTER_RE = re.compile(r"([0-9]{4})[Qq]([0-9])")
_MONTH_RE = re.compile(r"([0-9]{4})-([0-9]{2})")


def quarter_of(moment: datetime) -> str:
    """The reporting quarter ``moment`` falls in, as :func:`parse_period` reads it."""
    return f"{moment.year}Q{(moment.month - 1) // 3 + 1}"


def parse_period(text: str) -> tuple[datetime, datetime]:
    """The UTC bounds of a reporting period: ``[start, end)``, the end excluded.

    ``"2026"`` is the calendar year, ``"2026Q3"`` July to September, ``"2026-07"`` July.
    """
    value = text.strip()
    if not value:
        raise ValueError(f"no reporting period given: {_PERIOD_HELP}")
    if match := _QUARTER_RE.fullmatch(value):
        year, quarter = _year(match.group(1), text), int(match.group(2))
        if not 1 <= quarter <= 4:
            raise ValueError(f"period {text!r}: the quarter must be Q1 to Q4, not Q{quarter}")
        start = datetime(year, 3 * quarter - 2, 1, tzinfo=UTC)
        return start, _add_months(start, 3)
    if match := _MONTH_RE.fullmatch(value):
        year, month = _year(match.group(1), text), int(match.group(2))
        if not 1 <= month <= 12:
            raise ValueError(f"period {text!r}: the month must be 01 to 12, not {month:02d}")
        start = datetime(year, month, 1, tzinfo=UTC)
        return start, _add_months(start, 1)
    if match := _YEAR_RE.fullmatch(value):
        year = _year(match.group(1), text)
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    raise ValueError(f"unrecognised reporting period {text!r}: {_PERIOD_HELP}")


def _year(digits: str, text: str) -> int:
    year = int(digits)
    # The period's end (the next period's start) must itself be a representable date.
    if not 1 <= year <= 9998:
        raise ValueError(f"period {text!r}: the year must be from 0001 to 9998")
    return year


def _add_months(start: datetime, months: int) -> datetime:
    index = start.month - 1 + months
    return start.replace(year=start.year + index // 12, month=index % 12 + 1)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OverdueRequest(_Frozen):
    """An information request still awaiting its decision after its deadline."""

    request_id: str
    purpose: str
    urgency: str
    submitted_at: datetime
    due_at: datetime
    hours_overdue: float


class ReviewDue(_Frozen):
    """A post-exit Channel review due by the period's end and not yet recorded."""

    case_ref: str
    review_point: str
    due_on: date


class ChartBar(_Frozen):
    group: str
    label: str
    value: int


class AssuranceReport(_Frozen):
    period: str
    period_start: datetime
    period_end: datetime  # excluded: the next period's start
    generated_at: datetime

    referrals: int
    referrals_made_by_agency: dict[str, int]
    referrals_received_by_agency: dict[str, int]
    triage_outcomes: dict[str, int]

    requests_submitted: int
    requests_received_by_agency: dict[str, int]
    decisions_by_outcome: dict[str, int]
    decisions_timed: int
    median_hours_to_decision: float | None
    p90_hours_to_decision: float | None
    overdue_requests: tuple[OverdueRequest, ...]

    releases: int
    refusals: int
    refusals_by_rule: dict[str, int]

    cases_by_stage: dict[str, int]
    reviews_due: tuple[ReviewDue, ...]

    # -- outputs -----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_csv(self) -> str:
        """Rows of ``section,key,value`` under a header row; empty value for "none"."""
        rows: list[tuple[str, str, str]] = [
            ("period", "period", self.period),
            ("period", "start", self.period_start.isoformat()),
            ("period", "end", self.period_end.isoformat()),
            ("period", "generated_at", self.generated_at.isoformat()),
            ("summary", "referrals", str(self.referrals)),
            ("summary", "requests_submitted", str(self.requests_submitted)),
            ("summary", "decisions_timed", str(self.decisions_timed)),
            ("summary", "median_hours_to_decision", _number(self.median_hours_to_decision)),
            ("summary", "p90_hours_to_decision", _number(self.p90_hours_to_decision)),
            ("summary", "overdue_requests", str(len(self.overdue_requests))),
            ("summary", "releases", str(self.releases)),
            ("summary", "refusals", str(self.refusals)),
            ("summary", "reviews_due", str(len(self.reviews_due))),
        ]
        for section, counts in (
            ("referrals_made", self.referrals_made_by_agency),
            ("referrals_received", self.referrals_received_by_agency),
            ("triage_outcomes", self.triage_outcomes),
            ("requests_received", self.requests_received_by_agency),
            ("decisions", self.decisions_by_outcome),
            ("refusals_by_rule", self.refusals_by_rule),
            ("cases_by_stage", self.cases_by_stage),
        ):
            rows.extend((section, key, str(count)) for key, count in counts.items())
        rows.extend(
            ("overdue_requests", item.request_id, item.due_at.isoformat())
            for item in self.overdue_requests
        )
        rows.extend(
            ("reviews_due", f"{item.case_ref} {item.review_point}", item.due_on.isoformat())
            for item in self.reviews_due
        )
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(("section", "key", "value"))
        writer.writerows(tuple(_cell(value) for value in row) for row in rows)
        return buffer.getvalue()

    def chart_bars(self) -> tuple[ChartBar, ...]:
        """The counts the SVG chart draws, one bar each, in drawing order."""
        bars = [
            ChartBar(group="referrals", label="Referrals made", value=self.referrals),
            ChartBar(group="requests", label="Requests received", value=self.requests_submitted),
        ]
        bars.extend(
            ChartBar(group="decisions", label=f"Decisions: {_words(outcome)}", value=count)
            for outcome, count in self.decisions_by_outcome.items()
        )
        bars.append(ChartBar(group="releases", label="Releases", value=self.releases))
        bars.append(
            ChartBar(
                group="overdue", label="Overdue requests (now)", value=len(self.overdue_requests)
            )
        )
        bars.extend(
            ChartBar(group="cases", label=f"Channel cases: {_words(stage)}", value=count)
            for stage, count in self.cases_by_stage.items()
        )
        return tuple(bars)

    def to_svg(self) -> str:
        """A self-contained horizontal bar chart of the main counts, for a board paper."""
        return _render_svg(self)


def assurance_report(
    period: str,
    entries: Sequence[AuditEntry],
    requests: Sequence[RequestState],
    cases: Sequence[CaseState],
    agency_types: Mapping[str, str],
    registry: Registry,
    now: datetime,
) -> AssuranceReport:
    """The assurance report for ``period`` (see :func:`parse_period`) as at ``now``.

    Flows (referrals, triage, requests, decisions, releases, refusals) count what happened
    in the period. Snapshots (overdue requests, cases by stage) are as at ``now``; reviews
    due lists every review falling due before the period ends that is not yet recorded.
    """
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware UTC time")
    start, end = parse_period(period)

    def in_period(at: datetime) -> bool:
        return start <= _utc(at) < end

    submitted = [e for e in entries if e.action == "submitted" and in_period(e.at)]

    def of_kind(kind: str) -> list[AuditEntry]:
        return [e for e in submitted if e.kind == kind]

    referrals = of_kind("referral")
    made = Counter(_agency(e.actor, agency_types) for e in referrals)
    # Each referral counts once for every agency type it reached (a referral to two
    # police nodes is one referral received by the police).
    received = Counter(
        agency for e in referrals for agency in {_agency(r, agency_types) for r in e.recipients}
    )
    triage = _seeded(
        _TRIAGE_OUTCOMES, (e.outcome or "UNRECORDED" for e in of_kind("referral_outcome"))
    )
    decisions = _seeded(
        _DECISION_OUTCOMES, (e.outcome or "UNRECORDED" for e in of_kind("decision"))
    )

    period_requests = [r for r in requests if in_period(r.submitted_at)]
    requests_received = Counter(
        agency
        for r in period_requests
        for agency in {_agency(d, agency_types) for d in r.disclosers}
    )
    hours = sorted(
        (_utc(r.decided_at) - _utc(r.submitted_at)).total_seconds() / 3600
        for r in period_requests
        if r.decided_at is not None and r.decision_outcome not in _AWAITING_DECISION
    )

    refused = [e for e in entries if e.action == "refused" and in_period(e.at)]
    by_rule = Counter(rule for e in refused for rule in dict.fromkeys(e.rules))

    return AssuranceReport(
        period=period.strip(),
        period_start=start,
        period_end=end,
        generated_at=now,
        referrals=len(referrals),
        referrals_made_by_agency=_sorted(made),
        referrals_received_by_agency=_sorted(received),
        triage_outcomes=triage,
        requests_submitted=len(period_requests),
        requests_received_by_agency=_sorted(requests_received),
        decisions_by_outcome=decisions,
        decisions_timed=len(hours),
        median_hours_to_decision=_round(statistics.median(hours)) if hours else None,
        p90_hours_to_decision=_round(nearest_rank(hours, 90)) if hours else None,
        overdue_requests=_overdue(requests, registry, now),
        releases=len(of_kind("release")),
        refusals=len(refused),
        refusals_by_rule=_sorted(by_rule),
        cases_by_stage=_seeded(_CASE_STAGES, (c.stage for c in cases)),
        reviews_due=_reviews_due(cases, end),
    )


def nearest_rank(sorted_values: Sequence[float], percentile: float) -> float:
    """The nearest-rank percentile: the smallest value with ``percentile`` % at or below."""
    if not sorted_values:
        raise ValueError("no values")
    # Exact arithmetic: in floating point 7 / 100 * 100 is 7.000000000000001, rank 8 not 7.
    rank = max(1, math.ceil(Fraction(percentile) * len(sorted_values) / 100))
    return sorted_values[rank - 1]


def _overdue(
    requests: Iterable[RequestState], registry: Registry, now: datetime
) -> tuple[OverdueRequest, ...]:
    out: list[OverdueRequest] = []
    for request in requests:
        if request.decision_outcome not in _AWAITING_DECISION:
            continue
        due = request_due_at(request, registry)
        if due is None or _utc(due) >= now:
            continue
        out.append(
            OverdueRequest(
                request_id=request.request_id,
                purpose=request.purpose,
                urgency=request.urgency,
                submitted_at=request.submitted_at,
                due_at=due,
                hours_overdue=_round((now - _utc(due)).total_seconds() / 3600),
            )
        )
    out.sort(key=lambda item: (_utc(item.due_at), item.request_id))
    return tuple(out)


def _reviews_due(cases: Iterable[CaseState], period_end: datetime) -> tuple[ReviewDue, ...]:
    last_day = (period_end - timedelta(days=1)).date()
    out = [
        ReviewDue(case_ref=case.case_ref, review_point=point, due_on=case.exited_on + after)
        for case in cases
        if case.stage == "EXITED" and case.exited_on is not None
        for point, after in REVIEW_POINTS
        if point not in case.reviews and case.exited_on + after <= last_day
    ]
    out.sort(key=lambda item: (item.due_on, item.case_ref, item.review_point))
    return tuple(out)


def _utc(at: datetime) -> datetime:
    # The wire models require UTC; a naive time can only have come from a test or a
    # hand-built state, and is read as UTC rather than as the machine's local time.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _agency(node: str, agency_types: Mapping[str, str]) -> str:
    return agency_types.get(node, _UNKNOWN_AGENCY)


def _sorted(counts: Counter[str]) -> dict[str, int]:
    return {key: counts[key] for key in sorted(counts)}


def _seeded(known: Sequence[str], values: Iterable[str]) -> dict[str, int]:
    counts = Counter(values)
    out = {key: counts.get(key, 0) for key in known}
    out.update((key, counts[key]) for key in sorted(counts) if key not in out)
    return out


def _round(value: float) -> float:
    return round(value, 2)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _cell(value: str) -> str:
    # A spreadsheet runs a cell starting with = + - @ as a formula (CSV injection);
    # no legitimate value here starts so, but a quote keeps a stray one inert.
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


_WORDS = {
    "APPROVED_FULL": "approved in full",
    "APPROVED_PARTIAL": "approved in part",
    "REFUSED": "refused",
    "RETURNED_INCOMPLETE": "returned incomplete",
    "ESCALATED": "escalated (Caldicott)",
    "OPEN": "open",
    "CONSENT_SOUGHT": "adopted, consent sought",
    "SUPPORT": "in support",
    "NOT_ADOPTED_NFA": "not adopted, no further action",
    "NOT_ADOPTED_REFERRED_ON": "not adopted, referred on",
    "EXITED": "exited, under review",
    "CLOSED": "closed",
}


def _words(code: str) -> str:
    return _WORDS.get(code, code.replace("_", " ").lower())


# -- SVG --------------------------------------------------------------------------------

_COLOURS = {  # Okabe-Ito palette: distinguishable with colour-vision deficiency
    "referrals": "#0072B2",
    "requests": "#009E73",
    "decisions": "#CC79A7",
    "releases": "#56B4E9",
    "overdue": "#D55E00",
    "cases": "#E69F00",
}
_PLOT_WIDTH = 480
_LABEL_CHAR = 7.5  # a generous average advance of a 13 px sans-serif character
_RIGHT = 60  # room for the value after the longest bar
_TOP = 78
_BAR = 20
_GAP = 8
_BOTTOM = 64


def _ticks(maximum: int) -> list[int]:
    """Whole-number axis ticks spaced 1, 2 or 5 times a power of ten, about five of them."""
    step = next(m * 10**k for k in range(19) for m in (1, 2, 5) if m * 10**k * 5 >= maximum)
    top = max(step, math.ceil(maximum / step) * step)
    return list(range(0, top + 1, step))


def _render_svg(report: AssuranceReport) -> str:
    bars = report.chart_bars()
    ticks = _ticks(max((bar.value for bar in bars), default=0))
    scale_max = ticks[-1]
    # Room on the left for the longest label and the rotated axis title, so no label
    # is clipped whatever codes appear.
    left = max(220, 48 + math.ceil(_LABEL_CHAR * max((len(b.label) for b in bars), default=0)))
    plot_width = _PLOT_WIDTH
    total_width = left + plot_width + _RIGHT
    plot_height = len(bars) * (_BAR + _GAP) + _GAP
    height = _TOP + plot_height + _BOTTOM
    title = f"Safeguarding Exchange Hub \N{EM DASH} assurance {report.period}"
    last_day = (report.period_end - timedelta(days=1)).date()
    subtitle = (
        f"Period {report.period_start.date().isoformat()} to {last_day.isoformat()} (UTC); "
        f"overdue requests and cases as at {report.generated_at.strftime('%Y-%m-%d %H:%M')}Z"
    )

    def x_of(value: int) -> float:
        return left + plot_width * value / scale_max

    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_width}" height="{height}" '
        f'viewBox="0 0 {total_width} {height}" role="img" aria-labelledby="chart-title chart-desc" '
        'font-family="Arial, Helvetica, sans-serif" font-size="13" fill="#1a1a1a">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">{escape(subtitle)}. Bar length is the count; '
        "the value is printed after each bar.</desc>",
        f'<text x="{total_width / 2:.0f}" y="28" text-anchor="middle" font-size="18" '
        f'font-weight="bold">{escape(title)}</text>',
        f'<text x="{total_width / 2:.0f}" y="50" text-anchor="middle" font-size="12" '
        f'fill="#444444">{escape(subtitle)}</text>',
    ]
    axis_y = _TOP + plot_height
    for tick in ticks:
        x = x_of(tick)
        out.append(
            f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{axis_y}" '
            f'stroke="#dddddd" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{axis_y + 18}" text-anchor="middle" font-size="12">{tick}</text>'
        )
    for index, bar in enumerate(bars):
        y = _TOP + _GAP + index * (_BAR + _GAP)
        width = x_of(bar.value) - left
        middle = y + _BAR / 2 + 4.5
        out.append(
            f'<text x="{left - 8}" y="{middle:.1f}" text-anchor="end">{escape(bar.label)}</text>'
        )
        out.append(
            f'<rect x="{left}" y="{y}" width="{width:.1f}" height="{_BAR}" '
            f"fill={quoteattr(_COLOURS.get(bar.group, '#777777'))} "
            f"data-group={quoteattr(bar.group)}>"
            f"<title>{escape(f'{bar.label}: {bar.value}')}</title></rect>"
        )
        out.append(
            f'<text x="{left + width + 6:.1f}" y="{middle:.1f}" '
            f'font-weight="bold">{bar.value}</text>'
        )
    out.extend(
        [
            f'<line x1="{left}" y1="{_TOP}" x2="{left}" y2="{axis_y}" stroke="#1a1a1a" '
            'stroke-width="1.5"/>',
            f'<line x1="{left}" y1="{axis_y}" x2="{left + plot_width}" y2="{axis_y}" '
            'stroke="#1a1a1a" stroke-width="1.5"/>',
            f'<text x="{left + plot_width / 2:.1f}" y="{axis_y + 44}" text-anchor="middle" '
            f'font-size="13">Count</text>',
            f'<text x="16" y="{_TOP + plot_height / 2:.1f}" text-anchor="middle" '
            f'font-size="13" transform="rotate(-90 16 {_TOP + plot_height / 2:.1f})">'
            "Measure</text>",
            "</svg>",
        ]
    )
    return "\n".join(out) + "\n"
