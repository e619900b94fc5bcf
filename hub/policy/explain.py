"""The registry as readable tables, for ``hub policy explain`` and ``docs/policy.md``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hub.policy.registry import Registry

__all__ = ["explain_markdown"]


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "":
        return "—"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "—"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return lines


def explain_markdown(registry: Registry) -> str:
    """Every rule, gateway, data category, purpose, agency type and marking, as markdown."""
    out = [
        "# Policy reference",
        "",
        "Generated from `schemas/registry/` by `hub policy explain --markdown`; a test keeps",
        "this file current. Do not edit by hand: change the registry and regenerate.",
        "",
        "## Rules",
        "",
        *_table(
            ("rule", "what it checks", "source"),
            ((r.id, r.summary, r.source) for r in registry.rules),
        ),
        "",
        "## Lawful gateways",
        "",
        "Who may rely on a gateway (as discloser) and to whom it permits disclosure, by agency",
        "type; `ANY` admits every type.",
        "",
        *_table(
            (
                "id",
                "family",
                "title",
                "who",
                "to whom",
                "consent needed",
                "overrides refusal",
                "citation",
            ),
            (
                (
                    g.id,
                    g.family,
                    g.title,
                    g.who,
                    g.to_whom,
                    g.consent_required,
                    g.overrides_refusal,
                    g.citation,
                )
                for g in registry.gateways
            ),
        ),
        "",
        "## Data categories",
        "",
        f"A request names at most {registry.settings.max_scope_categories} categories; "
        f"these ids are refused as 'whole record': {_cell(registry.settings.whole_record_ids)}.",
        "",
        *_table(
            (
                "id",
                "name",
                "held by",
                "special category",
                "criminal offence",
                "period needed",
                "longest period (days)",
            ),
            (
                (
                    c.id,
                    c.name,
                    c.held_by,
                    c.special_category,
                    c.criminal_offence,
                    c.needs_period,
                    c.max_period_days,
                )
                for c in registry.data_categories
            ),
        ),
        "",
        "## Purposes",
        "",
        *_table(
            ("id", "name", "message kinds", "routine deadline (h)", "urgent deadline (h)"),
            (
                (
                    p.id,
                    p.name,
                    p.kinds,
                    p.deadlines.routine_hours if p.deadlines else None,
                    p.deadlines.urgent_hours if p.deadlines else None,
                )
                for p in registry.purposes
            ),
        ),
        "",
        "## Agency types",
        "",
        *_table(
            ("id", "name", "public body", "competent authority (DPA 2018 Sch 7)"),
            ((a.id, a.name, a.public_body, a.competent_authority) for a in registry.agency_types),
        ),
        "",
        "## Protective markings",
        "",
        *_table(
            ("tier", "carried by the hub", "minimum vetting", "summary"),
            (
                (t.id, t.carried_by_hub, t.minimum_vetting, t.summary)
                for t in registry.markings.tiers
            ),
        ),
        "",
        *_table(
            ("handling instruction", "string", "allowed with"),
            ((h.id, h.string, h.allowed_with) for h in registry.markings.handling_instructions),
        ),
        "",
        *_table(
            ("descriptor", "string", "scheme", "allowed with", "current equivalent"),
            (
                (d.id, d.string, d.scheme, d.allowed_with, d.current_equivalent)
                for d in registry.markings.descriptors
            ),
        ),
        "",
        *_table(
            ("legacy marking", "treatment", "maps to", "summary"),
            ((m.string, m.treatment, m.maps_to, m.summary) for m in registry.markings.legacy),
        ),
        "",
        *_table(
            ("message kind", "minimum marking"),
            sorted(registry.markings.minimum_level_by_kind.items()),
        ),
    ]
    if registry.agreements:
        out += [
            "",
            "## Data sharing agreements",
            "",
            *_table(
                ("id", "title", "parties", "purposes", "in force"),
                (
                    (
                        a.id,
                        a.title,
                        a.parties,
                        a.purposes,
                        f"{a.valid_from} to {a.valid_to or 'open'}",
                    )
                    for a in registry.agreements
                ),
            ),
        ]
    return "\n".join(out) + "\n"
