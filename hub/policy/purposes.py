"""Purpose codes (REFERENCE.md 6A; rules PUR-*).

Every message states why it is sent as a registry purpose code, and each purpose may be
used only with the kinds of message the registry lists for it.

Pure: facts in, every violation out (STYLE.md rule 2).
"""

from __future__ import annotations

from hub.model import EnvelopeFields, Violation
from hub.policy.facts import PolicyFacts
from hub.policy.registry import Registry

__all__ = ["check_purpose"]


def check_purpose(
    fields: EnvelopeFields, facts: PolicyFacts, registry: Registry
) -> list[Violation]:
    """PUR-01 (the purpose exists) and PUR-02 (it may be used with this kind)."""
    purpose = registry.purpose(fields.purpose)
    if purpose is None:
        return [
            Violation(
                rule="PUR-01",
                path="$.purpose",
                message=(
                    f"{fields.purpose} is not a purpose in the registry; use a registry "
                    "purpose code such as PREVENT_REFERRAL or CHANNEL_ASSESSMENT"
                ),
            )
        ]
    if fields.kind not in purpose.kinds:
        return [
            Violation(
                rule="PUR-02",
                path="$.purpose",
                message=(
                    f"the purpose {purpose.id} is not used with a {fields.kind} (it is for "
                    f"{', '.join(purpose.kinds)}): choose the purpose this {fields.kind} "
                    "serves"
                ),
            )
        ]
    return []
