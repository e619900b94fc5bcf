"""The signed envelope: everything the hub may see about a message (DESIGN.md section 4).

The envelope carries who, to whom, what kind, the protective marking, purpose, lawful
basis, consent position, data scope and the payload's hash and sealed keys. It never
carries free text that could identify a person: that travels in the encrypted payload.
"""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import Field, StringConstraints, field_validator, model_validator

from hub.model.base import Base64Str, NodeId, OpaqueRef, Sha256Hex, WireModel

__all__ = [
    "INLINE_PAYLOAD_MAX_BYTES",
    "MESSAGE_KINDS",
    "PAYLOAD_CIPHER",
    "UUID7_PATTERN",
    "Author",
    "AuthorRole",
    "CaseRecord",
    "Consent",
    "ConsultedRole",
    "DecisionRecord",
    "Envelope",
    "EnvelopeFields",
    "LegalBasis",
    "ManifestCategory",
    "Marking",
    "MessageKind",
    "PanelMember",
    "PanelOutcomeCode",
    "PayloadDescriptor",
    "ReleaseManifest",
    "ScopeItem",
]

# Inline ciphertext is capped at 64 KiB; larger payloads go through /v1/blobs.
INLINE_PAYLOAD_MAX_BYTES = 64 * 1024
PAYLOAD_CIPHER: Final = "xchacha20poly1305-secretstream/64k"
UUID7_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"

MessageKind = Literal[
    "referral",
    "referral_outcome",
    "information_request",
    "decision",
    "release",
    "case_open",
    "consent_record",
    "case_pack",
    "panel_outcome",
    "case_review",
    "withdrawal",
    "note",
]
MESSAGE_KINDS: tuple[str, ...] = get_args(MessageKind)

# Registry codes (purposes, gateways, categories, rule ids) are upper or lower snake
# identifiers; the registries in schemas/registry/ give them meaning.
CodeUpper = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{1,63}$")]
GatewayId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$")]
CategoryId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,63}$")]


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ValueError("must be an RFC 3339 timestamp in UTC (ending in Z or +00:00)")
    return value


# The role a person acts in; schemas/registry/roles.yaml says which roles may refer,
# decide and release (rules ROLE-01..06).
AuthorRole = Literal[
    "REFERRER",
    "SAFEGUARDING_LEAD",
    "CALDICOTT_GUARDIAN",
    "IG_LEAD",
    "DPO",
    "PREVENT_POLICE_OFFICER",
    "CHANNEL_CHAIR",
    "CHANNEL_COORDINATOR",
    "PANEL_MEMBER",
    "INTERVENTION_PROVIDER",
    "AUDITOR",
]
# Whom a decider consulted (SEED 004 paras 61, 69: the Caldicott Guardian and/or the
# Information Governance Officer); roles only, never names.
ConsultedRole = Literal["CALDICOTT_GUARDIAN", "IG_LEAD", "DPO"]
# A Channel panel's outcome (REFERENCE.md 4.2 stages 6-9; SEED 004 para 31): adopted
# (consent then sought as the support plan sets out), not adopted with no further action,
# not adopted and referred on (CTSA 2015 s36(6)), or exited from support.
PanelOutcomeCode = Literal["ADOPTED", "NOT_ADOPTED_NFA", "NOT_ADOPTED_REFERRED_ON", "EXITED"]


class Author(WireModel):
    """The person at the sending node, as the node asserts them; never their name."""

    user_ref: OpaqueRef
    role: AuthorRole
    vetting: Literal["BPSS", "CTC", "SC", "ESC", "DV", "EDV", "AC"]


class Marking(WireModel):
    """A protective marking in structured form (REFERENCE.md 1.7).

    The model accepts every tier so that the policy engine, not a parse error, can refuse
    SECRET and TOP SECRET with rule MK-09 and say why.
    """

    tier: Literal["OFFICIAL", "SECRET", "TOP SECRET"]
    sensitive: bool = False
    uk_prefix: bool = False
    handling: (
        Literal[
            "RECIPIENTS_ONLY", "FOR_PUBLIC_RELEASE", "ORG_USE_ONLY", "HMG_USE_ONLY", "EMBARGOED"
        ]
        | None
    ) = None
    handling_orgs: tuple[Annotated[str, StringConstraints(min_length=1, max_length=80)], ...] = ()
    descriptors: tuple[CodeUpper, ...] = ()
    national_caveats: tuple[
        Annotated[str, StringConstraints(min_length=1, max_length=80)], ...
    ] = ()
    # "REL EU" releasability (REFERENCE.md 1.6); only with the UK prefix (MK-08).
    rel_eu: bool = False
    # EMBARGOED needs the time it lifts and the marking that applies after (MK-07).
    embargo_until: datetime | None = None
    embargo_then: Annotated[str, StringConstraints(min_length=1, max_length=120)] | None = None

    @model_validator(mode="after")
    def _organisations_with_org_use_only(self) -> Marking:
        if self.handling == "ORG_USE_ONLY" and not self.handling_orgs:
            raise ValueError("ORG_USE_ONLY needs the organisations in 'handling_orgs'")
        if self.handling != "ORG_USE_ONLY" and self.handling_orgs:
            raise ValueError("'handling_orgs' is only for the ORG_USE_ONLY handling instruction")
        return self

    def render(self) -> str:
        """The canonical marking string, e.g. ``OFFICIAL-SENSITIVE - PERSONAL DATA``."""
        # An invalid combination (SECRET with -SENSITIVE) renders as written, never as a
        # lower marking; the policy engine refuses it (MK-02).
        parts: list[str] = [f"{self.tier}-SENSITIVE" if self.sensitive else self.tier]
        if self.uk_prefix:
            parts[0] = f"UK {parts[0]}"
        if self.handling == "ORG_USE_ONLY":
            parts.append(f"{' / '.join(self.handling_orgs)} USE ONLY")
        elif self.handling is not None:
            parts.append(self.handling.replace("_", " "))
        parts.extend(_DESCRIPTOR_STRINGS.get(d, d.replace("_", " ")) for d in self.descriptors)
        parts.extend(self.national_caveats)
        return " - ".join(parts)


_DESCRIPTOR_STRINGS = {
    "PERSONAL_DATA": "PERSONAL DATA",
    "LPP": "LEGAL PROFESSIONAL PRIVILEGE (LPP)",
    "LEGAL": "LEGAL",
    "MARKET_SENSITIVE": "MARKET SENSITIVE",
    "COMMERCIAL": "COMMERCIAL",
    "HR_MANAGEMENT": "HR / MANAGEMENT",
}


class LegalBasis(WireModel):
    """The gateway set a disclosure relies on (REFERENCE.md 2.1), as registry ids."""

    powers: tuple[GatewayId, ...] = ()
    art6: GatewayId | None = None
    art9: GatewayId | None = None
    sch1: GatewayId | None = None
    art10: GatewayId | None = None
    exemptions: tuple[GatewayId, ...] = ()
    # L2 of the layered test: how the common law duty of confidentiality is met where it
    # applies (e.g. CLDC-PUBINT, the public-interest exception; CLDC-BESTINT).
    confidentiality: tuple[GatewayId, ...] = ()
    # A data sharing agreement from the registry that this sharing falls under.
    agreement: GatewayId | None = None
    # RQ-12: the requester states it needs the data for its public task (Art 6(1)(ea)).
    public_task_statement: bool = False
    # The discloser's appropriate policy document reference, where a Schedule 1 condition
    # needs one (DPA 2018 Sch 1 para 5; rule GW-14).
    appropriate_policy_document: GatewayId | None = None
    # The registry id of the statutory function an implied power to share rests on (seed
    # 001, 003 Annex 1: a power implied because sharing is necessary for it; rule GW-15).
    statutory_function: GatewayId | None = None

    def gateway_ids(self) -> tuple[str, ...]:
        """Every gateway cited, in layer order: powers, Art 6/9, Sch 1, Art 10, the
        confidentiality exceptions, then exemptions (as the log and the registers list them).
        """
        single = [g for g in (self.art6, self.art9, self.sch1, self.art10) if g is not None]
        return (*self.powers, *single, *self.confidentiality, *self.exemptions)


class Consent(WireModel):
    """The consent position (REFERENCE.md 3.2)."""

    state: Literal[
        "OBTAINED",
        "NOT_SOUGHT",
        "REFUSED",
        "WITHDRAWN",
        "LACKS_CAPACITY",
        "CHILD_PARENT_CONSENT",
        "CHILD_OWN_CONSENT",
        "UNKNOWN",
    ]
    given_by: Literal["SUBJECT", "PARENT_OR_GUARDIAN"] | None = None
    reason_code: CodeUpper | None = None
    best_interests: bool = False
    subject_not_to_be_told: bool = False
    # The subject's age band, never the date of birth: the under-18 rules need only this.
    subject_age: Literal["UNDER_16", "AGED_16_17", "ADULT", "UNKNOWN"] = "UNKNOWN"


class ScopeItem(WireModel):
    """One named data category and its period; the justification text travels encrypted."""

    category: CategoryId
    period_from: date | None = None
    period_to: date | None = None
    justification_present: bool
    # A period longer than the category's limit needs a reason (the text travels encrypted).
    extension_reason_present: bool = False


# FHIR resource type names (FHIR R4 2.1.0: an upper-case letter, then letters).
FhirResourceType = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z]{1,63}$")]


class ManifestCategory(WireModel):
    """One data category a release holds: the period it was selected for and its resources.

    The period is the approved period the node selected the category's resources against
    (open where the approval is open); ``resources`` counts the FHIR resources released
    under the category, by type. A resource released under two categories (a Patient under
    ``identity`` and ``gp_registration``) counts under each.
    """

    category: CategoryId
    period_from: date | None = None
    period_to: date | None = None
    resources: Annotated[
        dict[FhirResourceType, Annotated[int, Field(ge=1, le=1 << 31)]],
        Field(min_length=1, max_length=64),
    ]


class ReleaseManifest(WireModel):
    """What a release holds, signed in its envelope (issue: content bound to the approval).

    The hub cannot read a release; the manifest is what it can check against the approval
    on record (rules MAN-*), what the disclosure register records as released, and what
    the receiving node checks the decrypted payload against before acknowledging it.
    ``content_sha256`` is the SHA-256 of the payload's plaintext bytes (for a FHIR release,
    the RFC 8785 canonical JSON of the bundle), so the manifest names one exact payload.
    """

    format: Literal["fhir-r4-bundle"] = "fhir-r4-bundle"
    content_sha256: Sha256Hex
    content_size: Annotated[int, Field(ge=0, le=1 << 50)]
    resource_count: Annotated[int, Field(ge=0, le=1 << 31)]
    categories: Annotated[tuple[ManifestCategory, ...], Field(max_length=64)] = ()

    @model_validator(mode="after")
    def _categories_once(self) -> ReleaseManifest:
        names = [c.category for c in self.categories]
        if len(set(names)) != len(names):
            raise ValueError("a manifest names each category once")
        for item in self.categories:
            if sum(item.resources.values()) > self.resource_count:
                raise ValueError(
                    f"manifest category {item.category} counts more resources than the "
                    "release holds (resource_count)"
                )
        return self


class PanelMember(WireModel):
    """A Channel panel member: a node and the role it plays (REFERENCE.md 4.3)."""

    node: NodeId
    role: Literal[
        "CHANNEL_CHAIR",
        "CHANNEL_COORDINATOR",
        "POLICE_PREVENT",
        "HEALTH",
        "CHILDRENS_SOCIAL_CARE",
        "ADULT_SOCIAL_CARE",
        "EDUCATION",
        "PROBATION",
        "YOUTH_JUSTICE",
        "HOUSING",
        "INTERVENTION_PROVIDER",
        "OTHER_PARTNER",
    ]


class CaseRecord(WireModel):
    """Channel case state the hub tracks: who chairs and who sits on the panel.

    On ``case_open`` (first opening or a membership change by the chair); node ids and
    roles only, never names.
    """

    chair: NodeId
    members: Annotated[tuple[PanelMember, ...], Field(min_length=1, max_length=64)]


class DecisionRecord(WireModel):
    outcome: Literal[
        "APPROVED_FULL", "APPROVED_PARTIAL", "REFUSED", "RETURNED_INCOMPLETE", "ESCALATED"
    ]
    approved_scope: tuple[ScopeItem, ...] = ()
    reason_code: CodeUpper | None = None
    # Who the decider consulted, by role (ROLE-05); the advice travels in the payload.
    consulted: Annotated[tuple[ConsultedRole, ...], Field(max_length=3)] = ()
    # The decision was entered in the patient or client record (ROLE-06; SEED 004 para 62).
    recorded_in_subject_record: bool = False

    @field_validator("consulted")
    @classmethod
    def _consulted_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("consulted must not repeat a role")
        return value


class PayloadDescriptor(WireModel):
    """Where the ciphertext is, how big it is, its hash, and its key sealed per reader."""

    media_type: Annotated[str, StringConstraints(pattern=r"^[a-z]+/[a-z0-9.+-]+$", max_length=100)]
    cipher: Literal["xchacha20poly1305-secretstream/64k"] = PAYLOAD_CIPHER
    sha256: Sha256Hex
    size: Annotated[int, Field(ge=0, le=1 << 50)]
    transport: Literal["inline", "blob"]
    inline: Base64Str | None = None
    # The content key sealed (X25519 sealed box) to each reader's encryption key.
    sealed_keys: dict[NodeId, Base64Str]

    @model_validator(mode="after")
    def _inline_matches_transport(self) -> PayloadDescriptor:
        if self.transport == "inline":
            if self.inline is None:
                raise ValueError("an inline payload needs its ciphertext in 'inline'")
            if self.size > INLINE_PAYLOAD_MAX_BYTES:
                raise ValueError(
                    f"inline payloads are at most {INLINE_PAYLOAD_MAX_BYTES} bytes; "
                    "upload larger ones through /v1/blobs"
                )
        elif self.inline is not None:
            raise ValueError("a blob payload must not also carry 'inline' ciphertext")
        return self

    def inline_bytes(self) -> bytes:
        if self.inline is None:
            raise ValueError("payload is not inline")
        try:
            return base64.b64decode(self.inline, validate=True)
        except binascii.Error as exc:  # pragma: no cover - the pattern already checked it
            raise ValueError("inline payload is not base64") from exc


class EnvelopeFields(WireModel):
    """The fields a sender fills in; shared by drafts and signed envelopes."""

    kind: MessageKind
    author: Author
    recipients: Annotated[tuple[NodeId, ...], Field(min_length=1, max_length=64)]
    marking: Marking
    # The marking exactly as the sender's document wrote it, when it was given as text;
    # ``marking`` is what the hub's parser reads it as (MK-14), never lower.
    marking_text: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None
    subject_ref: OpaqueRef | None = None
    case_ref: OpaqueRef | None = None
    in_reply_to: Annotated[str, StringConstraints(pattern=UUID7_PATTERN)] | None = None
    purpose: CodeUpper
    legal_basis: LegalBasis | None = None
    consent: Consent | None = None
    scope: tuple[ScopeItem, ...] = ()
    decision: DecisionRecord | None = None
    urgency: Literal["routine", "urgent"] = "routine"
    # Workflow state the hub tracks (DESIGN.md section 6); never identifying.
    triage_outcome: Literal["NFA", "SIGNPOSTED", "CHANNEL", "POLICE_LED"] | None = None
    case: CaseRecord | None = None
    # A case pack's payload is served until this time, then refused and purged by nodes.
    access_expires_at: datetime | None = None
    panel_outcome: PanelOutcomeCode | None = None
    review_point: Literal["6_MONTHS", "12_MONTHS"] | None = None
    # A release's content manifest: what the payload holds (rules MAN-*).
    manifest: ReleaseManifest | None = None

    @field_validator("access_expires_at")
    @classmethod
    def _expiry_in_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _require_utc(value)

    @field_validator("recipients")
    @classmethod
    def _recipients_unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("recipients must not repeat a node")
        return value


class Envelope(EnvelopeFields):
    """A signed envelope as it travels (sender's Ed25519 signature over its JCS form)."""

    version: Literal[1] = 1
    id: Annotated[str, StringConstraints(pattern=UUID7_PATTERN)]
    sender: NodeId
    created_at: datetime
    payload: PayloadDescriptor
    signature: Base64Str

    _utc = field_validator("created_at")(_require_utc)

    @model_validator(mode="after")
    def _keys_for_every_recipient(self) -> Envelope:
        if self.sender in self.recipients:
            raise ValueError("a node cannot send a message to itself")
        readers = set(self.recipients) | {self.sender}
        missing = [r for r in self.recipients if r not in self.payload.sealed_keys]
        if missing:
            raise ValueError(f"payload.sealed_keys lacks a key for {', '.join(missing)}")
        strangers = sorted(set(self.payload.sealed_keys) - readers)
        if strangers:
            raise ValueError(
                f"payload.sealed_keys names nodes that are not recipients: {', '.join(strangers)}"
            )
        return self

    def readers(self) -> frozenset[str]:
        return frozenset(self.recipients) | {self.sender}

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)
