"""Specific, minimal data scope (REFERENCE.md 3.1 RQ-05, 3.5; rules SCOPE-*).

A request, decision or release names data categories from the registry, each with a
period where the category needs one and a justification: never "the whole record".
:func:`scope_within` is the subset test that decisions (DEC-01) and releases (REL-01)
reuse.

Pure: facts in, every violation out (STYLE.md rule 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from hub.model import EnvelopeFields, ScopeItem, Violation
from hub.policy.facts import Party, PolicyFacts
from hub.policy.lawful_basis import disclosers_and_receivers
from hub.policy.registry import Registry

__all__ = ["check_scope", "check_scope_items", "describe_period", "scope_within"]


def check_scope(fields: EnvelopeFields, facts: PolicyFacts, registry: Registry) -> list[Violation]:
    """SCOPE-01..SCOPE-09 over ``fields.scope``.

    Kinds in ``settings.scope_required_for`` must name at least one category; any other
    kind that carries a scope has it checked all the same. The categories must be held by
    the discloser: for an information request, at least one of the recipients asked; for
    every other kind, the sender. (A decision's approved scope is checked with the
    decision, in ``decisions.check_decision``.)
    """
    required = fields.kind in registry.settings.scope_required_for
    if not required and not fields.scope:
        return []
    disclosers, _ = disclosers_and_receivers(fields, facts)
    return check_scope_items(
        fields.scope,
        path="$.scope",
        holders=disclosers,
        today=facts.today,
        registry=registry,
        required=required,
    )


def check_scope_items(
    items: Sequence[ScopeItem],
    *,
    path: str,
    holders: Sequence[Party],
    today: date,
    registry: Registry,
    required: bool = True,
) -> list[Violation]:
    """Check one list of scope items found at ``path`` (e.g. ``$.decision.approved_scope``).

    ``holders`` are the parties the data is asked of; a category none of them holds is
    SCOPE-04 (skipped when no holder is known). ``required`` adds SCOPE-01 for an empty
    list.
    """
    settings = registry.settings
    violations: list[Violation] = []
    if not items:
        if required:
            violations.append(
                Violation(
                    rule="SCOPE-01",
                    path=path,
                    message=(
                        "name at least one specific data category from the registry, with "
                        "its period and justification"
                    ),
                )
            )
        return violations
    if len(items) > settings.max_scope_categories:
        violations.append(
            Violation(
                rule="SCOPE-02",
                path=path,
                message=(
                    f"{len(items)} categories are named; at most "
                    f"{settings.max_scope_categories} may be: ask only for what the purpose "
                    "needs"
                ),
            )
        )
    seen: set[str] = set()
    whole_record = set(settings.whole_record_ids)
    for index, item in enumerate(items):
        at = f"{path}[{index}]"
        if item.category in seen:
            violations.append(
                Violation(
                    rule="SCOPE-09",
                    path=f"{at}.category",
                    message=(
                        f"{item.category} is named more than once; name each category once "
                        "with one period covering what is needed"
                    ),
                )
            )
        seen.add(item.category)
        if not item.justification_present:
            violations.append(
                Violation(
                    rule="SCOPE-08",
                    path=f"{at}.justification_present",
                    message=(
                        f"give the justification for {item.category}: why this category is "
                        "necessary for the purpose"
                    ),
                )
            )
        violations.extend(_period_direction(item, at, today))
        category = registry.category(item.category)
        if item.category in whole_record or category is None:
            violations.append(
                Violation(
                    rule="SCOPE-03",
                    path=f"{at}.category",
                    message=(
                        f"{item.category} asks for the whole record; name the specific data "
                        "categories needed instead"
                        if item.category in whole_record
                        else f"{item.category} is not a data category in the registry; use a "
                        "registry category id"
                    ),
                )
            )
            continue
        held = {p.agency_type for p in holders}
        if holders and not held & set(category.held_by):
            violations.append(
                Violation(
                    rule="SCOPE-04",
                    path=f"{at}.category",
                    message=(
                        f"{category.id} is held by {', '.join(category.held_by)}, not by "
                        f"{', '.join(sorted(held))}: ask an agency that holds it, or remove it"
                    ),
                )
            )
        if category.needs_period:
            for end, value in (("period_from", item.period_from), ("period_to", item.period_to)):
                if value is None:
                    violations.append(
                        Violation(
                            rule="SCOPE-05",
                            path=f"{at}.{end}",
                            message=(
                                f"{category.id} needs a period: give {end} so that only the "
                                "relevant records are disclosed"
                            ),
                        )
                    )
        limit = category.max_period_days
        if limit is not None and item.period_from is not None and not item.extension_reason_present:
            # An open end runs to today. Days are counted inclusively: 1 Jan to 31 Dec of
            # a normal year is 365 days.
            end_date = item.period_to if item.period_to is not None else today
            days = (end_date - item.period_from).days + 1
            if days > limit:
                violations.append(
                    Violation(
                        rule="SCOPE-06",
                        path=f"{at}.period_from",
                        message=(
                            f"the period for {category.id} is {days} days, longer than its "
                            f"{limit}-day limit: shorten it or give an extension reason"
                        ),
                    )
                )
    return sorted(violations, key=lambda v: (v.path, v.rule, v.message))


def _period_direction(item: ScopeItem, at: str, today: date) -> list[Violation]:
    violations: list[Violation] = []
    start, end = item.period_from, item.period_to
    if start is not None and end is not None and start > end:
        violations.append(
            Violation(
                rule="SCOPE-07",
                path=f"{at}.period_to",
                message=(
                    f"the period ends ({end.isoformat()}) before it starts "
                    f"({start.isoformat()}): correct period_from or period_to"
                ),
            )
        )
    if end is not None and end > today:
        violations.append(
            Violation(
                rule="SCOPE-07",
                path=f"{at}.period_to",
                message=(
                    f"the period ends in the future ({end.isoformat()}); records are "
                    f"disclosed up to today at most: set period_to to {today.isoformat()} or "
                    "earlier"
                ),
            )
        )
    elif end is None and start is not None and start > today:
        violations.append(
            Violation(
                rule="SCOPE-07",
                path=f"{at}.period_from",
                message=(
                    f"the period starts in the future ({start.isoformat()}): set period_from "
                    f"to {today.isoformat()} or earlier"
                ),
            )
        )
    return violations


def describe_period(item: ScopeItem) -> str:
    """A scope item as the rules' messages name it: ``medication 2025-01-01 to (open)``."""
    start = item.period_from.isoformat() if item.period_from else "(open)"
    end = item.period_to.isoformat() if item.period_to else "(open)"
    return f"{item.category} {start} to {end}"


def scope_within(inner: Sequence[ScopeItem], outer: Sequence[ScopeItem]) -> list[int]:
    """Indices of ``inner`` items that no ``outer`` item covers.

    An outer item covers an inner one of the same category whose period lies within its
    own. A missing bound is open-ended: an outer item without a period covers any period,
    and an inner item without a bound the outer item has is not within it.
    """
    return [
        index
        for index, item in enumerate(inner)
        if not any(_covers(candidate, item) for candidate in outer)
    ]


def _covers(outer: ScopeItem, inner: ScopeItem) -> bool:
    if outer.category != inner.category:
        return False
    if outer.period_from is not None and (
        inner.period_from is None or inner.period_from < outer.period_from
    ):
        return False
    return outer.period_to is None or (
        inner.period_to is not None and inner.period_to <= outer.period_to
    )
