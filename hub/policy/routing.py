"""Routing: every recipient is an enrolled, active node (ROUTE-01, ROUTE-02).

One function for the hub and the node's pre-flight, so both refuse alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hub.model import Violation

__all__ = ["check_recipients"]


def check_recipients(
    recipients: Sequence[str], statuses: Mapping[str, str | None]
) -> list[Violation]:
    """``statuses`` maps each recipient to its registry status, or None when not enrolled."""
    violations: list[Violation] = []
    for index, node_id in enumerate(recipients):
        status = statuses.get(node_id)
        if status is None:
            violations.append(
                Violation(
                    rule="ROUTE-01",
                    path=f"$.recipients[{index}]",
                    message=f"{node_id} is not a node enrolled at this hub",
                )
            )
        elif status != "active":
            violations.append(
                Violation(
                    rule="ROUTE-02",
                    path=f"$.recipients[{index}]",
                    message=f"{node_id} is {status} and cannot receive messages",
                )
            )
    return violations
