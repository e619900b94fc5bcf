"""One check for a message: the envelope rules and the payload rules, wherever it runs.

The hub routes without reading, so it checks only the envelope (``hub.policy.engine``);
the payload can be checked only where it is plaintext: at the sending node before it is
sealed and at each receiving node after it is opened. :func:`check_draft` runs both sets
of rules, so ``hub policy check``, the pre-flight in ``hub node submit`` and the receiver
cannot give different verdicts on the same message.

Payload rules:

* PAYLOAD-04 and PAYLOAD-05: the payload matches its kind's model and agrees with its
  envelope (``hub.model.payload_checks``).
* MAN-04: a release's payload is exactly the one its manifest names (plaintext SHA-256
  and size).
* MAN-05: a release's payload holds exactly the categories, resource types and counts
  its manifest lists.
* REL-03: every resource a FHIR release holds lies inside its envelope's scope
  (``agency_adapters.node.release_check``: category, period, marking labels, allow-list).

The release rules name categories, resource types and counts only, never payload
content, so a receiver can send them to the hub in a signed rejection.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agency_adapters.health.mapping import category_tags
from agency_adapters.node.release_check import check_release
from hub.client import NodeClient, PayloadSource
from hub.model import (
    EnvelopeFields,
    ManifestCategory,
    ReleaseManifest,
    ScopeItem,
    StrictJSONError,
    Violation,
    loads_strict,
)
from hub.model.payload_checks import check_payload, payload_model_for
from hub.policy.engine import evaluate, ordered
from hub.policy.facts import PolicyFacts
from hub.policy.manifest import FHIR_MEDIA_TYPE, check_record_kind, manifest_span
from hub.policy.registry import Registry

__all__ = [
    "FHIR_RELEASE_MEDIA_TYPE",
    "MAX_RELEASE_RESOURCES",
    "PayloadBytes",
    "check_draft",
    "check_draft_at_node",
    "fhir_release_manifest",
    "payload_bytes",
    "payload_violations",
    "rejection_summary",
]

FHIR_RELEASE_MEDIA_TYPE = FHIR_MEDIA_TYPE
# A payload in memory, or a file on disk (large payloads, streamed to and from the hub).
PayloadBytes = bytes | Path
_HASH_BLOCK = 1 << 20
# Local limits of the receiving node, not law: a release of more resources than this is
# refused (a real one is tens to hundreds), and a released resource holds a few dozen
# JSON objects at most (the builder's largest, a MedicationRequest, about 20), so a payload
# with far more objects than its manifest's resources is refused before it is parsed.
MAX_RELEASE_RESOURCES = 100_000
_OBJECTS_PER_RESOURCE = 256


def check_draft(
    fields: EnvelopeFields,
    payload: PayloadBytes,
    media_type: str,
    facts: PolicyFacts,
    registry: Registry,
) -> list[Violation]:
    """Every rule a message breaks: the hub's envelope rules and the nodes' payload rules."""
    violations = evaluate(fields, facts, registry)
    violations += payload_violations(fields, payload, media_type, today=facts.today)
    return ordered(violations)


def payload_violations(
    fields: EnvelopeFields, payload: PayloadBytes, media_type: str, *, today: date
) -> list[Violation]:
    """The payload rules (PAYLOAD-04/05, MAN-04/05, REL-03) over a plaintext payload."""
    if fields.kind == "release":
        return _release_violations(fields, payload, media_type)
    violations = check_record_kind(fields.kind, media_type)
    if violations or not media_type.endswith("json"):
        return violations
    model = payload_model_for(fields)
    if model is None and isinstance(payload, Path):
        # A free-form payload streamed to disk (over 16 MiB) is not read into memory to
        # look inside it; its media type was checked above.
        return []
    data = payload.read_bytes() if isinstance(payload, Path) else payload
    if _is_fhir(data):
        return _record_as(fields.kind)
    if model is None:
        return []  # a free-form payload (a note, a local referral form): no model to check
    return check_payload(fields, data, today=today)


def _is_fhir(data: bytes) -> bool:
    """Whether a JSON payload is a FHIR resource or Bundle (it names a resourceType)."""
    try:
        document = loads_strict(data)
    except StrictJSONError:
        return False
    return isinstance(document, Mapping) and "resourceType" in document


def _record_as(kind: str) -> list[Violation]:
    return [
        _violation(
            "MAN-06",
            "$.payload",
            f"the payload is a FHIR record; records travel only as a release, not as a {kind}",
        )
    ]


def fhir_release_manifest(bundle_json: bytes, scope: Sequence[ScopeItem]) -> ReleaseManifest:
    """The manifest of a FHIR release bundle selected against ``scope``.

    Categories come from each resource's category tags (``meta.tag``), with the span of
    the scope's periods for that category; resources are counted by type under each tag.
    Raises :class:`ValueError` if the bytes are not a JSON Bundle.
    """
    resources = _resources(bundle_json)
    counts = _category_counts(resources)
    periods = {item.category: item for item in manifest_span(scope)}
    categories = []
    for category in sorted(counts):
        period = periods.get(category)
        try:
            categories.append(
                ManifestCategory(
                    category=category,
                    period_from=period.period_from if period else None,
                    period_to=period.period_to if period else None,
                    resources=dict(sorted(counts[category].items())),
                )
            )
        except ValidationError:
            # Never echo the offending value: it comes from the payload.
            raise ValueError(
                "the release holds a category tag or resource type that is not a valid name"
            ) from None
    return ReleaseManifest(
        content_sha256=hashlib.sha256(bundle_json).hexdigest(),
        content_size=len(bundle_json),
        resource_count=len(resources),
        categories=tuple(categories),
    )


def _resources(bundle_json: bytes) -> list[Mapping[str, Any]]:
    try:
        document = loads_strict(bundle_json)
    except StrictJSONError as exc:
        raise ValueError(f"the release is not valid JSON: {exc}") from None
    if not isinstance(document, Mapping) or document.get("resourceType") != "Bundle":
        raise ValueError("the release is not a FHIR Bundle")
    entries = document.get("entry", [])
    if not isinstance(entries, list):
        raise ValueError("Bundle.entry is not a list")
    return [
        entry["resource"]
        for entry in entries
        if isinstance(entry, Mapping) and isinstance(entry.get("resource"), Mapping)
    ]


def _category_counts(resources: Sequence[Mapping[str, Any]]) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for resource in resources:
        resource_type = str(resource.get("resourceType", "?"))
        tags = category_tags(resource) or ["untagged"]
        for tag in dict.fromkeys(tags):
            counts[tag][resource_type] += 1
    return counts


def _digest(payload: PayloadBytes) -> tuple[str, int]:
    if isinstance(payload, bytes):
        return hashlib.sha256(payload).hexdigest(), len(payload)
    digest, size = hashlib.sha256(), 0
    with payload.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _object_count(payload: PayloadBytes) -> int:
    """How many ``{`` the payload holds (an upper bound on its JSON objects), streamed."""
    if isinstance(payload, bytes):
        return payload.count(b"{")
    count = 0
    with payload.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            count += block.count(b"{")
    return count


def _violation(rule: str, path: str, message: str) -> Violation:
    return Violation(rule=rule, path=path, message=message)


def _release_violations(
    fields: EnvelopeFields, payload: PayloadBytes, media_type: str
) -> list[Violation]:
    manifest = fields.manifest
    if manifest is None:
        # MAN-01 (an envelope rule) already says so; nothing to check the payload against.
        return []
    if media_type != FHIR_RELEASE_MEDIA_TYPE:
        return [
            _violation(
                "MAN-05",
                "$.payload",
                f"a release is a FHIR R4 Bundle ({FHIR_RELEASE_MEDIA_TYPE}), not {media_type}",
            )
        ]
    violations: list[Violation] = []
    sha256, size = _digest(payload)
    if sha256 != manifest.content_sha256 or size != manifest.content_size:
        violations.append(
            _violation(
                "MAN-04",
                "$.manifest.content_sha256",
                f"the payload ({size} bytes) is not the one the manifest names "
                f"({manifest.content_size} bytes, SHA-256 {manifest.content_sha256[:16]}…)",
            )
        )
    objects = _object_count(payload)
    if manifest.resource_count > MAX_RELEASE_RESOURCES:
        return [
            *violations,
            _violation(
                "MAN-05",
                "$.manifest.resource_count",
                f"the manifest lists {manifest.resource_count} resources; a node checks "
                f"releases of at most {MAX_RELEASE_RESOURCES} (split larger ones)",
            ),
        ]
    if objects > _OBJECTS_PER_RESOURCE * (manifest.resource_count + 1):
        # Counted by streaming before anything is parsed, so a payload built to exhaust
        # the receiver's memory (millions of tiny entries) is refused unread.
        return [
            *violations,
            _violation(
                "MAN-05",
                "$.payload",
                f"the payload holds {objects} JSON objects, far more than "
                f"{manifest.resource_count} resource(s) can",
            ),
        ]
    data = payload.read_bytes() if isinstance(payload, Path) else payload
    try:
        actual = fhir_release_manifest(data, fields.scope)
    except ValueError as exc:
        return [*violations, _violation("MAN-05", "$.payload", str(exc))]
    violations += _manifest_differences(manifest, actual)
    if violations:
        # The payload is not what its signed manifest says: that alone refuses it, and a
        # payload that lies about itself is not examined further (nor, at 200 MiB,
        # validated resource by resource).
        return violations
    # The content itself against the envelope's scope: categories, periods, labels, the
    # allow-list (the same rules the release builder follows).
    return [_violation("REL-03", "$.payload", p) for p in check_release(fields, data)]


def _manifest_differences(declared: ReleaseManifest, actual: ReleaseManifest) -> list[Violation]:
    """How the payload's real categories and counts differ from the declared manifest."""
    violations: list[Violation] = []
    if declared.resource_count != actual.resource_count:
        violations.append(
            _violation(
                "MAN-05",
                "$.manifest.resource_count",
                f"the manifest says {declared.resource_count} resource(s); the payload holds "
                f"{actual.resource_count}",
            )
        )
    said = {c.category: c for c in declared.categories}
    found = {c.category: c for c in actual.categories}
    for category in sorted(set(found) - set(said)):
        violations.append(
            _violation(
                "MAN-05",
                "$.manifest.categories",
                f"the payload holds {_describe(found[category].resources)} under {category}, "
                "which the manifest does not list",
            )
        )
    for index, item in enumerate(declared.categories):
        real = found.get(item.category)
        if real is None:
            violations.append(
                _violation(
                    "MAN-05",
                    f"$.manifest.categories[{index}]",
                    f"the manifest lists {item.category}, but the payload holds none",
                )
            )
        elif real.resources != item.resources:
            violations.append(
                _violation(
                    "MAN-05",
                    f"$.manifest.categories[{index}].resources",
                    f"the manifest lists {_describe(item.resources)} under {item.category}; "
                    f"the payload holds {_describe(real.resources)}",
                )
            )
    return violations


def _describe(resources: Mapping[str, int]) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in sorted(resources.items()))


def rejection_summary(violations: Sequence[Violation]) -> tuple[list[str], list[str]]:
    """The rule ids and reasons a receiving node sends the hub when it rejects a message.

    The hub must never learn what a payload says, and every finding's text is built from
    the payload (a resource type, a category tag, a date), so the reasons name only the
    rules and how many findings each had. The findings themselves stay with the
    receiving node.
    """
    rules = sorted({v.rule for v in violations})
    reasons = [
        f"{rule}: {sum(1 for v in violations if v.rule == rule)} finding(s), kept at the "
        "receiving node"
        for rule in rules
    ]
    return rules, reasons


def payload_bytes(payload: PayloadSource) -> PayloadBytes:
    """A draft's payload as the checks read it: in memory, or the file it names."""
    if payload.data is not None:
        return payload.data
    assert payload.path is not None
    return payload.path


async def check_draft_at_node(
    client: NodeClient, fields: EnvelopeFields, payload: PayloadSource
) -> list[Violation]:
    """Every rule a draft breaks, checked as this node against its hub.

    The hub's routing and envelope rules (the client's pre-flight) and the payload rules
    the hub cannot run (:func:`payload_violations`): the same verdict as
    ``hub policy check --node``, the node console and the receiving node.
    """
    violations = await client.preflight(fields)
    violations += payload_violations(
        fields, payload_bytes(payload), payload.media_type, today=client.today()
    )
    return ordered(violations)
