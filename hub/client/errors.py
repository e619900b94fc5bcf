"""Errors the node client raises; a hub problem keeps its RFC 9457 body."""

from __future__ import annotations

from hub.model import Problem, Violation

__all__ = ["ClientError", "HubProblem", "PreflightFailed", "VerificationFailed"]


class ClientError(Exception):
    """Base class for node client errors."""


class HubProblem(ClientError):
    """The hub answered with problem+json."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(f"{problem.status} {problem.title}: {problem.detail or ''}".strip())
        self.problem = problem


class PreflightFailed(ClientError):
    """The node's own checks refused the message before anything was sent."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(f"{v.rule} at {v.path}: {v.message}" for v in violations))
        self.violations = violations

    def as_problem(self) -> Problem:
        return Problem(
            type="urn:seh:problem:preflight-refused",
            title="Refused before sending",
            status=422,
            detail="The node's pre-flight checks refused the message; nothing was sent.",
            violations=tuple(self.violations),
        )


class VerificationFailed(ClientError):
    """Something received from the hub did not verify: signature, hash, or addressing."""
