"""Check that a decrypted health release matches the envelope it arrived under.

The hub checks the envelope (the release names only categories and periods the decision
approved, rule REL-01) but never sees the payload. The receiving node is the first place
the bundle itself can be checked against that envelope, so it does so before storing or
showing anything: a bundle that holds more than the envelope says, or is about someone
else, is rejected. The rules are the sender's own (``agency_adapters.health.mapping``),
so a correct release always passes: every resource must be exactly its own released
form (the allow-list, and the element rules, recomputed here), so an element the
allow-list does not name, a coding of another category, or a reference to something
not in the release is refused.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from agency_adapters.health.mapping import (
    CATEGORY_SYSTEM,
    CONFIDENTIALITY_SYSTEM,
    EVENT_CATEGORIES,
    LINKED_RESOURCES,
    MARKING_SYSTEM,
    PATIENT_ELEMENTS,
    RELEASE_PATIENT_ID,
    RELEASE_PATIENT_REFERENCE,
    RELEASED_CONFIDENTIALITY,
    SUBJECT_ELEMENTS,
    SUBJECT_REF_SYSTEM,
    category_tags,
    classify,
    event_date,
    extra_paths,
    in_approved_period,
    references_at,
    released_form,
    released_patient,
    values_at,
)
from agency_adapters.health.release_builder import InvalidRecord, validate_bundle
from hub.model import Marking, ScopeItem, StrictJSONError, loads_strict

__all__ = ["ReleaseEnvelope", "ReleaseMismatch", "check_release", "require_release_matches"]

_LINKED_BY_TYPE = {
    resource_type: link for link in LINKED_RESOURCES for resource_type in link.resource_types
}


class ReleaseEnvelope(Protocol):
    """What the check needs from an envelope (``EnvelopeFields`` and ``Envelope`` fit)."""

    @property
    def kind(self) -> str: ...

    @property
    def subject_ref(self) -> str | None: ...

    @property
    def marking(self) -> Marking: ...

    @property
    def scope(self) -> Sequence[ScopeItem]: ...


class ReleaseMismatch(Exception):
    """A decrypted release does not match its envelope; ``problems`` says how."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("the release does not match its envelope: " + "; ".join(problems))
        self.problems = tuple(problems)


def require_release_matches(envelope: ReleaseEnvelope, bundle_json: bytes) -> None:
    """Raise :class:`ReleaseMismatch` unless :func:`check_release` finds nothing."""
    problems = check_release(envelope, bundle_json)
    if problems:
        raise ReleaseMismatch(problems)


def check_release(envelope: ReleaseEnvelope, bundle_json: bytes) -> list[str]:
    """Every way the release bundle differs from its envelope; empty if it matches.

    The bundle must parse as strict JSON and validate as a FHIR R4 Bundle; name the
    envelope's subject in ``Bundle.identifier``; and every resource must carry the
    envelope's marking and a category tag that the envelope's scope names, belong to that
    category by the shared mapping, be about the subject, hold nothing beyond its
    released form, and (for a history category) meet the category's approved period.
    """
    problems: list[str] = []
    if envelope.kind != "release":
        problems.append(f"the envelope is a {envelope.kind}, not a release")
    try:
        document = loads_strict(bundle_json)
    except StrictJSONError as exc:
        return [*problems, f"the release is not valid JSON: {exc}"]
    if not isinstance(document, dict):
        return [*problems, "the release is not a JSON object"]
    try:
        validate_bundle(document)
    except InvalidRecord as exc:
        return [*problems, f"the release is not a valid FHIR R4 Bundle: {exc}"]

    if document.get("type") != "collection":
        problems.append(f"Bundle.type is {document.get('type')!r}, not 'collection'")
    problems.extend(_subject_problems(envelope, document))
    marking = envelope.marking.render()
    problems.extend(_label_problems("the Bundle", document, marking))

    scope: dict[str, list[ScopeItem]] = defaultdict(list)
    for item in envelope.scope:
        scope[item.category].append(item)
    resources: list[Mapping[str, Any]] = [
        entry["resource"] for entry in document.get("entry", []) if "resource" in entry
    ]
    if len(resources) != len(document.get("entry", [])):
        problems.append("every entry of a release carries a resource")
    referenced = _references(resources)
    released = frozenset(
        f"{r['resourceType']}/{r['id']}" for r in resources if isinstance(r.get("id"), str)
    )
    for number, resource in enumerate(resources, start=1):
        where = f"entry {number} ({resource['resourceType']}/{resource.get('id', '?')})"
        problems.extend(_label_problems(where, resource, marking))
        problems.extend(_resource_problems(where, resource, scope, referenced, released))
    if sum(1 for r in resources if r["resourceType"] == "Patient") > 1:
        problems.append("a release holds at most one Patient")
    return problems


def _subject_problems(envelope: ReleaseEnvelope, document: Mapping[str, Any]) -> list[str]:
    identifier = document.get("identifier")
    if envelope.subject_ref is None:
        return ["the envelope names no subject_ref to match the release against"]
    if not isinstance(identifier, Mapping) or identifier.get("system") != SUBJECT_REF_SYSTEM:
        return [f"Bundle.identifier does not carry a subject reference ({SUBJECT_REF_SYSTEM})"]
    if identifier.get("value") != envelope.subject_ref:
        return [
            f"Bundle.identifier names subject {identifier.get('value')!r}, but the envelope "
            f"names {envelope.subject_ref!r}"
        ]
    return []


def _label_problems(where: str, resource: Mapping[str, Any], marking: str) -> list[str]:
    security = [c for c in values_at(resource, "meta.security") if isinstance(c, Mapping)]
    markings = {c.get("code") for c in security if c.get("system") == MARKING_SYSTEM}
    confidentiality = {c.get("code") for c in security if c.get("system") == CONFIDENTIALITY_SYSTEM}
    problems: list[str] = []
    if markings != {marking}:
        found = ", ".join(sorted(str(m) for m in markings)) or "none"
        problems.append(f"{where} is not labelled with the envelope marking {marking!r} ({found})")
    if confidentiality != {RELEASED_CONFIDENTIALITY}:
        problems.append(
            f"{where} does not carry confidentiality {RELEASED_CONFIDENTIALITY} in meta.security"
        )
    return problems


def _references(resources: Sequence[Mapping[str, Any]]) -> dict[str, set[str]]:
    """Category -> the references released resources of that category use to link."""
    links: dict[str, set[str]] = defaultdict(set)
    for resource in resources:
        for link in LINKED_RESOURCES:
            if link.category not in category_tags(resource):
                continue
            for source_type, path in link.referenced_from:
                if resource["resourceType"] == source_type:
                    links[link.category].update(references_at(resource, path))
    return links


def _beyond_form(
    where: str, resource: Mapping[str, Any], expected: Mapping[str, Any], tags: Sequence[str]
) -> list[str]:
    """Elements the resource carries beyond its released form under ``tags``."""
    actual = {key: value for key, value in resource.items() if key != "meta"}
    extra = extra_paths(actual, expected)
    if not extra:
        return []
    return [
        f"{where} carries {', '.join(extra)}, which a release under {', '.join(tags)} "
        "never holds (outside the allow-list, another category's codes, a reference to "
        "something not released, or outside the approved period)"
    ]


def _resource_problems(
    where: str,
    resource: Mapping[str, Any],
    scope: Mapping[str, Sequence[ScopeItem]],
    referenced: Mapping[str, set[str]],
    released: frozenset[str],
) -> list[str]:
    tags = category_tags(resource)
    if not tags:
        return [f"{where} has no category tag ({CATEGORY_SYSTEM})"]
    problems = [
        f"{where} is released under {tag}, which the envelope scope does not name"
        for tag in tags
        if tag not in scope
    ]
    resource_type = resource["resourceType"]
    if resource_type == "Patient":
        return problems + _patient_problems(where, resource, tags, scope, released)
    if resource_type in _LINKED_BY_TYPE:
        link = _LINKED_BY_TYPE[resource_type]
        if tags != [link.category]:
            problems.append(f"{where} belongs only under {link.category}, not {', '.join(tags)}")
            return problems
        if f"{resource_type}/{resource.get('id')}" not in referenced[link.category]:
            problems.append(f"{where} is not referenced by a released {link.category} resource")
        return problems + _beyond_form(
            where, resource, released_form(resource, link.category, released), tags
        )
    if resource_type not in SUBJECT_ELEMENTS:
        return [*problems, f"{where} is a resource type no category releases"]

    category = classify(resource)
    if len(tags) != 1 or tags[0] != category:
        problems.append(
            f"{where} is tagged {', '.join(tags)}, but by its content belongs to "
            f"{category or 'no releasable category'}"
        )
        return problems
    subjects = references_at(resource, SUBJECT_ELEMENTS[resource_type])
    if RELEASE_PATIENT_REFERENCE not in subjects:
        problems.append(f"{where} is not about the release subject ({RELEASE_PATIENT_REFERENCE})")
    problems.extend(
        _beyond_form(where, resource, released_form(resource, category, released), tags)
    )
    if category in EVENT_CATEGORIES and category in scope:
        when = event_date(resource)
        if when is None:
            problems.append(f"{where} has no date, so it cannot be inside the approved period")
        elif not in_approved_period(when, scope[category]):
            periods = ", ".join(
                f"{item.period_from or '...'} to {item.period_to or '...'}"
                for item in scope[category]
            )
            problems.append(
                f"{where} is dated {when.value} ({when.element}), outside the approved "
                f"period for {category} ({periods})"
            )
    return problems


def _patient_problems(
    where: str,
    patient: Mapping[str, Any],
    tags: Sequence[str],
    scope: Mapping[str, Sequence[ScopeItem]],
    released: frozenset[str],
) -> list[str]:
    problems: list[str] = []
    unknown = [tag for tag in tags if tag not in PATIENT_ELEMENTS]
    if unknown:
        problems.append(f"{where}: a Patient is released only under {', '.join(PATIENT_ELEMENTS)}")
    if patient.get("id") != RELEASE_PATIENT_ID:
        problems.append(f"{where}: the released Patient's id must be {RELEASE_PATIENT_ID!r}")
        return problems
    expected = released_patient(patient, tags, scope, released)
    return problems + _beyond_form(where, patient, expected, tags)
