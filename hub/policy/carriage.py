"""What the hub may carry at all, and to whom (REFERENCE.md 1.2, 1.6; rule MK-09).

Pure: facts in, every violation out. The full marking grammar, gateways, scope and
consent rules build on this in the policy engine.
"""

from __future__ import annotations

from collections.abc import Mapping

from hub.model import Marking, Violation

__all__ = ["ACCREDITATION_ORDER", "check_carriage", "marking_level"]

# An OFFICIAL-tier system: OFFICIAL < OFFICIAL-SENSITIVE; nothing above is carried.
ACCREDITATION_ORDER = {"OFFICIAL": 0, "OFFICIAL-SENSITIVE": 1}


def marking_level(marking: Marking) -> str:
    return "OFFICIAL-SENSITIVE" if marking.sensitive else marking.tier


def check_carriage(
    marking: Marking,
    recipient_accreditation: Mapping[str, str],
    *,
    path: str = "$.marking",
) -> list[Violation]:
    """Refuse tiers above OFFICIAL, national caveats, and recipients accredited too low."""
    violations: list[Violation] = []
    if marking.tier != "OFFICIAL":
        violations.append(
            Violation(
                rule="MK-09",
                path=f"{path}.tier",
                message=(
                    f"{marking.tier} material needs dedicated accredited networks; the hub "
                    "carries only OFFICIAL and OFFICIAL-SENSITIVE. Nothing was stored."
                ),
            )
        )
    if marking.national_caveats:
        violations.append(
            Violation(
                rule="MK-09",
                path=f"{path}.national_caveats",
                message=(
                    "national caveats apply only to SECRET and TOP SECRET (MK-06), which the "
                    "hub does not carry"
                ),
            )
        )
    if marking.sensitive and marking.tier != "OFFICIAL":
        violations.append(
            Violation(
                rule="MK-02",
                path=f"{path}.sensitive",
                message="the -SENSITIVE marking attaches only to OFFICIAL",
            )
        )
    if not violations:
        level = ACCREDITATION_ORDER[marking_level(marking)]
        for index, (node, accreditation) in enumerate(recipient_accreditation.items()):
            if ACCREDITATION_ORDER.get(accreditation, -1) < level:
                violations.append(
                    Violation(
                        rule="MK-11",
                        path=f"$.recipients[{index}]",
                        message=(
                            f"{node} is accredited for {accreditation} only and cannot "
                            f"receive {marking_level(marking)} material"
                        ),
                    )
                )
    return violations
