"""A marking written as text: read it into a draft, and check it on every envelope (MK-14).

Agencies' documents carry their marking as text ("Official Sensitive", "RESTRICTED",
"OFFICIAL-SENSITIVE PERSONAL DATA"). A draft may give its marking so;
:func:`resolve_draft_marking` reads it with :func:`~hub.policy.marking.parse_marking`,
keeps the text verbatim in ``marking_text`` beside the structured marking (REFERENCE.md
1.9: "stores the original marking verbatim") and returns what it normalised, for the
user. Text the parser does not understand, or a legacy marking the hub refuses
(CONFIDENTIAL), is an error naming the text: nothing is guessed.

:func:`check_marking_text` runs on every envelope (hub, pre-flight, ``hub policy check``):
the structured marking must be what the text reads as, or the same marking raised to a
higher level by its creator (HR-01). It is never lower, and never drops a handling
instruction or descriptor the text carries: no marking is downgraded automatically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from hub.model import DraftEnvelope, EnvelopeFields, Marking, Violation
from hub.policy.facts import PolicyFacts
from hub.policy.marking import marking_level, parse_marking, render_marking
from hub.policy.registry import Registry

__all__ = ["MarkingResolution", "check_marking_text", "resolve_draft_marking"]

_RANK: Final = {"OFFICIAL": 0, "OFFICIAL-SENSITIVE": 1, "SECRET": 2, "TOP SECRET": 3}
_QUOTE_MAX: Final = 60


def _quote(text: str) -> str:
    shown = text if len(text) <= _QUOTE_MAX else text[: _QUOTE_MAX - 1] + "…"
    return repr(shown)


@dataclass(frozen=True, slots=True)
class MarkingResolution:
    """A draft envelope with its marking structured, what was normalised, or why not.

    ``envelope`` is None exactly when ``violations`` is not empty.
    """

    envelope: DraftEnvelope | None
    notes: tuple[str, ...]
    violations: tuple[Violation, ...]


def resolve_draft_marking(envelope: DraftEnvelope, registry: Registry) -> MarkingResolution:
    """Read a draft's text marking; a structured marking passes through unchanged."""
    text = envelope.text_marking()
    if text is None:
        return MarkingResolution(envelope=envelope, notes=(), violations=())
    parsed = parse_marking(text, registry)
    if parsed.marking is None or parsed.violations:
        return MarkingResolution(
            envelope=None,
            notes=parsed.notes,
            violations=tuple(
                Violation(
                    rule=v.rule,
                    path="$.envelope.marking",
                    message=f"the marking {_quote(text)} cannot be used: {v.message}",
                )
                for v in parsed.violations
            ),
        )
    resolved = envelope.model_copy(update={"marking": parsed.marking, "marking_text": text})
    notes = [*parsed.notes]
    canonical = render_marking(parsed.marking)
    if canonical != text:
        notes.append(f"marking {_quote(text)} read as {canonical!r}; the original text is kept")
    return MarkingResolution(envelope=resolved, notes=tuple(notes), violations=())


def _keeps_controls(marking: Marking, parsed: Marking) -> bool:
    """Whether ``marking`` keeps the handling instruction and descriptors of ``parsed``."""
    handling_kept = parsed.handling is None or (
        marking.handling == parsed.handling and marking.handling_orgs == parsed.handling_orgs
    )
    return handling_kept and set(parsed.descriptors) <= set(marking.descriptors)


def check_marking_text(
    fields: EnvelopeFields, facts: PolicyFacts, registry: Registry
) -> list[Violation]:
    """MK-14 (and the parser's MK-01/MK-07/MK-13 on the text): every violation."""
    text = fields.marking_text
    if text is None:
        return []
    parsed = parse_marking(text, registry)
    if parsed.marking is None or parsed.violations:
        return [
            Violation(rule=v.rule, path="$.marking_text", message=v.message)
            for v in parsed.violations
        ]
    marking = fields.marking
    if marking == parsed.marking:
        return []
    raised = _RANK[marking_level(marking)] > _RANK[marking_level(parsed.marking)]
    if raised and _keeps_controls(marking, parsed.marking):
        return []
    return [
        Violation(
            rule="MK-14",
            path="$.marking",
            message=(
                f"the marking text {_quote(text)} reads as {render_marking(parsed.marking)!r}, "
                f"but the envelope is marked {render_marking(marking)!r}; only the creator "
                "changes a marking, and the hub never lowers one: send the marking the text "
                "gives, or a higher one that keeps its handling and descriptors"
            ),
        )
    ]
