"""RFC 9457 problem details, with the hub's list of rule violations."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from hub.model.base import WireModel

__all__ = ["PROBLEM_MEDIA_TYPE", "Problem", "Violation"]

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Violation(WireModel):
    """One broken rule: a stable id from the registry, where, and what to do about it."""

    rule: str
    path: str
    message: str


class Problem(WireModel):
    type: str
    title: str
    status: Annotated[int, Field(ge=400, le=599)]
    detail: str | None = None
    instance: str | None = None
    violations: tuple[Violation, ...] = ()
