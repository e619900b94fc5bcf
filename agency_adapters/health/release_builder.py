"""Build the release bundle a health node sends for an approved information request.

Given the patient's record as a FHIR R4 Bundle and the approved scope, the builder keeps
only the resources that belong to an approved category by a positive rule, in its
approved period (``mapping``), and of each only the elements on its type's allow-list;
it labels every resource with the marking and the category it was released under and
returns the bundle's bytes, with a list of what it withheld and why. It is closed by
default: a resource it cannot classify, place in time or tie to the patient is
withheld, never released under another category. The record is validated on the way in
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

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from agency_adapters.health.mapping import (
    CATEGORY_RESOURCES,
    CATEGORY_SYSTEM,
    LINKED_RESOURCES,
    PATIENT_ELEMENTS,
    RELEASE_PATIENT_REFERENCE,
    SUBJECT_ELEMENTS,
    SUBJECT_REF_SYSTEM,
    classification,
    contact_entry_span,
    event_date,
    excluded_by_status,
    in_approved_period,
    marking_labels,
    references_at,
    released_form,
    released_patient,
    values_at,
)
from hub.model import Marking, ScopeItem

__all__ = [
    "InvalidRecord",
    "ReleaseResult",
    "UnsupportedScope",
    "WithheldResource",
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
class WithheldResource:
    """Something an approved category might have covered that the builder withheld.

    ``resource`` is ``Type/id`` in the record (or an element of the Patient, such as
    ``Patient.address[1]``); ``reason`` says why, for the person releasing to review.
    A resource of a category that was not approved, or dated outside the approved
    period, is simply not released and not listed here.
    """

    resource: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    """The release bundle's bytes, what it holds, and what was withheld and why."""

    bundle_json: bytes
    categories: frozenset[str]
    resource_count: int
    excluded_count: int
    withheld: tuple[WithheldResource, ...] = ()

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
    hub refuses those, rule MK-09). What an approved category might have covered but
    was withheld (unclassified codes, undated entries, records in error) is listed in
    ``ReleaseResult.withheld``.
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
    canonical = _canonical_references(entries)
    # Every reference to the patient becomes Patient/subject and every reference to
    # another resource of the record its Type/id, before anything is selected.
    resources: list[FhirResource] = [
        _rewrite_references(entry["resource"], is_patient, canonical) for entry in entries
    ]
    patient_position = next(p for p, e in enumerate(entries) if e is patients[0])
    selection = _Selection(resources, patient_position, scope)
    return selection.result(marking, subject_ref)


def _key(resource: Mapping[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource.get('id', '?')}"


class _Selection:
    """Which resources leave, in which released form: the builder's working state."""

    def __init__(
        self,
        resources: Sequence[FhirResource],
        patient_position: int,
        scope: Mapping[str, Sequence[ScopeItem]],
    ) -> None:
        self.resources = resources
        self.patient_position = patient_position
        self.scope = scope
        self.withheld: dict[str, str] = {}
        # Event resource types some approved category releases: what is withheld from
        # those is reported; other types are simply not asked for.
        self.asked_types = {
            rule.resource_type
            for category in scope
            for rule in CATEGORY_RESOURCES[category]
            if rule.role == "event"
        }
        self.events = self._events()

    def _withhold(self, resource: Mapping[str, Any], reason: str) -> None:
        if resource["resourceType"] in self.asked_types:
            self.withheld.setdefault(_key(resource), reason)

    def _events(self) -> dict[int, str]:
        """Position -> category of each event resource in an approved category and period."""
        events: dict[int, str] = {}
        for position, resource in enumerate(self.resources):
            if position == self.patient_position:
                continue
            found = classification(resource)
            if found.category is None:
                self._withhold(resource, found.reason)
                continue
            if found.category not in self.scope:
                continue
            path = SUBJECT_ELEMENTS[resource["resourceType"]]
            if RELEASE_PATIENT_REFERENCE not in references_at(resource, path):
                self._withhold(resource, "not about the patient whose record this is")
                continue
            when = event_date(resource)
            if when is None:
                self._withhold(resource, "no usable date, so it cannot be placed in the period")
                continue
            if in_approved_period(when, self.scope[found.category]):
                events[position] = found.category
        return events

    def _linked(self, chosen: Mapping[int, str], patient_tags: Sequence[str]) -> dict[int, str]:
        """Resources a released resource of the category points at (``LINKED_RESOURCES``)."""
        index = {
            _key(resource): position
            for position, resource in enumerate(self.resources)
            if resource.get("id")
        }
        sources = [(p, c) for p, c in chosen.items()]
        sources.extend((self.patient_position, tag) for tag in patient_tags)
        found: dict[int, str] = {}
        for link in LINKED_RESOURCES:
            for position, category in sorted(sources):
                if category != link.category:
                    continue
                source = self.resources[position]
                for source_type, path in link.referenced_from:
                    if source["resourceType"] != source_type:
                        continue
                    for reference in references_at(source, path):
                        target = index.get(reference)
                        if target is None or target in chosen or target == position:
                            continue
                        resource = self.resources[target]
                        if resource["resourceType"] in link.resource_types and not (
                            excluded_by_status(resource)
                        ):
                            found.setdefault(target, link.category)
        return found

    def _patient_tags(self, dropped: set[int]) -> list[str]:
        if self.patient_position in dropped:
            return []
        patient = self.resources[self.patient_position]
        tags = [category for category in PATIENT_ELEMENTS if category in self.scope]
        if "gp_registration" in tags and not self._linked({}, ["gp_registration"]).keys() - (
            dropped
        ):
            tags.remove("gp_registration")
        if "contact_address_history" in tags:
            contact = released_patient(
                patient, ["contact_address_history"], self.scope, frozenset()
            )
            if not {"address", "telecom"} & set(contact):
                tags.remove("contact_address_history")
        return tags

    def _report_contact_entries(self) -> None:
        patient = self.resources[self.patient_position]
        for element in ("address", "telecom"):
            for number, entry in enumerate(values_at(patient, element)):
                if isinstance(entry, Mapping) and contact_entry_span(element, entry) is None:
                    self.withheld.setdefault(
                        f"Patient.{element}[{number}]",
                        "no usable period, so it cannot be placed in the approved period",
                    )

    def result(self, marking: Marking, subject_ref: str) -> ReleaseResult:
        if "contact_address_history" in self.scope:
            self._report_contact_entries()
        # A released form that is not valid FHIR (a required element was not on the
        # allow-list, or pointed at something withheld) is withheld in turn, and the
        # rest recomputed, until nothing changes (each round drops at least one more).
        dropped: set[int] = set()
        while True:
            chosen = {p: c for p, c in self.events.items() if p not in dropped}
            patient_tags = self._patient_tags(dropped)
            linked = self._linked(chosen, patient_tags)
            chosen |= {p: c for p, c in linked.items() if p not in dropped}
            released = frozenset(
                _key(self.resources[p]) for p in chosen if self.resources[p].get("id")
            )
            if patient_tags:
                released |= {RELEASE_PATIENT_REFERENCE}
            forms: dict[int, tuple[FhirResource, list[str]]] = {
                p: (released_form(self.resources[p], c, released), [c]) for p, c in chosen.items()
            }
            if patient_tags:
                forms[self.patient_position] = (
                    released_patient(
                        self.resources[self.patient_position], patient_tags, self.scope, released
                    ),
                    patient_tags,
                )
            invalid = {p for p, (form, _) in forms.items() if not _validates(form)}
            if not invalid:
                break
            for position in invalid:
                self.withheld.setdefault(
                    _key(self.resources[position]),
                    "not valid FHIR once reduced to its allow-list (a required element "
                    "is not released)",
                )
            dropped |= invalid

        labels = marking_labels(marking)
        # The Patient first, then the record's own order.
        order = sorted(forms, key=lambda p: (p != self.patient_position, p))
        released_resources = [_labelled(forms[p][0], forms[p][1], labels) for p in order]
        bundle = {
            "resourceType": "Bundle",
            "meta": {"security": copy.deepcopy(labels)},
            "identifier": {"system": SUBJECT_REF_SYSTEM, "value": subject_ref},
            "type": "collection",
            "entry": [{"resource": resource} for resource in released_resources],
        }
        try:
            bundle_json = validate_bundle(bundle).model_dump_json().encode("utf-8")
        except InvalidRecord as exc:  # pragma: no cover - each resource validated above
            raise InvalidRecord(f"the release bundle does not validate: {exc}") from None
        return ReleaseResult(
            bundle_json=bundle_json,
            categories=frozenset(tag for _, tags in forms.values() for tag in tags),
            resource_count=len(released_resources),
            excluded_count=len(self.resources) - len(released_resources),
            withheld=tuple(
                WithheldResource(resource, reason)
                for resource, reason in sorted(self.withheld.items())
            ),
        )


def _validates(resource: Mapping[str, Any]) -> bool:
    try:
        get_fhir_model_class(str(resource["resourceType"])).model_validate(
            copy.deepcopy(dict(resource))
        )
    except (KeyError, ValueError, TypeError):
        return False
    return True


def _canonical_references(entries: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Every way the record refers to one of its resources -> that resource's ``Type/id``."""
    canonical: dict[str, str] = {}
    for entry in entries:
        resource = entry["resource"]
        if not resource.get("id"):
            continue
        key = _key(resource)
        canonical[key] = key
        if entry.get("fullUrl"):
            canonical[entry["fullUrl"]] = key
    return canonical


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


def _rewrite_references(
    node: Any, is_patient: Callable[[Any], bool], canonical: Mapping[str, str]
) -> Any:
    """A deep copy with references to the patient as ``Patient/subject``, others as ``Type/id``.

    A reference to the patient loses everything else, its display above all: systems
    often put the patient's name there, and the name is identity data.
    """
    if is_patient(node):
        return {"reference": RELEASE_PATIENT_REFERENCE}
    if isinstance(node, Mapping):
        rewritten = {
            key: _rewrite_references(value, is_patient, canonical) for key, value in node.items()
        }
        reference = node.get("reference")
        if set(node) <= _REFERENCE_KEYS and isinstance(reference, str) and reference in canonical:
            rewritten["reference"] = canonical[reference]
        return rewritten
    if isinstance(node, list):
        return [_rewrite_references(item, is_patient, canonical) for item in node]
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
