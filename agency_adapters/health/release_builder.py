"""Build the release bundle a health node sends for an approved information request.

Given the patient's record as a FHIR R4 Bundle and the approved scope, the builder keeps
only the resources in approved categories and periods (``mapping``), strips what could
carry other information, labels every resource with the marking and the category it was
released under, and returns the bundle's bytes. The record is validated on the way in
and the release on the way out, both with the ``fhir.resources`` R4B models (R4B covers
the R4 resources used here). The input is never changed.
"""

from __future__ import annotations

import copy
import hashlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from agency_adapters.health.mapping import (
    CATEGORY_RESOURCES,
    CATEGORY_SYSTEM,
    DROPPED_ELEMENTS,
    LINKED_RESOURCES,
    PATIENT_ELEMENTS,
    RELEASE_PATIENT_ID,
    RELEASE_PATIENT_REFERENCE,
    SUBJECT_ELEMENTS,
    SUBJECT_REF_SYSTEM,
    classify,
    event_date,
    excluded_by_status,
    in_approved_period,
    marking_labels,
    references_at,
    values_at,
)
from hub.model import Marking, ScopeItem

__all__ = [
    "InvalidRecord",
    "ReleaseResult",
    "UnsupportedScope",
    "build_release",
    "validate_bundle",
]

FhirResource = dict[str, Any]

_REFERENCE_KEYS = frozenset({"reference", "type", "identifier", "display", "id", "extension"})


class InvalidRecord(ValueError):
    """The record is not a valid FHIR R4 Bundle holding exactly one patient's record."""


class UnsupportedScope(ValueError):
    """The approved scope or marking asks for something this builder cannot release."""


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    """The release bundle's bytes and what it holds."""

    bundle_json: bytes
    categories: frozenset[str]
    resource_count: int
    excluded_count: int

    @property
    def sha256(self) -> str:
        """The hex SHA-256 of ``bundle_json``: what the disclosure log records."""
        return hashlib.sha256(self.bundle_json).hexdigest()


def validate_bundle(raw: Mapping[str, Any]) -> Bundle:
    """Validate a Bundle dict with the R4B models; any failure is an :class:`InvalidRecord`.

    ``fhir.resources`` raises a pydantic ``ValidationError`` (a ``ValueError``) for bad
    content, but a ``KeyError`` for an unknown ``resourceType``; both are translated here.
    """
    if raw.get("resourceType") != "Bundle":
        raise InvalidRecord("not a FHIR Bundle (resourceType must be 'Bundle')")
    try:
        return Bundle.model_validate(copy.deepcopy(dict(raw)))
    except KeyError as exc:
        raise InvalidRecord(f"unknown FHIR resource type {exc}") from None
    except (ValueError, TypeError) as exc:
        raise InvalidRecord(f"not a valid FHIR R4 Bundle: {exc}") from None


def build_release(
    record: Mapping[str, Any] | Bundle,
    approved_scope: Sequence[ScopeItem],
    *,
    marking: Marking,
    subject_ref: str,
) -> ReleaseResult:
    """The release bundle for ``approved_scope`` out of the patient's ``record``.

    Raises :class:`InvalidRecord` if the record does not validate or does not hold
    exactly one Patient, and :class:`UnsupportedScope` if the scope names a category this
    builder does not release from a FHIR record, or the marking is above OFFICIAL (the
    hub refuses those, rule MK-09).
    """
    if marking.tier != "OFFICIAL":
        raise UnsupportedScope(f"a health release is OFFICIAL; got {marking.tier} (MK-09)")
    unsupported = sorted({item.category for item in approved_scope} - set(CATEGORY_RESOURCES))
    if unsupported:
        raise UnsupportedScope(
            f"not released from the FHIR record: {', '.join(unsupported)} "
            "(see agency_adapters/health/mapping.py)"
        )
    scope: dict[str, list[ScopeItem]] = defaultdict(list)
    for item in approved_scope:
        scope[item.category].append(item)

    raw = record.model_dump(mode="json") if isinstance(record, Bundle) else record
    # Select from the validated model's own JSON, so only what validated can be released
    # and the caller's object is never touched.
    document = validate_bundle(raw).model_dump(mode="json")
    entries = [entry for entry in document.get("entry", []) if "resource" in entry]
    patients = [e for e in entries if e["resource"]["resourceType"] == "Patient"]
    if len(patients) != 1:
        raise InvalidRecord(f"a record holds exactly one Patient; this one has {len(patients)}")
    is_patient = _patient_matcher(patients[0])
    patient = patients[0]["resource"]

    # position in the record -> (resource, categories it is released under)
    chosen: dict[int, tuple[FhirResource, list[str]]] = {}
    for position, entry in enumerate(entries):
        resource = entry["resource"]
        if resource is patient:
            tags = _patient_categories(patient, scope)
            if tags:
                chosen[position] = (_released_patient(patient, tags), tags)
            continue
        category = classify(resource)
        if category is None or category not in scope or not _about(resource, is_patient):
            continue
        when = event_date(resource)
        if when is not None and in_approved_period(when, scope[category]):
            chosen[position] = (resource, [category])

    for position, category in _linked(entries, chosen, scope):
        chosen[position] = (entries[position]["resource"], [category])

    labels = marking_labels(marking)
    released: list[FhirResource] = []
    # The Patient first, then the record's own order.
    for position in sorted(chosen, key=lambda p: (chosen[p][0]["resourceType"] != "Patient", p)):
        resource, tags = chosen[position]
        released.append(_labelled(_minimised(resource, is_patient), tags, labels))

    bundle = {
        "resourceType": "Bundle",
        "meta": {"security": copy.deepcopy(labels)},
        "identifier": {"system": SUBJECT_REF_SYSTEM, "value": subject_ref},
        "type": "collection",
        "entry": [{"resource": resource} for resource in released],
    }
    try:
        bundle_json = validate_bundle(bundle).model_dump_json().encode("utf-8")
    except InvalidRecord as exc:
        # Stripping free text can leave a resource without an element it requires.
        raise InvalidRecord(f"the release bundle does not validate: {exc}") from None
    return ReleaseResult(
        bundle_json=bundle_json,
        categories=frozenset(tag for _, tags in chosen.values() for tag in tags),
        resource_count=len(released),
        excluded_count=len(entries) - len(chosen),
    )


def _patient_matcher(entry: Mapping[str, Any]) -> Callable[[Any], bool]:
    """A test for "this Reference element points at the patient"."""
    patient = entry["resource"]
    literal = {f"Patient/{patient['id']}"} if patient.get("id") else set()
    if entry.get("fullUrl"):
        literal.add(entry["fullUrl"])
    identifiers = {
        (ident.get("system"), ident.get("value"))
        for ident in patient.get("identifier", [])
        if ident.get("value")
    }

    def is_patient(node: Any) -> bool:
        if not isinstance(node, Mapping) or not set(node) <= _REFERENCE_KEYS:
            return False
        reference = node.get("reference")
        if isinstance(reference, str):
            return reference in literal
        logical = node.get("identifier")
        return isinstance(logical, Mapping) and (
            (logical.get("system"), logical.get("value")) in identifiers
        )

    return is_patient


def _about(resource: Mapping[str, Any], is_patient: Callable[[Any], bool]) -> bool:
    """True if the resource's subject element references the patient."""
    path = SUBJECT_ELEMENTS.get(resource["resourceType"])
    return path is not None and any(is_patient(ref) for ref in values_at(resource, path))


def _patient_categories(patient: Mapping[str, Any], scope: Mapping[str, Any]) -> list[str]:
    tags = [category for category in PATIENT_ELEMENTS if category in scope]
    if not patient.get("generalPractitioner") and "gp_registration" in tags:
        tags.remove("gp_registration")
    return tags


def _released_patient(patient: Mapping[str, Any], tags: Sequence[str]) -> FhirResource:
    """The Patient with only the elements the approved categories release."""
    released: FhirResource = {"resourceType": "Patient", "id": RELEASE_PATIENT_ID}
    for category in tags:
        for element in PATIENT_ELEMENTS[category]:
            if element in patient:
                released[element] = copy.deepcopy(patient[element])
    return released


def _linked(
    entries: Sequence[Mapping[str, Any]],
    chosen: Mapping[int, tuple[FhirResource, list[str]]],
    scope: Mapping[str, Any],
) -> list[tuple[int, str]]:
    """Resources a released resource of the category points at (``LINKED_RESOURCES``)."""
    index: dict[str, int] = {}
    for position, entry in enumerate(entries):
        resource = entry["resource"]
        if resource.get("id"):
            index[f"{resource['resourceType']}/{resource['id']}"] = position
        if entry.get("fullUrl"):
            index[entry["fullUrl"]] = position
    found: list[tuple[int, str]] = []
    for link in LINKED_RESOURCES:
        if link.category not in scope:
            continue
        for position in sorted(chosen):
            if link.category not in chosen[position][1]:
                continue
            source = entries[position]["resource"]
            for source_type, path in link.referenced_from:
                if source["resourceType"] != source_type:
                    continue
                for reference in references_at(source, path):
                    target = index.get(reference)
                    if target is None or target in chosen:
                        continue
                    resource = entries[target]["resource"]
                    if resource["resourceType"] in link.resource_types and not (
                        excluded_by_status(resource)
                    ):
                        found.append((target, link.category))
    # A resource two sources point at is released once.
    return list(dict(found).items())


def _minimised(resource: Mapping[str, Any], is_patient: Callable[[Any], bool]) -> FhirResource:
    return {
        key: _rewrite_patient_references(value, is_patient)
        for key, value in resource.items()
        if key not in DROPPED_ELEMENTS and key != "meta"
    }


def _rewrite_patient_references(node: Any, is_patient: Callable[[Any], bool]) -> Any:
    """A deep copy with every reference to the patient made ``Patient/subject``.

    The reference's display is dropped with it: systems often put the patient's name
    there, and the name is identity data.
    """
    if is_patient(node):
        return {"reference": RELEASE_PATIENT_REFERENCE}
    if isinstance(node, Mapping):
        return {key: _rewrite_patient_references(value, is_patient) for key, value in node.items()}
    if isinstance(node, list):
        return [_rewrite_patient_references(item, is_patient) for item in node]
    return node


def _labelled(
    resource: FhirResource, tags: Sequence[str], labels: Sequence[Mapping[str, str]]
) -> FhirResource:
    meta = {
        "security": [dict(label) for label in labels],
        "tag": [{"system": CATEGORY_SYSTEM, "code": tag} for tag in tags],
    }
    # resourceType first, then meta, as FHIR JSON is usually written.
    return {"resourceType": resource["resourceType"], "meta": meta} | {
        key: value for key, value in resource.items() if key != "resourceType"
    }
