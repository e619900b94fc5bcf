"""Forms backed by the wire models, and errors shown beside the fields they concern.

A form's field names are paths into the draft it builds, dotted with list indices:
``legal_basis.art9``, ``scope.0.category``, ``payload.requested.1.justification``. So a
form and a draft cannot drift: :func:`unflatten` turns the posted fields into the same
document ``hub node submit`` reads, the same pydantic models validate it, and the same
pre-flight judges it. Every error, whether a model's validation error or a broken policy
rule, carries a path in that same form, so :class:`FormErrors` can put it next to its
field, with the rule's id, what the rule says and where the rule comes from (the
registry's ``rules.yaml``), and list it in the error summary at the top of the page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from hub.model import Violation
from hub.policy.registry import Registry

__all__ = [
    "FieldError",
    "FormErrors",
    "field_id",
    "field_path",
    "unflatten",
    "validation_errors",
    "violation_errors",
]

_INDEX = re.compile(r"\[(\d+)\]")


def field_path(path: str) -> str:
    """A JSON path from a violation (``$.scope[0].category``) as a field name."""
    path = path.removeprefix("$").removeprefix(".")
    return _INDEX.sub(r".\1", path).strip(".")


def field_id(name: str) -> str:
    """The HTML id of a field (``scope.0.category`` → ``f-scope-0-category``)."""
    return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str
    rule: str | None = None
    explanation: str | None = None
    source: str | None = None

    @property
    def anchor(self) -> str:
        return field_id(self.field) if self.field else "form-top"


@dataclass
class FormErrors:
    """Errors by field; an error whose field is not on the form goes to its nearest one."""

    errors: list[FieldError] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def extend(self, other: FormErrors) -> None:
        self.errors.extend(other.errors)

    def add(self, name: str, message: str, rule: str | None = None) -> None:
        self.errors.append(FieldError(name, message, rule))

    def attach_to(self, fields: Iterable[str]) -> FormErrors:
        """Move each error to the longest field name on the form that prefixes its path."""
        known = sorted(set(fields), key=len, reverse=True)
        moved = []
        for error in self.errors:
            target = next(
                (
                    name
                    for name in known
                    if error.field == name or error.field.startswith(name + ".")
                ),
                "",
            )
            moved.append(
                FieldError(target, error.message, error.rule, error.explanation, error.source)
            )
        return FormErrors(moved)

    def for_field(self, name: str) -> list[FieldError]:
        return [error for error in self.errors if error.field == name]

    def general(self) -> list[FieldError]:
        """Errors that belong to no field on the form (shown at the top)."""
        return self.for_field("")

    @property
    def rules(self) -> list[str]:
        return sorted({error.rule for error in self.errors if error.rule})


def violation_errors(violations: Iterable[Violation], registry: Registry) -> FormErrors:
    """Broken policy rules as form errors, each with its rule's summary and source."""
    texts = {rule.id: rule for rule in registry.rules}
    errors = []
    for violation in violations:
        text = texts.get(violation.rule)
        errors.append(
            FieldError(
                field=field_path(violation.path),
                message=violation.message,
                rule=violation.rule,
                explanation=text.summary if text else None,
                source=text.source if text else None,
            )
        )
    return FormErrors(errors)


def validation_errors(exc: ValidationError, *, prefix: str = "") -> FormErrors:
    """A model's validation errors as form errors (never echoing the value given)."""
    errors = []
    for error in exc.errors(include_input=False, include_url=False):
        name = ".".join(str(part) for part in error["loc"] if not str(part).startswith("function-"))
        if prefix:
            name = f"{prefix}.{name}" if name else prefix
        message = str(error["msg"]).removeprefix("Value error, ")
        errors.append(FieldError(field=name, message=message, rule=None))
    return FormErrors(errors)


def unflatten(form: Iterable[tuple[str, str]] | Mapping[str, str]) -> dict[str, Any]:
    """Posted fields (``scope.0.category=…``) as the nested document they name.

    Empty values are dropped (an unanswered optional question is absent, not ""); a name
    posted more than once (a group of checkboxes) becomes a list; numeric segments make
    lists in index order, so ``scope.2`` after ``scope.0`` is the second item.
    """
    pairs = form.items() if isinstance(form, Mapping) else form
    root: dict[str, Any] = {}
    for name, value in pairs:
        if name == "csrf_token" or name.startswith("_") or value == "":
            continue
        parts = name.split(".")
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        leaf = parts[-1]
        if leaf in node:
            previous = node[leaf]
            node[leaf] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            node[leaf] = value
    converted: dict[str, Any] = _lists(root)
    return converted


def _lists(node: Any) -> Any:
    """Turn dicts whose keys are all digits into lists, ordered by index."""
    if isinstance(node, dict):
        converted = {key: _lists(value) for key, value in node.items()}
        if converted and all(key.isdigit() for key in converted):
            return [converted[key] for key in sorted(converted, key=int)]
        return converted
    return node
