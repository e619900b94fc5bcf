"""The policy engine: every rule over one message, every violation returned.

The same function runs in the node client before sending (pre-flight) and in the hub on
every submission (DESIGN.md section 2): a modified or hostile node cannot skip it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from hub.model import EnvelopeFields, Violation
from hub.policy.agreements import check_agreement
from hub.policy.consent import check_consent
from hub.policy.decisions import check_decision, check_release
from hub.policy.facts import PolicyFacts
from hub.policy.lawful_basis import check_lawful_basis
from hub.policy.manifest import check_manifest
from hub.policy.marking import check_marking
from hub.policy.marking_text import check_marking_text
from hub.policy.purposes import check_purpose
from hub.policy.registry import Registry
from hub.policy.roles import check_roles
from hub.policy.scope import check_scope
from hub.policy.workflow import check_referral_routing

__all__ = ["RULE_CHECKS", "evaluate", "ordered"]

Check = Callable[[EnvelopeFields, PolicyFacts, Registry], list[Violation]]

RULE_CHECKS: tuple[Check, ...] = (
    check_marking,
    check_marking_text,
    check_purpose,
    check_lawful_basis,
    check_consent,
    check_scope,
    check_decision,
    check_release,
    check_manifest,
    check_agreement,
    check_referral_routing,
    check_roles,
)


def evaluate(fields: EnvelopeFields, facts: PolicyFacts, registry: Registry) -> list[Violation]:
    """Run every rule; return every violation, in a stable order (by path, then rule)."""
    violations: list[Violation] = []
    for check in RULE_CHECKS:
        violations.extend(check(fields, facts, registry))
    return ordered(violations)


def ordered(violations: Iterable[Violation]) -> list[Violation]:
    """Violations without repeats, in the stable order every verdict uses (path, rule)."""
    unique = {(v.rule, v.path, v.message): v for v in violations}
    return sorted(unique.values(), key=lambda v: (v.path, v.rule, v.message))
