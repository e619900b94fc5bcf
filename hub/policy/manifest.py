"""A release's content manifest against its envelope and its approval (rules MAN-01..03).

The hub cannot read a release, so a release carries a signed manifest in its envelope:
the categories it holds, each with the period it was selected for and its resources by
type, and the SHA-256 of the plaintext. These rules bind the manifest to what was
approved; the nodes bind the payload to the manifest (MAN-04, MAN-05 and REL-03 in
``agency_adapters.node.checks``), so what leaves a node is exactly what was approved
(DESIGN.md section 1: "releases stay inside what was approved").

Pure: facts in, every violation out (STYLE.md rule 2).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from hub.model import EnvelopeFields, ManifestCategory, ReleaseManifest, ScopeItem, Violation
from hub.policy.decisions import APPROVALS
from hub.policy.facts import PolicyFacts
from hub.policy.registry import Registry
from hub.policy.scope import describe_period, scope_within

__all__ = ["FHIR_MEDIA_TYPE", "check_manifest", "check_record_kind", "manifest_span"]

# The media type of a FHIR resource or Bundle in JSON (FHIR R4 "http.html#mime-type").
FHIR_MEDIA_TYPE = "application/fhir+json"


def manifest_span(items: Sequence[ScopeItem]) -> tuple[ScopeItem, ...]:
    """One item per category spanning every period given for it (open if any is open).

    A manifest names each category once, with the span of the periods its resources were
    selected against; each resource's own date is checked against the envelope's items by
    the sending and receiving nodes (REL-03).
    """
    by_category: dict[str, list[ScopeItem]] = defaultdict(list)
    for item in items:
        by_category[item.category].append(item)
    spans: list[ScopeItem] = []
    for category, group in by_category.items():
        starts = [i.period_from for i in group]
        ends = [i.period_to for i in group]
        spans.append(
            ScopeItem(
                category=category,
                period_from=None if None in starts else min(s for s in starts if s),
                period_to=None if None in ends else max(e for e in ends if e),
                justification_present=True,
            )
        )
    return tuple(spans)


def _as_item(category: ManifestCategory) -> ScopeItem:
    return ScopeItem(
        category=category.category,
        period_from=category.period_from,
        period_to=category.period_to,
        justification_present=True,
    )


def check_manifest(
    fields: EnvelopeFields, facts: PolicyFacts, registry: Registry
) -> list[Violation]:
    """MAN-01 (a release carries a manifest, nothing else does), MAN-02 (the manifest
    within the envelope's scope) and MAN-03 (the manifest within the approval on record)."""
    manifest = fields.manifest
    if fields.kind != "release":
        if manifest is None:
            return []
        return [
            Violation(
                rule="MAN-01",
                path="$.manifest",
                message=f"only a release carries a content manifest, not a {fields.kind}",
            )
        ]
    if manifest is None:
        return [
            Violation(
                rule="MAN-01",
                path="$.manifest",
                message=(
                    "a release carries a content manifest (categories, periods, resources by "
                    "type and the payload's SHA-256); build the release with 'hub node "
                    "release', which writes it"
                ),
            )
        ]
    violations = _outside(
        manifest,
        fields.scope,
        "MAN-02",
        "which its envelope's scope does not name: the scope must say everything the release holds",
    )
    decision = facts.answers.decision if facts.answers is not None else None
    if decision is not None and decision.outcome in APPROVALS:
        violations += _outside(
            manifest,
            decision.approved_scope,
            "MAN-03",
            "which the decision it answers did not approve: release only approved "
            "categories and periods",
        )
    return sorted(violations, key=lambda v: (v.path, v.rule, v.message))


def check_record_kind(kind: str, media_type: str) -> list[Violation]:
    """MAN-06: a health record (FHIR) travels only as a release, under its manifest.

    Otherwise a node could send records as a note or a referral, where no approval and no
    manifest bind what they hold. The hub sees the media type; the nodes also look inside
    a JSON payload of another kind (``agency_adapters.node.checks``).
    """
    if kind == "release" or media_type != FHIR_MEDIA_TYPE:
        return []
    return [
        Violation(
            rule="MAN-06",
            path="$.payload.media_type",
            message=(
                f"a FHIR record ({FHIR_MEDIA_TYPE}) travels only as a release against an "
                f"approved decision, not as a {kind}"
            ),
        )
    ]


def _outside(
    manifest: ReleaseManifest, scope: Sequence[ScopeItem], rule: str, why: str
) -> list[Violation]:
    """``rule`` for each manifest category (and its period) that ``scope`` does not cover."""
    spans = manifest_span(scope)
    return [
        Violation(
            rule=rule,
            path=f"$.manifest.categories[{index}]",
            message=f"the release holds {describe_period(_as_item(category))}, {why}",
        )
        for index, category in enumerate(manifest.categories)
        if scope_within([_as_item(category)], spans)
    ]
