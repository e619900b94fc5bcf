"""Drafts for the Channel case pages: posted fields in, wire models and errors out.

The chair's forms (open a case, record consent, a panel outcome, a review, a case pack)
post fields named by draft paths (:mod:`agency_adapters.node.console.forms`). This module
turns such a post into the envelope fields and the payload the wire carries, through the
same pydantic models, and says what is wrong where. It also runs the hub's workflow
rules for a case (WF-07..WF-14, :func:`hub.policy.workflow.check_workflow`) against the
case as the hub last showed it, because the node's own pre-flight has no case state: a
case pack to a node that is not on the panel is refused here, beside the member field,
before anything is sent. Pure apart from what the callers pass in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agency_adapters.node.console.forms import FieldError, FormErrors, validation_errors
from hub.model import Author, EnvelopeFields, Violation
from hub.model.payloads import TODAY_CONTEXT_KEY
from hub.policy.registry import Gateway, Registry
from hub.policy.workflow import CaseState, WorkflowFacts, check_workflow

__all__ = [
    "CHANNEL_ROLES",
    "CasePosted",
    "case_state_from_view",
    "case_workflow_violations",
    "coerce_document",
    "envelope_consent_for",
    "gateway_choices",
    "parse_expiry",
    "purposes_for",
    "split_post",
    "time_left",
    "validate_draft",
]

# The console roles that run a Channel case at the local authority.
CHANNEL_ROLES = ("CHANNEL_CHAIR", "CHANNEL_COORDINATOR")

# Form fields that are yes/no questions, by their last path segment: a checkbox posts
# "true", a yes/no radio "true" or "false".
_BOOLEAN_LEAVES = frozenset(
    {
        "sensitive",
        "subject_not_to_be_told",
        "best_interests",
        "right_to_withdraw_explained",
        "parental_responsibility",
        "public_task_statement",
        "present",
        # The referral form's yes/no questions (NationalPreventReferralForm).
        "answer",
        "diagnosed",
        "informed",
        "wishes_to_remain_anonymous",
        "speaks_understands_english",
        "interpreter_needed",
        "current_residence",
    }
)
# Form fields that are lists even when one box is ticked.
_LIST_LEAVES = frozenset(
    {
        "descriptors",
        "powers",
        "confidentiality",
        "exemptions",
        "consent_to",
        "gateway_ids",
        "recipients",
        "aliases",
        # The referral form's lists (NationalPreventReferralForm).
        "contact_numbers",
        "email_addresses",
        "current_education",
        "previous_education",
        "indicators",
        "lines",
    }
)


def coerce_document(node: Any, leaf: str = "") -> Any:
    """Yes/no answers as booleans and multi-choice answers as lists, recursively."""
    if isinstance(node, dict):
        return {key: coerce_document(value, key) for key, value in node.items()}
    if isinstance(node, list):
        if leaf in _LIST_LEAVES:
            return [coerce_document(item) for item in node]
        return [coerce_document(item) for item in node]
    if isinstance(node, str):
        if leaf in _BOOLEAN_LEAVES and node in ("true", "false"):
            return node == "true"
        if leaf in _LIST_LEAVES:
            return [node]
    return node


@dataclass
class CasePosted:
    """A post split into the envelope's part and the payload's part."""

    envelope: dict[str, Any]
    payload: dict[str, Any]


def split_post(document: Mapping[str, Any]) -> CasePosted:
    doc = coerce_document(dict(document))
    payload = doc.pop("payload", {})
    return CasePosted(envelope=doc, payload=payload if isinstance(payload, dict) else {})


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} in a draft")


M = TypeVar("M", bound=BaseModel)


def validate_draft(
    envelope: Mapping[str, Any],
    payload: Mapping[str, Any],
    payload_model: type[M],
    *,
    today: date,
) -> tuple[EnvelopeFields | None, M | None, FormErrors]:
    """The envelope fields and the payload through the wire models, with their errors."""
    errors = FormErrors()
    fields: EnvelopeFields | None = None
    model: M | None = None
    try:
        fields = EnvelopeFields.model_validate_json(json.dumps(envelope, default=_json_default))
    except ValidationError as exc:
        errors.extend(validation_errors(exc))
    try:
        model = payload_model.model_validate_json(
            json.dumps(payload, default=_json_default), context={TODAY_CONTEXT_KEY: today}
        )
    except ValidationError as exc:
        errors.extend(validation_errors(exc, prefix="payload"))
    return fields, model, errors


def parse_expiry(text: str) -> datetime | None:
    """A ``datetime-local`` value (``2026-12-20T17:00``), read as UTC; None if unreadable."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def default_expiry(now: datetime, days: int) -> datetime:
    """The default access expiry: ``days`` from now, at the end of that day (17:00 UTC)."""
    day = (now + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, 17, 0, tzinfo=UTC)


def time_left(expires_at: datetime, now: datetime) -> str:
    """How long is left, as people say it: '2 days 3 hours', '45 minutes'."""
    seconds = int((expires_at - now).total_seconds())
    if seconds <= 0:
        return "no time"
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    parts: list[str] = []
    if days:
        parts.append(f"{days} day{'' if days == 1 else 's'}")
    if hours:
        parts.append(f"{hours} hour{'' if hours == 1 else 's'}")
    if not days and (minutes or not parts):
        minutes = max(minutes, 1)
        parts.append(f"{minutes} minute{'' if minutes == 1 else 's'}")
    return " ".join(parts)


def envelope_consent_for(
    outcome: str | None, given_by: str | None, subject_age: str | None
) -> dict[str, Any]:
    """The envelope's consent position for a consent record, from what the record says.

    Consent given by the person is OBTAINED (under 18, CHILD_OWN_CONSENT); by a parent or
    guardian, CHILD_PARENT_CONSENT; a refusal or withdrawal is that. The record and its
    envelope cannot disagree because one is built from the other.
    """
    age = subject_age or "UNKNOWN"
    under_18 = age in ("UNDER_16", "AGED_16_17")
    state = "UNKNOWN"
    if outcome == "CONSENTED":
        if given_by == "PARENT_OR_GUARDIAN":
            state = "CHILD_PARENT_CONSENT"
        else:
            state = "CHILD_OWN_CONSENT" if under_18 else "OBTAINED"
    elif outcome in ("REFUSED", "WITHDRAWN"):
        state = outcome
    position: dict[str, Any] = {"state": state, "subject_age": age}
    if given_by:
        position["given_by"] = given_by
    return position


def purposes_for(registry: Registry, kind: str) -> list[tuple[str, str]]:
    """(id, name) of every purpose a message of ``kind`` may serve."""
    return [(p.id, p.name) for p in registry.purposes if kind in p.kinds]


def gateway_choices(registry: Registry, agency_type: str) -> dict[str, list[Gateway]]:
    """The gateways this agency may rely on, by the legal basis field they fill."""
    families = {
        "powers": ("power",),
        "art6": ("art6",),
        "art9": ("art9",),
        "sch1": ("sch1",),
        "art10": ("art10",),
        "confidentiality": ("confidentiality",),
        # Never a lawful basis on its own (GW-EX); offered so a request can cite one
        # beside its gateways.
        "exemptions": ("exemption",),
    }
    out: dict[str, list[Gateway]] = {}
    for field_name, wanted in families.items():
        out[field_name] = [
            g
            for g in registry.gateways
            if g.family in wanted and ("ANY" in g.who or agency_type in g.who)
        ]
    return out


def case_state_from_view(view: Mapping[str, Any]) -> CaseState:
    """The hub's view of a case (``GET /v1/cases/{ref}``) as the workflow's case state."""
    exited = view.get("exited_on")
    return CaseState(
        case_ref=str(view["case_ref"]),
        opened_by=str(view["chair"]),
        chair=str(view["chair"]),
        members=tuple((str(m["node"]), str(m["role"])) for m in view.get("members", [])),
        stage=view["stage"],
        consent=view["consent"],
        not_to_be_told=bool(view.get("subject_not_to_be_told", False)),
        exited_on=None if exited is None else date.fromisoformat(str(exited)),
        reviews=tuple(str(r) for r in view.get("reviews_done", [])),
    )


def case_workflow_violations(
    fields: EnvelopeFields,
    *,
    sender: str,
    case_view: Mapping[str, Any] | None,
    agency_types: Mapping[str, str],
    registry: Registry,
    now: datetime,
) -> list[Violation]:
    """The hub's Channel workflow rules for this draft, against the case as the hub has it."""
    facts = WorkflowFacts(case=None if case_view is None else case_state_from_view(case_view))
    return check_workflow(
        fields,
        sender=sender,
        agency_types=agency_types,
        facts=facts,
        registry=registry,
        now=now,
    )


def author_for(roles: Iterable[str], chosen: str | None, user: Any) -> tuple[Author | None, str]:
    """The acting role among ``roles`` the user holds: the one chosen, or the only one."""
    held = [role for role in roles if role in user.roles]
    if chosen in held:
        return user.author(chosen), str(chosen)
    if len(held) == 1:
        return user.author(held[0]), held[0]
    return None, ""


def remap_rows(errors: FormErrors, prefix: str, rows: Sequence[int]) -> FormErrors:
    """Errors on ``prefix.N...`` of a compacted list, renumbered to the form's row N."""
    moved: list[FieldError] = []
    head = prefix + "."
    for error in errors.errors:
        name = error.field
        if name.startswith(head):
            index, _, rest = name[len(head) :].partition(".")
            if index.isdigit() and int(index) < len(rows):
                name = f"{head}{rows[int(index)]}" + (f".{rest}" if rest else "")
        moved.append(FieldError(name, error.message, error.rule, error.explanation, error.source))
    return FormErrors(moved)


ROW_MARK = "_row"


def compact_rows(
    rows: Any, *, filled: Callable[[dict[str, Any]], bool] | None = None
) -> tuple[list[dict[str, Any]], list[int]]:
    """The filled-in rows of a repeated group and the form's row number of each.

    Every row of a repeated group on a form posts a hidden ``..._row`` field holding its
    number, so that rows left empty still arrive and the numbers stay the form's.
    ``filled(row)`` says whether a row counts as filled in (default: anything besides its
    number).
    """
    if not isinstance(rows, list):
        return [], []
    kept: list[dict[str, Any]] = []
    numbers: list[int] = []
    for position, row in enumerate(rows):
        if not isinstance(row, dict):
            continue
        mark = row.get(ROW_MARK)
        number = int(mark) if isinstance(mark, str) and mark.isdigit() else position
        content = {key: value for key, value in row.items() if key != ROW_MARK}
        if not content or (filled is not None and not filled(content)):
            continue
        kept.append(content)
        numbers.append(number)
    return kept, numbers
