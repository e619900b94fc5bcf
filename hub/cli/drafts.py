"""``hub node draft KIND``: a draft template for each message kind, to fill in and submit.

The template is JSON with ``//`` comments (read by :func:`strip_comments`, which
``hub policy check`` and ``hub node submit`` apply to every draft). Every value a person
must choose is a placeholder, ``"<envelope.purpose>"``, with the registry's choices
written above it as comments: the purposes the kind may use, the markings, every legal
gateway for each slot of the lawful basis in plain English, the data categories, the
consent states and the reasons for not seeking consent. The payload is the kind's
synthetic example (``hub/model/examples.py``), to be replaced with the real content.

Replacing each placeholder with the value its comment gives as the example (the demo's
values, :func:`example_values`) makes a draft that passes ``hub policy check`` (for a
reply, as its ``--node``; offline the message it answers is not known).
"""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from hub.cli.common import EXIT_OK, CommandError, write_output
from hub.model import MESSAGE_KINDS, Author, Consent, DecisionRecord, PanelMember
from hub.model.examples import (
    synthetic_case_open,
    synthetic_case_pack,
    synthetic_case_review,
    synthetic_consent_record,
    synthetic_decision,
    synthetic_information_request,
    synthetic_panel_outcome,
    synthetic_referral_form,
    synthetic_triage_outcome,
)
from hub.model.jsonio import strip_comments, without_comments
from hub.model.payloads import feedback_for_referrer
from hub.policy.lawful_basis import SLOT_FAMILIES
from hub.policy.registry import Registry, load_registry

__all__ = [
    "add_draft_command",
    "example_draft",
    "example_values",
    "fill_template",
    "strip_comments",
    "template_for",
    "without_comments",
]

HEALTH, POLICE, LA = "health.bsw-icb", "police.ctp-sw", "la.wiltshire"
_OS_PERSONAL: dict[str, Any] = {
    "tier": "OFFICIAL",
    "sensitive": True,
    "descriptors": ["PERSONAL_DATA"],
}
_REPLY_TO = "01900000-0000-7000-8000-000000000001"  # the id of the message answered
_WIDTH = 92


# -- the demo's values, kind by kind --------------------------------------------------


def _author(user_ref: str, role: str) -> dict[str, Any]:
    return {"user_ref": user_ref, "role": role, "vetting": "BPSS"}


def _period(days: int, today: date) -> dict[str, str]:
    return {
        "period_from": (today - timedelta(days=days)).isoformat(),
        "period_to": (today - timedelta(days=1)).isoformat(),
    }


def _content(model: BaseModel) -> Any:
    return json.loads(model.model_dump_json(exclude_none=True))


_REFERRAL_BASIS = {
    "powers": ["CDA1998-s115", "CTSA2015-s38"],
    "art6": "UKGDPR-A6-1e",
    "art9": "UKGDPR-A9-2g",
    "sch1": "DPA2018-S1P2p18",
    "confidentiality": ["CLDC-PUBINT"],
    "agreement": "DSA-WILTS-PREVENT-2026",
}
_REQUEST_BASIS = {
    "powers": ["CDA1998-s115"],
    "art6": "UKGDPR-A6-1e",
    "art9": "UKGDPR-A9-2g",
    "sch1": "DPA2018-S1P2p10",
    "confidentiality": ["CLDC-PUBINT"],
}
_PACK_BASIS = {
    "powers": ["LGA1972-s111"],
    "art6": "UKGDPR-A6-1e",
    "art9": "UKGDPR-A9-2g",
    "sch1": "DPA2018-S1P2p18",
}
_WITHOUT_CONSENT = {
    "state": "NOT_SOUGHT",
    "reason_code": "WOULD_PREJUDICE_OUTCOME",
    "subject_age": "ADULT",
}
_CASE_CONSENT = {"state": "OBTAINED", "given_by": "SUBJECT", "subject_age": "ADULT"}


def _scope(today: date) -> list[dict[str, Any]]:
    return [
        {
            "category": "mental_health_diagnoses",
            **_period(365, today),
            "justification_present": True,
        },
        {"category": "medication", **_period(365, today), "justification_present": True},
    ]


def example_draft(kind: str, today: date | None = None) -> dict[str, Any]:
    """The demo's draft of ``kind`` (synthetic): the values the template's comments give."""
    today = today or datetime.now(UTC).date()
    case = {
        "author": _author("usr-demo-0004", "CHANNEL_CHAIR"),
        "sender": LA,
        "recipients": [POLICE, HEALTH],
        "marking": _OS_PERSONAL,
        "subject_ref": "subj-demo-0001",
        "case_ref": "case-wilts-demo-0001",
    }
    base: dict[str, Any]
    content: Any
    media_type = "application/json"
    if kind == "referral":
        base = {
            "author": _author("usr-demo-0001", "SAFEGUARDING_LEAD"),
            "sender": HEALTH,
            "recipients": [LA, POLICE],
            "marking": _OS_PERSONAL,
            "subject_ref": "subj-demo-0001",
            "purpose": "PREVENT_REFERRAL",
            "urgency": "routine",
            "legal_basis": _REFERRAL_BASIS,
            "consent": _WITHOUT_CONSENT,
        }
        content = _content(synthetic_referral_form(0))
    elif kind == "information_request":
        scope = _scope(today)
        base = {
            "author": _author("usr-demo-0002", "PREVENT_POLICE_OFFICER"),
            "sender": POLICE,
            "recipients": [HEALTH],
            "marking": _OS_PERSONAL,
            "subject_ref": "subj-demo-0001",
            "purpose": "PREVENT_TRIAGE",
            "urgency": "routine",
            "legal_basis": _REQUEST_BASIS,
            "consent": _WITHOUT_CONSENT,
            "scope": scope,
        }
        content = _content(
            synthetic_information_request(1, categories=[str(s["category"]) for s in scope])
        )
    elif kind == "decision":
        base = {
            "author": _author("usr-demo-0003", "SAFEGUARDING_LEAD"),
            "sender": HEALTH,
            "recipients": [POLICE],
            "marking": _OS_PERSONAL,
            "subject_ref": "subj-demo-0001",
            "purpose": "PREVENT_TRIAGE",
            "in_reply_to": _REPLY_TO,
            "decision": {
                "outcome": "APPROVED_PARTIAL",
                "approved_scope": _scope(today)[:1],
                "reason_code": "MINIMUM_NECESSARY",
                "consulted": ["CALDICOTT_GUARDIAN"],
                "recorded_in_subject_record": True,
            },
        }
        content = _content(synthetic_decision(1, consulted=("CALDICOTT_GUARDIAN",)))
    elif kind == "release":
        first = _scope(today)[0]
        base = {
            "author": _author("usr-demo-0003", "SAFEGUARDING_LEAD"),
            "sender": HEALTH,
            "recipients": [POLICE],
            "marking": _OS_PERSONAL,
            "subject_ref": "subj-demo-0001",
            "purpose": "PREVENT_TRIAGE",
            "in_reply_to": _REPLY_TO,
            "legal_basis": _REQUEST_BASIS,
            "consent": _WITHOUT_CONSENT,
            "scope": [first],
            "manifest": {
                "format": "fhir-r4-bundle",
                "content_sha256": "0" * 64,
                "content_size": 2048,
                "resource_count": 2,
                "categories": [
                    {
                        "category": first["category"],
                        "period_from": first["period_from"],
                        "period_to": first["period_to"],
                        "resources": {"Condition": 2},
                    }
                ],
            },
        }
        return {
            "envelope": {"kind": kind, **base},
            "payload": {"media_type": "application/fhir+json", "file": "release-bundle.json"},
        }
    elif kind == "referral_outcome":
        base = {
            "author": _author("usr-demo-0002", "PREVENT_POLICE_OFFICER"),
            "sender": POLICE,
            "recipients": [HEALTH, LA],
            "marking": _OS_PERSONAL,
            "subject_ref": "subj-demo-0001",
            "purpose": "PREVENT_TRIAGE",
            "in_reply_to": _REPLY_TO,
            "triage_outcome": "CHANNEL",
        }
        content = _content(feedback_for_referrer(synthetic_triage_outcome(1, outcome="CHANNEL")))
    elif kind == "case_open":
        base = {
            **case,
            "purpose": "CHANNEL_ASSESSMENT",
            "consent": {
                "state": "NOT_SOUGHT",
                "reason_code": "DECONFLICTION_STAGE",
                "subject_age": "ADULT",
            },
            "case": {
                "chair": LA,
                "members": [
                    {"node": POLICE, "role": "POLICE_PREVENT"},
                    {"node": HEALTH, "role": "HEALTH"},
                ],
            },
        }
        content = _content(synthetic_case_open(1))
    elif kind == "consent_record":
        base = {**case, "purpose": "CHANNEL_SUPPORT", "consent": _CASE_CONSENT}
        content = _content(synthetic_consent_record(1))
    elif kind == "case_pack":
        expires = datetime.combine(today + timedelta(days=14), datetime.min.time(), UTC)
        base = {
            **case,
            "recipients": [POLICE],
            "purpose": "CHANNEL_ASSESSMENT",
            "consent": _CASE_CONSENT,
            "legal_basis": _PACK_BASIS,
            "access_expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        content = _content(synthetic_case_pack(1))
    elif kind == "panel_outcome":
        base = {
            **case,
            "purpose": "CHANNEL_SUPPORT",
            "consent": _CASE_CONSENT,
            "panel_outcome": "ADOPTED",
        }
        content = _content(synthetic_panel_outcome(1))
    elif kind == "case_review":
        base = {
            **case,
            "purpose": "CHANNEL_REVIEW",
            "consent": _CASE_CONSENT,
            "review_point": "6_MONTHS",
        }
        content = _content(synthetic_case_review(1))
    elif kind == "withdrawal":
        base = {
            "author": _author("usr-demo-0001", "SAFEGUARDING_LEAD"),
            "sender": HEALTH,
            "recipients": [LA, POLICE],
            "marking": _OS_PERSONAL,
            "subject_ref": "subj-demo-0001",
            "purpose": "PREVENT_REFERRAL",
            "in_reply_to": _REPLY_TO,
        }
        content = {"reason": "Synthetic example: the referrer withdraws the referral."}
    elif kind == "note":
        base = {
            "author": _author("usr-demo-0001", "SAFEGUARDING_LEAD"),
            "sender": HEALTH,
            "recipients": [LA],
            "marking": _OS_PERSONAL,
            "subject_ref": "subj-demo-0001",
            "purpose": "PREVENT_REFERRAL",
        }
        content = {"text": "Synthetic example note."}
    else:
        raise KeyError(kind)
    return {
        "envelope": {"kind": kind, **base},
        "payload": {"media_type": media_type, "content": content},
    }


# -- the registry's choices, as comments ----------------------------------------------


def _wrap(text: str, indent: str = "") -> list[str]:
    words = " ".join(text.split())
    return textwrap.wrap(words, _WIDTH, initial_indent=indent, subsequent_indent=indent) or [""]


def _literal_choices(model: type[BaseModel], name: str) -> list[str]:
    def values(annotation: Any) -> list[str]:
        if get_origin(annotation) is Literal:
            return [str(v) for v in get_args(annotation)]
        return [v for arg in get_args(annotation) for v in values(arg)]

    return values(model.model_fields[name].annotation)


def _marking_notes(registry: Registry) -> list[str]:
    marks = registry.markings
    lines = ["The protective marking (structured as below, or as text, e.g."]
    lines.append('"OFFICIAL-SENSITIVE PERSONAL DATA"). Tiers:')
    for tier in marks.tiers:
        lines += [f"  {tier.id}:", *_wrap(tier.summary, "      ")]
    lines.append('"sensitive": true makes it OFFICIAL-SENSITIVE. Descriptors ("descriptors"):')
    for descriptor in marks.descriptors:
        lines += [f"  {descriptor.id} ({descriptor.string}):", *_wrap(descriptor.summary, "      ")]
    lines.append('Handling instructions ("handling", optional):')
    for handling in marks.handling_instructions:
        lines += [f"  {handling.id} ({handling.string}):", *_wrap(handling.summary, "      ")]
    return lines


def _gateway_notes(registry: Registry) -> list[str]:
    lines = ["The lawful basis: registry gateway ids, slot by slot (REFERENCE.md 2.1)."]
    for slot, families in SLOT_FAMILIES.items():
        lines.append(f'"{slot}" ({", ".join(sorted(families))}):')
        for gateway in registry.gateways:
            if gateway.family in families:
                lines.append(f"  {gateway.id}: {gateway.title}")
                lines += _wrap(gateway.summary, "      ")
    lines.append('"agreement" (a data sharing agreement):')
    for agreement in registry.agreements:
        lines.append(f"  {agreement.id}: {agreement.title}")
    return lines


def _category_notes(registry: Registry) -> list[str]:
    lines = ['Data categories ("category"); a period is needed where marked:']
    for category in registry.data_categories:
        period = (
            f", period needed (at most {category.max_period_days} days)"
            if category.needs_period and category.max_period_days
            else ", period needed"
            if category.needs_period
            else ""
        )
        lines.append(
            f"  {category.id}: {category.name} (held by {', '.join(category.held_by)}){period}"
        )
    return lines


def _consent_notes() -> list[str]:
    # The console's words for the reasons (its form offers the same choices).
    from agency_adapters.node.console.views.cases import NOT_SOUGHT_REASONS

    lines = ['The consent position. "state":']
    lines += [f"  {s}" for s in _literal_choices(Consent, "state")]
    lines.append('"reason_code" when NOT_SOUGHT (why it was not sought):')
    lines += [f"  {code}: {text}" for code, text in NOT_SOUGHT_REASONS.items()]
    lines.append(f'"given_by": {", ".join(_literal_choices(Consent, "given_by"))}')
    lines.append(f'"subject_age": {", ".join(_literal_choices(Consent, "subject_age"))}')
    return lines


def _notes(kind: str, registry: Registry) -> dict[str, list[str]]:
    """The comment block above each envelope key (and some nested ones) for ``kind``."""
    purposes = [p for p in registry.purposes if kind in p.kinds]
    notes: dict[str, list[str]] = {
        "author": [
            "Who writes it: an opaque user reference (never a name), the role they act in",
            f"({', '.join(_literal_choices(Author, 'role'))})",
            f"and their vetting ({', '.join(_literal_choices(Author, 'vetting'))}).",
        ],
        "sender": ["This node's id (hub node submit fills it in when left out)."],
        "recipients": ["A list of recipient node ids from the hub's directory."],
        "marking": _marking_notes(registry),
        "subject_ref": ["The subject's opaque reference (never a name or NHS number)."],
        "case_ref": ["The Channel case reference."],
        "in_reply_to": ["The id of the message this answers."],
        "purpose": [f"Why it is sent: a purpose allowed for a {kind}:"]
        + [f"  {p.id}: {p.name}" for p in purposes],
        "urgency": ["routine or urgent (an urgent request gives its reason in the payload)."],
        "legal_basis": _gateway_notes(registry),
        "consent": _consent_notes(),
        "scope": _category_notes(registry),
        "decision": [
            "The decision: outcome ("
            + ", ".join(_literal_choices(DecisionRecord, "outcome"))
            + "), the approved scope,",
            "a reason code of your own in upper snake case (e.g. MINIMUM_NECESSARY; the",
            "rationale itself goes in the payload), whom the decider consulted (",
            "  " + ", ".join(_literal_choices(DecisionRecord, "consulted")) + ")",
            "and whether it was entered in the subject's record.",
            *_category_notes(registry),
        ],
        "triage_outcome": ["NFA, SIGNPOSTED, CHANNEL or POLICE_LED."],
        "case": [
            "The chair node and the panel members, each with a role:",
            "  " + ", ".join(_literal_choices(PanelMember, "role")),
        ],
        "access_expires_at": ["The case pack is readable until then (RFC 3339, UTC)."],
        "panel_outcome": ["ADOPTED, NOT_ADOPTED_NFA, NOT_ADOPTED_REFERRED_ON or EXITED."],
        "review_point": ["6_MONTHS or 12_MONTHS after exit."],
        "manifest": [
            "What the release holds (rules MAN-*). 'hub node release' builds the bundle and",
            "this manifest from an approved decision: prefer it to writing one by hand.",
            *_category_notes(registry),
        ],
    }
    if kind == "release":
        notes["scope"] = ["The approved scope this release answers (as the decision gave it)."]
    return notes


# -- the template -----------------------------------------------------------------------


_FIXED = frozenset({"kind", "format", "justification_present", "extension_reason_present"})


def _placeholders(value: Any, path: str, values: dict[str, Any]) -> Any:
    """``value`` with each choice replaced by ``"<path>"`` (recorded in ``values``)."""
    name = path.rsplit(".", 1)[-1]
    if name in _FIXED or isinstance(value, bool):
        return value
    if isinstance(value, dict) and name not in ("resources",):
        return {k: _placeholders(v, f"{path}.{k}", values) for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [_placeholders(v, f"{path}[{i}]", values) for i, v in enumerate(value)]
    placeholder = f"<{path}>"
    values[placeholder] = value
    return placeholder


def example_values(kind: str, today: date | None = None) -> dict[str, Any]:
    """Each placeholder of ``kind``'s template and the demo's value for it."""
    values: dict[str, Any] = {}
    _placeholders(example_draft(kind, today)["envelope"], "envelope", values)
    return values


def _render(value: Any, indent: str, notes: dict[str, list[str]], values: dict[str, Any]) -> str:
    if isinstance(value, dict) and value:
        inner = indent + "  "
        items = []
        for key, item in value.items():
            lines = [f"{inner}// {line}" for line in notes.get(key, [])]
            placeholder = item if isinstance(item, str) and item in values else None
            if placeholder is not None:
                lines.append(f"{inner}// e.g. {json.dumps(values[placeholder])}")
            rendered = _render(item, inner, {}, values)
            lines.append(f"{inner}{json.dumps(key)}: {rendered}")
            items.append("\n".join(lines))
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and value and any(isinstance(v, dict | list) for v in value):
        inner = indent + "  "
        return (
            "[\n"
            + ",\n".join(inner + _render(v, inner, {}, values) for v in value)
            + f"\n{indent}]"
        )
    return json.dumps(value, ensure_ascii=False)


def template_for(kind: str, registry: Registry | None = None, today: date | None = None) -> str:
    """The JSON-with-comments template of ``kind``."""
    registry = registry or load_registry()
    draft = example_draft(kind, today)
    values: dict[str, Any] = {}
    envelope = _placeholders(draft["envelope"], "envelope", values)
    header = [
        f"hub node draft {kind}: a draft {kind.replace('_', ' ')} for 'hub node submit'.",
        'Replace every "<...>" placeholder with your value (each comment gives the registry\'s',
        "choices and an example), replace the payload's synthetic example with the real",
        "content, then: hub policy check FILE --node DIR, and hub node submit --node DIR FILE.",
        "The // comments may stay: both commands ignore them.",
    ]
    payload = draft["payload"]
    payload_notes = (
        [
            "A file to send as it is, beside this draft; 'hub node release' builds it.",
        ]
        if "file" in payload
        else [
            "The content: a SYNTHETIC EXAMPLE (hub/model/examples.py) to replace; its schema",
            f"is in schemas/json/ (the payload-*.schema.json for a {kind.replace('_', ' ')}).",
        ]
    )
    envelope_text = _render(envelope, "  ", _notes(kind, registry), values)
    payload_text = _render(payload, "  ", {}, values)
    body = (
        '{\n  "envelope": '
        + envelope_text
        + ",\n"
        + "".join(f"  // {line}\n" for line in payload_notes)
        + '  "payload": '
        + payload_text
        + "\n}"
    )
    return "\n".join(f"// {line}" for line in header) + "\n" + body + "\n"


def fill_template(text: str, fill: Callable[[str], Any]) -> Any:
    """The template's JSON with each placeholder string replaced by ``fill(placeholder)``."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and value.startswith("<envelope.") and value.endswith(">"):
            return fill(value)
        return value

    return walk(json.loads(strip_comments(text)))


def _draft(args: argparse.Namespace) -> int:
    kind = args.kind.lower()
    if kind not in MESSAGE_KINDS:
        raise CommandError(
            f"there is no message kind {args.kind!r}; the kinds are: {', '.join(MESSAGE_KINDS)}"
        )
    write_output(template_for(kind), args.out)
    return EXIT_OK


def add_draft_command(node_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    draft = node_sub.add_parser(
        "draft",
        help="print a draft template for a message kind, the registry's choices as comments",
        description=(
            "Prints a draft of KIND as JSON with // comments: every value to choose is a "
            'placeholder ("<envelope.purpose>") with the registry\'s choices and an example '
            "above it; the payload is a synthetic example to replace. Fill it in, then "
            "'hub policy check' and 'hub node submit' it (both ignore the comments). "
            "An unknown kind exits 2, listing the kinds."
        ),
    )
    draft.add_argument("kind", help=f"one of: {', '.join(MESSAGE_KINDS)}")
    draft.add_argument("--out", type=Path, help="write the template to this file")
    draft.set_defaults(func=_draft)
