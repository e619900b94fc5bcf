"""The policy registries: the law and guidance the rules apply, as reviewable data.

The YAML files in ``schemas/registry/`` are written for information governance staff to
read and review; this module validates them strictly at start-up (unknown keys, unknown
ids and dangling cross-references are errors naming the file and entry). Pure: no I/O
here except :func:`load_registry`, which the caller runs once and passes the result on.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    model_validator,
)

from hub.model import MESSAGE_KINDS, AuthorRole, ConsultedRole, MessageKind

__all__ = [
    "DEFAULT_REGISTRY_DIR",
    "AgencyTypeEntry",
    "DataCategory",
    "DataSharingAgreement",
    "DecisionReason",
    "Descriptor",
    "Gateway",
    "GatewayFamily",
    "HandlingInstruction",
    "KindRetention",
    "LegacyMarking",
    "MarkingLevel",
    "MarkingsRegistry",
    "PolicySettings",
    "Purpose",
    "Registry",
    "RegistryError",
    "RetentionPolicy",
    "RoleGrant",
    "RolesRegistry",
    "RuleText",
    "SecureEmailDomain",
    "TierEntry",
    "UnsentBlobRetention",
    "load_registry",
]

DEFAULT_REGISTRY_DIR = Path(__file__).resolve().parents[2] / "schemas" / "registry"

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
RuleId = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2,8}(-[A-Z0-9]{1,8})*$")]
# "ANY" in who/to_whom lists means every agency type.
AgencyRef = Annotated[str, StringConstraints(pattern=r"^([a-z_]+|ANY)$")]
MarkingLevel = Literal["OFFICIAL", "OFFICIAL-SENSITIVE", "SECRET", "TOP SECRET"]
GatewayFamily = Literal[
    "power",  # L1: a statutory or common-law power (or duty) to share
    "art6",  # UK GDPR Art 6(1) lawful basis
    "art9",  # UK GDPR Art 9(2) condition
    "sch1",  # DPA 2018 Schedule 1 condition
    "art10",  # Art 10 / Sch 1 condition for criminal offence data
    "part3",  # DPA 2018 Part 3 (law enforcement) and its Sch 8 conditions
    "exemption",  # DPA 2018 Schedule 2: lifts obligations, never a lawful basis
    "confidentiality",  # exceptions to the common law duty of confidentiality
    "constraint",  # not a gateway: limits what may be disclosed (e.g. TA 2000 s39)
    "guidance",  # professional or practice guidance, not law
]
# The message kinds are the wire model's; the registry names which purposes each may use.
MessageKindRef = MessageKind


_FILE_OF = {
    "agency type": "agency_types.yaml",
    "gateway": "gateways.yaml",
    "data category": "data_categories.yaml",
    "purpose": "purposes.yaml",
    "agreement": "agreements.yaml",
    "rule": "rules.yaml",
    "roles entry": "roles.yaml",
    "decision reason": "decision_reasons.yaml",
    "retention kind": "retention.yaml",
    "secure email domain": "secure_email_domains.yaml",
}


class RegistryModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class RegistryError(ValueError):
    """A registry file is missing, not valid YAML, or breaks its schema or references."""


class RuleText(RegistryModel):
    """A rule's stable id, what it checks, and where it comes from."""

    id: RuleId
    summary: str
    source: str = ""


class TierEntry(RegistryModel):
    id: Literal["OFFICIAL", "SECRET", "TOP SECRET"]
    carried_by_hub: bool
    minimum_vetting: str
    summary: str


class HandlingInstruction(RegistryModel):
    id: Literal[
        "RECIPIENTS_ONLY", "FOR_PUBLIC_RELEASE", "ORG_USE_ONLY", "HMG_USE_ONLY", "EMBARGOED"
    ]
    string: str  # e.g. "RECIPIENTS ONLY"; for ORG_USE_ONLY the suffix "USE ONLY"
    allowed_with: list[MarkingLevel]
    summary: str


class Descriptor(RegistryModel):
    id: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{1,63}$")]
    string: str
    allowed_with: list[MarkingLevel]
    scheme: Literal["current", "2014", "local"]
    current_equivalent: str | None = None  # a current descriptor id, for 2014 ones
    flag_for_review: bool = False
    summary: str


class LegacyMarking(RegistryModel):
    """A GPMS (pre-2014) marking and how the hub treats it (REFERENCE.md 1.9)."""

    string: str
    aliases: list[str] = []
    treatment: Literal["map", "reject"]
    maps_to: MarkingLevel | None = None  # for 'map': the level used for routing only
    summary: str


class MarkingsRegistry(RegistryModel):
    tiers: list[TierEntry]
    handling_instructions: list[HandlingInstruction]
    descriptors: list[Descriptor]
    national_caveat_examples: list[str]
    legacy: list[LegacyMarking]
    # Kinds that carry information about a person and so are at least OFFICIAL-SENSITIVE.
    minimum_level_by_kind: dict[MessageKindRef, MarkingLevel]


class AgencyTypeEntry(RegistryModel):
    id: Annotated[str, StringConstraints(pattern=r"^[a-z_]+$")]
    name: str
    public_body: bool
    # DPA 2018 Sch 7 competent authority for the law enforcement purposes.
    competent_authority: bool
    # Owes the common law duty of confidentiality as an additional legal requirement, so
    # a disclosure without consent names its exception to it (GW-13).
    common_law_confidentiality: bool = False
    summary: str = ""


class Gateway(RegistryModel):
    id: Id
    title: str
    family: GatewayFamily
    citation: str
    summary: str
    who: list[AgencyRef]  # agency types that may rely on it as discloser
    to_whom: list[AgencyRef]  # agency types it permits disclosure to
    consent_required: bool = False
    # Allows sharing against a refusal of consent (public interest, legal duty).
    overrides_refusal: bool = False
    # Covers a person who lacks capacity, in their best interests (MCA s4).
    best_interests: bool = False
    # An Art 9 condition that must be paired with a Sch 1 condition (Art 9(2)(g)).
    needs_sch1: bool = False
    # Whether relying on it needs an appropriate policy document reference in
    # legal_basis.appropriate_policy_document (DPA 2018 Sch 1 para 5; GW-14).
    appropriate_policy_document: Literal[
        "not_needed", "needed", "needed_unless_to_competent_authority"
    ] = "not_needed"
    # An enactment conferring a statutory function or duty that an implied power to share
    # may rest on (seed 001, 003 Annex 1); legal_basis.statutory_function may name it.
    statutory_function: bool = False
    # An implied power: usable only with legal_basis.statutory_function naming the
    # function that depends on the sharing (GW-15).
    needs_named_function: bool = False
    conditions: str = ""
    provenance: str = ""


class DataCategory(RegistryModel):
    id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
    name: str
    held_by: list[Annotated[str, StringConstraints(pattern=r"^[a-z_]+$")]]
    special_category: bool
    criminal_offence: bool
    needs_period: bool
    # Longest period without an explicit extension reason, in days (None: no limit).
    max_period_days: Annotated[int, Field(gt=0)] | None = None
    summary: str = ""


class Deadlines(RegistryModel):
    routine_hours: Annotated[int, Field(gt=0)]
    urgent_hours: Annotated[int, Field(gt=0)]
    # True where the sources set no time limit and the hours are a local policy choice,
    # not law; ``basis`` says where the figure comes from.
    local_policy: bool
    basis: str


class Purpose(RegistryModel):
    id: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{1,63}$")]
    name: str
    kinds: list[MessageKindRef]
    deadlines: Deadlines | None = None
    # Sharing for the law enforcement purposes (the prevention or detection of crime):
    # to anyone but the police only to a competent authority (GW-10).
    law_enforcement: bool = False
    # Sharing for this purpose needs the person's consent (a parent's or guardian's under
    # 18) whatever gateway is cited (CS-08, CS-04).
    consent_required: bool = False
    # The gateway id of the statutory function this purpose serves, which an implied
    # power to share may rest on (GW-15).
    statutory_function: str | None = None
    source: str = ""
    summary: str = ""


class DataSharingAgreement(RegistryModel):
    id: Id
    title: str
    parties: list[str]  # node ids
    purposes: list[str]
    categories: list[str]
    gateways: list[str]
    valid_from: date
    valid_to: date | None = None


class DecisionReason(RegistryModel):
    """A reason code a decision may give, the outcomes it fits, and what it rests on."""

    id: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{1,63}$")]
    title: str
    outcomes: Annotated[list[DecisionOutcomeRef], Field(min_length=1)]
    explanation: str
    source: str
    local_policy: bool = True


class SecureEmailDomain(RegistryModel):
    """A mail domain the email bridge may send to, and the highest marking it may carry.

    Seed 004 sends the referral form "using secure email i.e. via your NHS.net account" to
    people "who will have a secure mail account", marked OFFICIAL-SENSITIVE; REFERENCE.md
    1.8 HR-08 names NHSmail, DCB1596-accredited domains and *.gov.uk. Which other domains
    a bridge serves is local policy (rules EM-01, EM-02 in hub/policy/secure_email.py).
    """

    domain: Annotated[
        str,
        StringConstraints(
            max_length=253, pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
        ),
    ]
    # Also every subdomain (``gov.uk`` covers ``wiltshire.gov.uk``).
    subdomains: bool = False
    highest_marking: Literal["OFFICIAL", "OFFICIAL-SENSITIVE"]
    summary: str
    source: str


class PolicySettings(RegistryModel):
    max_scope_categories: Annotated[int, Field(gt=0)] = 12
    # Kinds that disclose or ask for personal data and so must cite a lawful basis.
    legal_basis_required_for: list[MessageKindRef] = [
        "information_request",
        "referral",
        "release",
        "case_pack",
    ]
    # Kinds that must name a specific data scope.
    scope_required_for: list[MessageKindRef] = ["information_request", "release"]
    # Agency types a Prevent referral must always reach (WF-01): the local authority
    # (Prevent lead or MASH); the police Prevent team alongside it is the default but not
    # required (seed 004 Appendix 3, Appendix 6). Local exceptions: sender node id -> the
    # recipients that suffice for it.
    referral_requires: list[str] = ["local_authority"]
    referral_routing_exceptions: dict[str, list[str]] = {}
    # Category ids that mean "everything" and are refused by name (SCOPE-03).
    whole_record_ids: list[str] = ["all", "everything", "whole_record", "full_record"]


# --- Who acts (roles.yaml; rules ROLE-01 .. ROLE-06 in hub/policy/roles.py) ------------

RoleAct = Literal["refer", "decide", "release"]
DecisionOutcomeRef = Literal[
    "APPROVED_FULL", "APPROVED_PARTIAL", "REFUSED", "RETURNED_INCOMPLETE", "ESCALATED"
]
SubjectAgeRef = Literal["UNDER_16", "AGED_16_17", "ADULT", "UNKNOWN"]


class RoleGrant(RegistryModel):
    """Which author roles may refer, decide or release, for which agency types.

    An entry with ``categories`` restricts those data categories further (ROLE-04);
    without, it is the act's base grant (ROLE-01 .. ROLE-03). Where several entries match
    a message, the most specific (a named agency type over ANY, a named purpose over
    every purpose) decide, and their roles add up. ``local_policy`` marks entries the
    sources do not decide.
    """

    id: Id
    act: RoleAct
    agency_types: list[AgencyRef]
    purposes: list[str] = []  # empty: every purpose
    categories: list[str] = []
    roles: list[AuthorRole]
    local_policy: bool
    source: str
    summary: str = ""


class ConsultationRule(RegistryModel):
    """A decision that must record a Caldicott Guardian or IG consultation (ROLE-05).

    It applies to a decision by a node of ``agency_types`` with one of ``outcomes`` when
    every condition given holds: the request cites one of ``powers``, consent is absent
    (``without_consent``), the decision concerns one of ``categories``, or the subject's
    age band is one of ``subject_ages``.
    """

    id: Id
    summary: str
    agency_types: list[AgencyRef]
    outcomes: list[DecisionOutcomeRef]
    powers: list[str] = []
    without_consent: bool = False
    categories: list[str] = []
    subject_ages: list[SubjectAgeRef] = []
    consult_one_of: Annotated[list[ConsultedRole], Field(min_length=1)]
    local_policy: bool
    source: str


class SubjectRecordRule(RegistryModel):
    """Decisions that record their entry in the patient or client record (ROLE-06)."""

    id: Id
    agency_types: list[AgencyRef]
    outcomes: list[DecisionOutcomeRef]
    local_policy: bool
    source: str


class RolesRegistry(RegistryModel):
    grants: list[RoleGrant] = []
    consultations: list[ConsultationRule] = []
    subject_record_entry: list[SubjectRecordRule] = []


# --- How long the hub keeps ciphertext (retention.yaml; deploy/retention.md) -----------


class KindRetention(RegistryModel):
    """How long the hub keeps one kind's ciphertext, and whether every acknowledgement
    ends it sooner (``local_policy`` where the sources set no period)."""

    kind: MessageKindRef
    days: Annotated[int, Field(gt=0)]
    purge_when_acknowledged: bool
    local_policy: bool
    source: Annotated[str, StringConstraints(min_length=1)]
    summary: str = ""


class UnsentBlobRetention(RegistryModel):
    """A completed upload no message refers to is purged this many days after completion."""

    days: Annotated[int, Field(gt=0)]
    local_policy: bool
    source: Annotated[str, StringConstraints(min_length=1)]


class RetentionPolicy(RegistryModel):
    unsent_blobs: UnsentBlobRetention
    kinds: list[KindRetention]

    _by_kind: dict[str, KindRetention] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._by_kind = {entry.kind: entry for entry in self.kinds}

    def for_kind(self, kind: str) -> KindRetention:
        """The entry for ``kind``; every kind has one (the loader checks)."""
        return self._by_kind[kind]


class Registry(RegistryModel):
    markings: MarkingsRegistry
    agency_types: list[AgencyTypeEntry]
    gateways: list[Gateway]
    data_categories: list[DataCategory]
    purposes: list[Purpose]
    rules: list[RuleText]
    agreements: list[DataSharingAgreement] = []
    settings: PolicySettings = PolicySettings()
    roles: RolesRegistry = RolesRegistry()
    decision_reasons: list[DecisionReason] = []
    secure_email_domains: list[SecureEmailDomain] = []
    # Required of a registry read from files (load_registry); None only in registries
    # built in code for the policy rules, which do not purge.
    retention: RetentionPolicy | None = None

    @model_validator(mode="after")
    def _references_resolve(self) -> Registry:
        problems: list[str] = []
        agencies = {a.id for a in self.agency_types}
        for kind, items in (
            ("agency type", [a.id for a in self.agency_types]),
            ("gateway", [g.id for g in self.gateways]),
            ("data category", [c.id for c in self.data_categories]),
            ("purpose", [p.id for p in self.purposes]),
            ("agreement", [a.id for a in self.agreements]),
            ("rule", [r.id for r in self.rules]),
            ("decision reason", [r.id for r in self.decision_reasons]),
            ("secure email domain", [d.domain for d in self.secure_email_domains]),
            (
                "retention kind",
                [] if self.retention is None else [e.kind for e in self.retention.kinds],
            ),
            (
                "roles entry",
                [
                    *(g.id for g in self.roles.grants),
                    *(c.id for c in self.roles.consultations),
                    *(s.id for s in self.roles.subject_record_entry),
                ],
            ),
        ):
            seen: set[str] = set()
            for item in items:
                if item in seen:
                    problems.append(f"{_FILE_OF[kind]}: {kind} {item!r} is defined twice")
                seen.add(item)
        for gateway in self.gateways:
            for ref in (*gateway.who, *gateway.to_whom):
                if ref != "ANY" and ref not in agencies:
                    problems.append(
                        f"gateways.yaml: gateway {gateway.id}: unknown agency type {ref!r}"
                    )
        for category in self.data_categories:
            for ref in category.held_by:
                if ref not in agencies:
                    problems.append(
                        f"data_categories.yaml: data category {category.id}: "
                        f"unknown agency type {ref!r}"
                    )
        gateway_ids = {g.id for g in self.gateways}
        category_ids = {c.id for c in self.data_categories}
        purpose_ids = {p.id for p in self.purposes}
        for agreement in self.agreements:
            for ref in agreement.gateways:
                if ref not in gateway_ids:
                    problems.append(
                        f"agreements.yaml: agreement {agreement.id}: unknown gateway {ref!r}"
                    )
            for ref in agreement.categories:
                if ref not in category_ids:
                    problems.append(
                        f"agreements.yaml: agreement {agreement.id}: unknown data category {ref!r}"
                    )
            for ref in agreement.purposes:
                if ref not in purpose_ids:
                    problems.append(
                        f"agreements.yaml: agreement {agreement.id}: unknown purpose {ref!r}"
                    )
        functions = {g.id for g in self.gateways if g.statutory_function}
        for purpose in self.purposes:
            if purpose.statutory_function is not None and (
                purpose.statutory_function not in functions
            ):
                problems.append(
                    f"purposes.yaml: purpose {purpose.id}: statutory_function "
                    f"{purpose.statutory_function!r} is not a gateway marked statutory_function"
                )
        for descriptor in self.markings.descriptors:
            if descriptor.current_equivalent is not None and descriptor.current_equivalent not in {
                d.id for d in self.markings.descriptors
            }:
                problems.append(
                    f"markings.yaml: descriptor {descriptor.id}: unknown current_equivalent "
                    f"{descriptor.current_equivalent!r}"
                )
        if self.retention is not None:
            missing = sorted(set(MESSAGE_KINDS) - {e.kind for e in self.retention.kinds})
            if missing:
                problems.append(
                    f"retention.yaml: no entry for the kind(s) {', '.join(missing)}: every "
                    "kind needs its retention period"
                )
        problems += self._roles_references(agencies)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _roles_references(self, agencies: set[str]) -> list[str]:
        problems: list[str] = []
        gateways = {g.id for g in self.gateways}
        categories = {c.id for c in self.data_categories}
        purposes = {p.id for p in self.purposes}
        entries: list[RoleGrant | ConsultationRule | SubjectRecordRule] = [
            *self.roles.grants,
            *self.roles.consultations,
            *self.roles.subject_record_entry,
        ]
        for entry in entries:
            refs: list[tuple[str, str, set[str]]] = [
                ("agency type", ref, agencies | {"ANY"}) for ref in entry.agency_types
            ]
            if isinstance(entry, RoleGrant | ConsultationRule):
                refs += [("data category", ref, categories) for ref in entry.categories]
            if isinstance(entry, RoleGrant):
                refs += [("purpose", ref, purposes) for ref in entry.purposes]
            if isinstance(entry, ConsultationRule):
                refs += [("gateway", ref, gateways) for ref in entry.powers]
            problems += [
                f"roles.yaml: {entry.id}: unknown {what} {ref!r}"
                for what, ref, known in refs
                if ref not in known
            ]
        return problems

    # -- lookups, indexed once (the model is frozen) ------------------------------------

    _gateways: dict[str, Gateway] = PrivateAttr(default_factory=dict)
    _categories: dict[str, DataCategory] = PrivateAttr(default_factory=dict)
    _purposes: dict[str, Purpose] = PrivateAttr(default_factory=dict)
    _agencies: dict[str, AgencyTypeEntry] = PrivateAttr(default_factory=dict)
    _agreements: dict[str, DataSharingAgreement] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._gateways = {g.id: g for g in self.gateways}
        self._categories = {c.id: c for c in self.data_categories}
        self._purposes = {p.id: p for p in self.purposes}
        self._agencies = {a.id: a for a in self.agency_types}
        self._agreements = {a.id: a for a in self.agreements}

    def gateway(self, gateway_id: str) -> Gateway | None:
        return self._gateways.get(gateway_id)

    def category(self, category_id: str) -> DataCategory | None:
        return self._categories.get(category_id)

    def purpose(self, purpose_id: str) -> Purpose | None:
        return self._purposes.get(purpose_id)

    def agency(self, agency_id: str) -> AgencyTypeEntry | None:
        return self._agencies.get(agency_id)

    def agreement(self, agreement_id: str) -> DataSharingAgreement | None:
        return self._agreements.get(agreement_id)

    def decision_reasons_for(self, outcome: str) -> list[DecisionReason]:
        """The reason codes a decision with ``outcome`` may give, in the registry's order."""
        return [reason for reason in self.decision_reasons if outcome in reason.outcomes]

    def decision_reason(self, reason_id: str) -> DecisionReason | None:
        return next((r for r in self.decision_reasons if r.id == reason_id), None)

    def rule_ids(self) -> frozenset[str]:
        return frozenset(rule.id for rule in self.rules)


REGISTRY_FILES = {
    "markings": "markings.yaml",
    "agency_types": "agency_types.yaml",
    "gateways": "gateways.yaml",
    "data_categories": "data_categories.yaml",
    "purposes": "purposes.yaml",
    "rules": "rules.yaml",
    "agreements": "agreements.yaml",
    "settings": "settings.yaml",
    "roles": "roles.yaml",
    "decision_reasons": "decision_reasons.yaml",
    "retention": "retention.yaml",
    "secure_email_domains": "secure_email_domains.yaml",
}
_OPTIONAL = {"agreements", "settings", "decision_reasons", "secure_email_domains"}


def _describe(err: Any) -> str:
    """Name the file and entry of a validation error (cross-references name their own)."""
    location = tuple(err["loc"])
    message = str(err["msg"]).removeprefix("Value error, ")
    if not location:
        return message
    where = ".".join(str(part) for part in location[1:])
    return f"{REGISTRY_FILES.get(str(location[0]), str(location[0]))}: {where}: {message}"


def load_registry(directory: Path = DEFAULT_REGISTRY_DIR) -> Registry:
    """Read and validate every registry file; raise :class:`RegistryError` naming the file."""
    document: dict[str, Any] = {}
    for key, filename in REGISTRY_FILES.items():
        path = directory / filename
        if not path.exists():
            if key in _OPTIONAL:
                continue
            raise RegistryError(f"registry file {path} is missing")
        try:
            content = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise RegistryError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(content, dict) or key not in content:
            raise RegistryError(f"{path} must be a mapping with a top-level {key!r} key")
        extra = sorted(set(content) - {key})
        if extra:
            raise RegistryError(f"{path} has unknown top-level keys: {', '.join(extra)}")
        document[key] = content[key]
    try:
        return Registry.model_validate(document)
    except ValidationError as exc:
        details = "; ".join(_describe(err) for err in exc.errors(include_url=False))
        raise RegistryError(f"the policy registry is invalid: {details}") from exc
