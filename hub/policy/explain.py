"""The registry as readable tables, for ``hub policy explain`` and ``docs/policy.md``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hub.policy.registry import Registry

__all__ = ["explain_markdown"]

_APD_WORDS = {
    "not_needed": "no",
    "needed": "yes",
    "needed_unless_to_competent_authority": "yes, unless to a competent authority",
}


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
        "Generated from `schemas/registry/` by the command below; a test keeps this file",
        "current. Do not edit by hand: change the registry and regenerate.",
        "",
        "```sh",
        ".venv/bin/hub policy explain --out docs/policy.md",
        "```",
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
        "type; `ANY` admits every type. Each discloser and each recipient must be covered by a",
        "gateway in every layer cited (GW-08, GW-09). Consent for Channel support follows the",
        "purpose (see Purposes), not the gateway. *APD*: whether relying on it needs an",
        "appropriate policy document reference (GW-14); *function*: an enactment conferring a",
        "statutory function that the implied power (IMPLIED-FUNCTION, GW-15) may rest on.",
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
                "APD",
                "function",
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
                    _APD_WORDS[g.appropriate_policy_document],
                    g.statutory_function,
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
        "The longest periods are local policy defaults for proportionality, not law: the sources",
        "set no period for any category.",
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
        "*Law enforcement*: sharing for the prevention or detection of crime, which goes to no",
        "one but the police or another competent authority (GW-10). *Consent needed*: sharing",
        "for the purpose needs the person's consent (a parent's or guardian's under 18) whatever",
        "gateway is cited (CS-08, CS-04). *Function*: the statutory function the purpose serves",
        "(GW-15).",
        "",
        *_table(
            (
                "id",
                "name",
                "message kinds",
                "law enforcement",
                "consent needed",
                "function",
                "source",
            ),
            (
                (
                    p.id,
                    p.name,
                    p.kinds,
                    p.law_enforcement,
                    p.consent_required,
                    p.statutory_function,
                    p.source,
                )
                for p in registry.purposes
            ),
        ),
        "",
        "### Request deadlines",
        "",
        "The sources set no time limit for answering a request: where *local policy* is yes, the",
        "hours are a local policy choice, not law.",
        "",
        *_table(
            ("purpose", "routine (h)", "urgent (h)", "local policy", "basis"),
            (
                (
                    p.id,
                    p.deadlines.routine_hours,
                    p.deadlines.urgent_hours,
                    p.deadlines.local_policy,
                    p.deadlines.basis,
                )
                for p in registry.purposes
                if p.deadlines is not None
            ),
        ),
        "",
        "## Who acts",
        "",
        "Which author roles may refer, decide and release (ROLE-01 .. ROLE-04), per agency type",
        "and purpose; the most specific entry decides. *Local policy*: the sources do not decide",
        "it; the hub's operators chose it (`schemas/registry/roles.yaml`).",
        "",
        *_table(
            (
                "id",
                "act",
                "agency types",
                "purposes",
                "categories",
                "roles",
                "local policy",
                "source",
            ),
            (
                (
                    g.id,
                    g.act,
                    g.agency_types,
                    g.purposes or "every",
                    g.categories or "every",
                    g.roles,
                    g.local_policy,
                    g.source,
                )
                for g in registry.roles.grants
            ),
        ),
        "",
        "Decisions that must record a Caldicott Guardian or IG consultation (ROLE-05) and the",
        "entry in the patient record (ROLE-06):",
        "",
        *_table(
            ("id", "when", "consult one of", "local policy", "source"),
            (
                (
                    c.id,
                    c.summary,
                    c.consult_one_of,
                    c.local_policy,
                    c.source,
                )
                for c in registry.roles.consultations
            ),
        ),
        "",
        *_table(
            ("id", "agency types", "outcomes", "local policy", "source"),
            (
                (r.id, r.agency_types, r.outcomes, r.local_policy, r.source)
                for r in registry.roles.subject_record_entry
            ),
        ),
        "",
        "## Agency types",
        "",
        *_table(
            (
                "id",
                "name",
                "public body",
                "competent authority (DPA 2018 Sch 7)",
                "common law confidentiality (GW-13)",
            ),
            (
                (a.id, a.name, a.public_body, a.competent_authority, a.common_law_confidentiality)
                for a in registry.agency_types
            ),
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
    if registry.secure_email_domains:
        out += [
            "",
            "## Secure email domains (the email bridge, EM-01 and EM-02)",
            "",
            *_table(
                ("domain", "subdomains too", "highest marking", "source"),
                (
                    (d.domain, d.subdomains, d.highest_marking, d.source)
                    for d in registry.secure_email_domains
                ),
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
