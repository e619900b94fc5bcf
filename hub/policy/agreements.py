"""Data sharing agreements (REFERENCE.md 5.2; rules DSA-*).

When a message says it falls under a data sharing agreement, everything about it must
fall within that agreement: in force today, for one of its purposes, between its
parties, for its data categories and under its gateways.

Pure: facts in, every violation out (STYLE.md rule 2).
"""

from __future__ import annotations

from hub.model import EnvelopeFields, Violation
from hub.policy.facts import PolicyFacts
from hub.policy.lawful_basis import cited_gateways
from hub.policy.registry import Registry

__all__ = ["check_agreement"]


def check_agreement(
    fields: EnvelopeFields, facts: PolicyFacts, registry: Registry
) -> list[Violation]:
    """DSA-01..DSA-06 when ``legal_basis.agreement`` is set.

    Gateway ids and categories the registry does not know are left to GW-06 and SCOPE-03,
    and recipients the hub does not know to ROUTE-01.
    """
    legal_basis = fields.legal_basis
    if legal_basis is None or legal_basis.agreement is None:
        return []
    agreement = registry.agreement(legal_basis.agreement)
    if agreement is None:
        return [
            Violation(
                rule="DSA-01",
                path="$.legal_basis.agreement",
                message=(
                    f"{legal_basis.agreement} is not a data sharing agreement in the registry; "
                    "cite a registered agreement or remove legal_basis.agreement"
                ),
            )
        ]
    violations: list[Violation] = []
    today = facts.today
    if today < agreement.valid_from or (
        agreement.valid_to is not None and today > agreement.valid_to
    ):
        span = f"from {agreement.valid_from.isoformat()}" + (
            f" to {agreement.valid_to.isoformat()}" if agreement.valid_to is not None else ""
        )
        violations.append(
            Violation(
                rule="DSA-06",
                path="$.legal_basis.agreement",
                message=(
                    f"{agreement.id} is in force {span}, not on {today.isoformat()}: cite an "
                    "agreement in force, or share without relying on one"
                ),
            )
        )
    if fields.purpose not in agreement.purposes:
        violations.append(
            Violation(
                rule="DSA-02",
                path="$.purpose",
                message=(
                    f"{agreement.id} does not cover the purpose {fields.purpose} (it covers "
                    f"{', '.join(agreement.purposes)}): use a purpose it covers or another "
                    "agreement"
                ),
            )
        )
    parties = set(agreement.parties)
    if facts.sender.node_id not in parties:
        violations.append(
            Violation(
                rule="DSA-03",
                path="$.sender",
                message=(
                    f"{facts.sender.node_id} is not a party to {agreement.id}; only its "
                    "parties may share under it"
                ),
            )
        )
    for index, node in enumerate(fields.recipients):
        # A recipient the hub does not know is refused by routing (ROUTE-01) instead.
        if node in facts.recipients and node not in parties:
            violations.append(
                Violation(
                    rule="DSA-03",
                    path=f"$.recipients[{index}]",
                    message=(
                        f"{node} is not a party to {agreement.id}: remove it from the "
                        "recipients, or share with it under another basis"
                    ),
                )
            )
    categories = set(agreement.categories)
    approved = fields.decision.approved_scope if fields.decision is not None else ()
    for path, items in (("$.scope", fields.scope), ("$.decision.approved_scope", approved)):
        for index, item in enumerate(items):
            if registry.category(item.category) is not None and item.category not in categories:
                violations.append(
                    Violation(
                        rule="DSA-04",
                        path=f"{path}[{index}].category",
                        message=(
                            f"{agreement.id} does not cover the data category "
                            f"{item.category}: remove it, or share it under another basis"
                        ),
                    )
                )
    gateways = set(agreement.gateways)
    for cited in cited_gateways(legal_basis, registry):
        if cited.gateway is not None and cited.gateway_id not in gateways:
            violations.append(
                Violation(
                    rule="DSA-05",
                    path=cited.path,
                    message=(
                        f"{agreement.id} does not list {cited.gateway_id} among its "
                        "gateways: rely on a gateway it lists, or do not cite the agreement"
                    ),
                )
            )
    return sorted(violations, key=lambda v: (v.path, v.rule, v.message))
