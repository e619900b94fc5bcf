"""The per-subject disclosure register: what was shared about a person (DESIGN.md section 7).

Built from the audit log's metadata alone: who disclosed which data categories, for which
periods, to whom, when, under which gateways and consent position, and which request and
decision the disclosure answers. It answers "what was shared about this person" for the
record, a subject access request (UK GDPR Art 15(1)(c): the recipients to whom personal
data have been disclosed) and the ICO. Pure: the caller reads the log and passes it in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from hub.model import AuditEntry
from hub.policy.workflow import RequestState

__all__ = [
    "DISCLOSING_KINDS",
    "DisclosedCategory",
    "Disclosure",
    "DisclosureKind",
    "Rejected",
    "ReleasedCategory",
    "disclosure_register",
    "render_register_text",
]

DisclosureKind = Literal["release", "referral", "case_pack"]
# Message kinds whose acceptance means personal data about the subject left one agency
# for another: a release answers a decided request; a referral and a case pack disclose
# without one.
DISCLOSING_KINDS: tuple[DisclosureKind, ...] = ("release", "referral", "case_pack")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DisclosedCategory(_Frozen):
    """One data category disclosed and the period it covered (None: not bounded)."""

    category: str
    period_from: date | None = None
    period_to: date | None = None


class ReleasedCategory(DisclosedCategory):
    """What a release's signed manifest says it holds under one category."""

    resources: dict[str, int]


class Rejected(_Frozen):
    """A recipient that opened the disclosure and rejected it, with the rules it gave."""

    node: str
    at: datetime
    rules: tuple[str, ...] = ()


class Disclosure(_Frozen):
    """One row of the register: a single accepted disclosing message.

    For a release, ``released`` is what its signed content manifest says was sent (the
    categories with resources by type), beside the envelope's ``scope``; ``rejected_by``
    lists recipients that opened it and refused it (MAN-*, REL-03).
    """

    kind: DisclosureKind
    message_id: str | None
    at: datetime
    discloser: str
    recipients: tuple[str, ...]
    subject_ref: str
    case_ref: str | None = None
    scope: tuple[DisclosedCategory, ...] = ()
    gateways: tuple[str, ...] = ()
    consent_state: str | None = None
    purpose: str | None = None
    # The chain a release answers: release.in_reply_to -> decision -> request.
    request_id: str | None = None
    decision_id: str | None = None
    decision_outcome: str | None = None
    decided_by: str | None = None
    marking: str | None = None
    released: tuple[ReleasedCategory, ...] = ()
    resource_count: int | None = None
    content_sha256: str | None = None
    rejected_by: tuple[Rejected, ...] = ()

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(item.category for item in self.scope)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def disclosure_register(
    subject_ref: str,
    entries: Sequence[AuditEntry],
    *,
    requests: Mapping[str, RequestState] | None = None,
) -> list[Disclosure]:
    """Every disclosure about ``subject_ref`` recorded in ``entries``, oldest first.

    A disclosure is a ``submitted`` entry of kind release, referral or case pack about the
    subject. An entry is about the subject when it names the subject, or when it names no
    subject but belongs to a Channel case that another entry ties to the subject (a case
    pack may carry only the case reference). For a release, the decision it answers is
    found from its ``in_reply_to`` and the request from the decision's ``in_reply_to``;
    ``requests`` (request id -> state) fills in what the entries given do not hold.
    """
    submitted = [e for e in entries if e.action == "submitted"]
    by_id = {e.message_id: e for e in submitted if e.message_id is not None}
    known_requests: Mapping[str, RequestState] = requests or {}
    requests_by_decision = {
        state.decision_id: state
        for state in known_requests.values()
        if state.decision_id is not None
    }
    subject_cases = {
        e.case_ref for e in entries if e.subject_ref == subject_ref and e.case_ref is not None
    }

    rejections: dict[str, list[Rejected]] = {}
    for e in entries:
        if e.action == "rejected" and e.message_id is not None:
            rejections.setdefault(e.message_id, []).append(
                Rejected(node=e.actor, at=e.at, rules=e.rules)
            )

    register: list[Disclosure] = []
    for entry in submitted:
        kind = _disclosing_kind(entry)
        if kind is None:
            continue
        if entry.subject_ref is None:
            if entry.case_ref is None or entry.case_ref not in subject_cases:
                continue
        elif entry.subject_ref != subject_ref:
            continue
        disclosure = _disclosure(
            entry, kind, subject_ref, by_id, known_requests, requests_by_decision
        )
        rejected = rejections.get(entry.message_id or "", [])
        if rejected:
            disclosure = disclosure.model_copy(update={"rejected_by": tuple(rejected)})
        register.append(disclosure)
    register.sort(key=lambda d: (_sort_time(d.at), d.message_id or ""))
    return register


def _disclosing_kind(entry: AuditEntry) -> DisclosureKind | None:
    if entry.kind == "release":
        return "release"
    if entry.kind == "referral":
        return "referral"
    if entry.kind == "case_pack":
        return "case_pack"
    return None


def _disclosure(
    entry: AuditEntry,
    kind: DisclosureKind,
    subject_ref: str,
    by_id: Mapping[str, AuditEntry],
    requests: Mapping[str, RequestState],
    requests_by_decision: Mapping[str, RequestState],
) -> Disclosure:
    chain: dict[str, str | None] = {}
    if kind == "release" and entry.in_reply_to is not None:
        chain = _answered(entry.in_reply_to, by_id, requests, requests_by_decision)
    return Disclosure(
        kind=kind,
        message_id=entry.message_id,
        at=entry.at,
        discloser=entry.actor,
        recipients=entry.recipients,
        subject_ref=subject_ref,
        case_ref=entry.case_ref,
        scope=tuple(
            DisclosedCategory(
                category=item.category, period_from=item.period_from, period_to=item.period_to
            )
            for item in entry.scope
        ),
        gateways=entry.gateways,
        consent_state=entry.consent_state,
        purpose=entry.purpose,
        marking=entry.marking,
        **chain,
        **_released(entry),
    )


def _released(entry: AuditEntry) -> dict[str, Any]:
    """What a release's manifest says it holds (nothing for other kinds)."""
    manifest = entry.manifest
    if manifest is None:
        return {}
    return {
        "released": tuple(
            ReleasedCategory(
                category=c.category,
                period_from=c.period_from,
                period_to=c.period_to,
                resources=dict(c.resources),
            )
            for c in manifest.categories
        ),
        "resource_count": manifest.resource_count,
        "content_sha256": manifest.content_sha256,
    }


def _answered(
    reply_to: str,
    by_id: Mapping[str, AuditEntry],
    requests: Mapping[str, RequestState],
    requests_by_decision: Mapping[str, RequestState],
) -> dict[str, str | None]:
    """The request and decision a release answers, following the chain in the log."""
    target = by_id.get(reply_to)
    if (target is not None and target.kind == "information_request") or reply_to in requests:
        # A release that names the request itself: take the decision from its state.
        state = requests.get(reply_to)
        return {
            "request_id": reply_to,
            "decision_id": state.decision_id if state else None,
            "decision_outcome": state.decision_outcome if state else None,
            "decided_by": state.decided_by if state else None,
        }
    state = requests_by_decision.get(reply_to)
    if target is not None and target.kind == "decision":
        request_id = target.in_reply_to
        state = state or (requests.get(request_id) if request_id else None)
        return {
            "request_id": request_id or (state.request_id if state else None),
            "decision_id": reply_to,
            "decision_outcome": target.outcome or (state.decision_outcome if state else None),
            "decided_by": target.actor,
        }
    return {
        "request_id": state.request_id if state else None,
        "decision_id": reply_to,
        "decision_outcome": state.decision_outcome if state else None,
        "decided_by": state.decided_by if state else None,
    }


def _sort_time(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


# -- plain-text rendering for `hub audit disclosures` ----------------------------------

_COLUMNS = (
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
)


def render_register_text(disclosures: Iterable[Disclosure]) -> str:
    """A plain-text table, one disclosure per row; multi-valued cells span lines."""
    rows = [_row(d) for d in disclosures]
    if not rows:
        return "No disclosures recorded.\n"
    header = [[name] for name in _COLUMNS]
    widths = [
        max(len(line) for row in (header, *rows) for line in row[column])
        for column in range(len(_COLUMNS))
    ]
    rule = "-+-".join("-" * width for width in widths)
    out = [*_lines(header, widths), rule]
    for index, row in enumerate(rows):
        if index:
            out.append(rule)
        out.extend(_lines(row, widths))
    count = len(rows)
    out.append("")
    out.append(f"{count} disclosure{'s' if count != 1 else ''}.")
    return "\n".join(out) + "\n"


def _lines(row: list[list[str]], widths: list[int]) -> list[str]:
    lines: list[str] = []
    for i in range(max(len(cell) for cell in row)):
        cells = [cell[i] if i < len(cell) else "" for cell in row]
        while cells and not cells[-1]:
            cells.pop()  # a continuation line stops after its last filled cell
        padded = [text.ljust(width) for text, width in zip(cells, widths, strict=False)]
        lines.append(" | ".join(padded).rstrip())
    return lines


def _row(d: Disclosure) -> list[list[str]]:
    answers: list[str] = []
    if d.request_id is not None:
        answers.append(f"request {d.request_id}")
    if d.decision_id is not None:
        answers.append(f"decision {d.decision_id}")
    if d.case_ref is not None:
        answers.append(f"case {d.case_ref}")
    decision = d.decision_outcome or ""
    if d.decided_by is not None:
        decision = f"{decision or '?'} by {d.decided_by}"
    cells: list[list[str]] = [
        [_when(d.at)],
        [d.kind],
        [d.discloser],
        list(d.recipients) or ["-"],
        _what(d),
        list(d.gateways) or ["-"],
        [d.consent_state or "-"],
        [d.purpose or "-"],
        answers or ["-"],
        [decision or "-"],
        [d.marking or "-"],
        [d.message_id or "-"],
        [f"{r.node} ({', '.join(r.rules)})" for r in d.rejected_by] or ["-"],
    ]
    return [[_printable(line) for line in cell] for cell in cells]


def _what(d: Disclosure) -> list[str]:
    """A release's manifest (what was sent, with resource counts), else the scope."""
    if d.released:
        return [
            f"{item.category} {_period(item)}: "
            + ", ".join(f"{n} {kind}" for kind, n in sorted(item.resources.items()))
            for item in d.released
        ]
    return [f"{item.category} {_period(item)}" for item in d.scope] or ["(not itemised)"]


def _when(at: datetime) -> str:
    return _sort_time(at).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _period(item: DisclosedCategory) -> str:
    if item.period_from is None and item.period_to is None:
        return "(no period)"
    start = item.period_from.isoformat() if item.period_from else ""
    end = item.period_to.isoformat() if item.period_to else ""
    return f"{start}..{end}"


def _printable(text: str) -> str:
    # Marking strings are free-ish text; a control character must not break the table.
    return "".join(ch if ch.isprintable() else "?" for ch in text)
