"""The health node's edge to its clinical record (FHIR R4).

Build a release bundle from a patient's record for an approved scope, closed by default
(:func:`build_release`, rules and allow-lists in :mod:`agency_adapters.health.mapping`;
what it withheld and why in ``ReleaseResult.withheld``), record each
disclosure in the node's local log (:class:`DisclosureLog`), and make synthetic records
for tests and the demo (:func:`synthetic_patient_bundle`). Never real data in tests.
"""

from agency_adapters.health.disclosure_log import (
    DisclosureLog,
    DisclosureLogError,
    DisclosureLogTampered,
    DisclosureRecord,
    LogAnchor,
)
from agency_adapters.health.mapping import CATEGORY_RESOURCES
from agency_adapters.health.release_builder import (
    InvalidRecord,
    ReleaseResult,
    UnsupportedScope,
    WithheldResource,
    build_release,
    validate_bundle,
)
from agency_adapters.health.synthetic import nhs_number_valid, synthetic_patient_bundle

__all__ = [
    "CATEGORY_RESOURCES",
    "DisclosureLog",
    "DisclosureLogError",
    "DisclosureLogTampered",
    "DisclosureRecord",
    "InvalidRecord",
    "LogAnchor",
    "ReleaseResult",
    "UnsupportedScope",
    "WithheldResource",
    "build_release",
    "nhs_number_valid",
    "synthetic_patient_bundle",
    "validate_bundle",
]
