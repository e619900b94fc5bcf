"""Encrypted payloads: what only the recipients read (DESIGN.md sections 4 and 6).

The envelope tells the hub who, to whom, why and under which gateway, with no identifying
data. The payload carries the identifying detail and the free text: the National Prevent
Referral Form, the four questions of an information request, the reasons for a decision,
the police triage outcome, and the Channel case documents.

Every model is strict, frozen and forbids unknown fields, like the envelope. Free text is
stripped and must not be blank; sequences are tuples. Dates that record something that
has happened (a date of birth, the day a concern came to light) may not lie in the future:
the validator takes "today" from the validation context key ``"today"`` when given (tests
and replays pass a fixed day) and otherwise reads the local date::

    NationalPreventReferralForm.model_validate_json(data, context={"today": date(2024, 6, 1)})

A receiving node checks that a payload agrees with its envelope, e.g.
:meth:`InformationRequestPayload.scope_mismatches` against the envelope's scope.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hub.model.base import NodeId, OpaqueRef, WireModel
from hub.model.envelope import (
    CategoryId,
    ConsultedRole,
    GatewayId,
    PanelOutcomeCode,
    ScopeItem,
)

__all__ = [
    "CONSENT_PRESENT_STATES",
    "REQUEST_CHECKLIST",
    "TODAY_CONTEXT_KEY",
    "VAF_FACTORS",
    "Address",
    "AnswerWithDetail",
    "AssessedFactor",
    "CaseOpenPayload",
    "CasePackPayload",
    "CasePackSection",
    "CasePackSectionKind",
    "CaseReviewPayload",
    "CaseSubject",
    "ChecklistItemId",
    "ComplexNeedIndicator",
    "ComplexNeeds",
    "ConcernOriginator",
    "ConsentMethod",
    "ConsentRecordPayload",
    "ConsentRequestPlan",
    "ConsentState",
    "Consultation",
    "DeciderRole",
    "DecisionMaker",
    "DecisionOutcome",
    "DecisionPayload",
    "DescribeConcerns",
    "DimensionAssessment",
    "DisabilityAnswer",
    "EmploymentEducation",
    "EmploymentStatus",
    "EscalationTarget",
    "FeedbackOutcome",
    "FormContact",
    "FurtherInformation",
    "IndividualDetails",
    "InformationRequestPayload",
    "InformedIndividual",
    "IntendedRecipient",
    "NationalPreventReferralForm",
    "NhsNumber",
    "Np07Considerations",
    "Occupation",
    "OnwardReferral",
    "PanelOutcome",
    "PanelOutcomePayload",
    "ParentOrGuardian",
    "PartnerReturn",
    "PrimaryLanguage",
    "Professional",
    "ProposedSupportPlan",
    "ReferrerFeedback",
    "RelevantDates",
    "RequestedCategory",
    "SafeguardingConsiderations",
    "SubjectIdentifiers",
    "SubjectInformed",
    "SupportDestination",
    "SupportPlanItem",
    "SupportType",
    "TriageOutcome",
    "TriageOutcomePayload",
    "VulnerabilityAssessment",
    "feedback_for_referrer",
    "is_valid_nhs_number",
    "missing_items",
    "nhs_check_digit",
    "normalise_nhs_number",
]

# The validation-context key that fixes "today" for the not-in-the-future checks.
TODAY_CONTEXT_KEY: Final = "today"

# --- Text -------------------------------------------------------------------------------
# Free text is stripped and never blank; lengths are bounded so a payload cannot hide a
# document in a name field.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Narrative = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)
]
# A case pack section's body (it may be a long report; larger payloads go as blobs).
SectionText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1_000_000)
]
PhoneNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9 ()-]{5,24}$")
]
EmailAddress = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        max_length=254,
        pattern=r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$",
    ),
]
Postcode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16)]
# A document's own protective marking string, e.g. "OFFICIAL-SENSITIVE - PERSONAL DATA".
# Only OFFICIAL tiers: the hub carries nothing above OFFICIAL-SENSITIVE (REFERENCE.md 1.7,
# rule MK-09), and inside a payload the hub cannot see a section marked higher.
DocumentMarking = Annotated[
    str, StringConstraints(pattern=r"^(UK )?OFFICIAL(-SENSITIVE)?( - .+)?$", max_length=300)
]


def _today(info: ValidationInfo) -> date:
    context = info.context
    if isinstance(context, Mapping):
        today = context.get(TODAY_CONTEXT_KEY)
        if isinstance(today, date) and not isinstance(today, datetime):
            return today
    return date.today()


def _not_in_future(value: date, info: ValidationInfo) -> date:
    if value > _today(info):
        raise ValueError("must not be in the future")
    return value


def _timezone_aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must be an RFC 3339 timestamp with a time zone")
    return value


# A date on which something has already happened.
PastDate = Annotated[date, AfterValidator(_not_in_future)]
AwareDatetime = Annotated[datetime, AfterValidator(_timezone_aware)]


def _unique(values: Sequence[object], what: str) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} must not repeat")


# --- NHS number (REFERENCE.md 6.1) ------------------------------------------------------
# Ten digits, optionally grouped "NNN NNN NNNN" as NHS systems display it.
_NHS_NUMBER_RE = re.compile(r"^[0-9]{3} ?[0-9]{3} ?[0-9]{4}$")


def nhs_check_digit(first_nine: str) -> int | None:
    """The Modulus 11 check digit of the first nine digits; None when it would be 10."""
    total = sum(
        int(digit) * weight for digit, weight in zip(first_nine, range(10, 1, -1), strict=True)
    )
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:  # such a number is never issued
        return None
    return check


def is_valid_nhs_number(text: str) -> bool:
    """Whether ``text`` is an NHS number with a correct Modulus 11 check digit.

    Accepts ``9434765919`` and ``943 476 5919``. Issuing ranges are not checked: the
    check digit is the only validation NHS Digital specifies (REFERENCE.md 6.1).
    """
    if _NHS_NUMBER_RE.fullmatch(text) is None:
        return False
    digits = text.replace(" ", "")
    return nhs_check_digit(digits[:9]) == int(digits[9])


def normalise_nhs_number(text: str) -> str:
    """The ten digits of a valid NHS number, spaces removed; ValueError when invalid."""
    if not is_valid_nhs_number(text):
        raise ValueError("is not a valid NHS number (10 digits with a Modulus 11 check digit)")
    return text.replace(" ", "")


# The pattern documents the accepted spellings in the JSON Schema; the validator checks
# the check digit and stores the ten digits.
NhsNumber = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{3} ?[0-9]{3} ?[0-9]{4}$"),
    AfterValidator(normalise_nhs_number),
]


# --- People and places ------------------------------------------------------------------
class Address(WireModel):
    lines: Annotated[tuple[ShortText, ...], Field(min_length=1, max_length=6)]
    town: ShortText | None = None
    postcode: Postcode | None = None
    current_residence: bool = False


class Professional(WireModel):
    """A named professional: requester, decision maker, assessor, panel chair."""

    name: Name
    role: ShortText
    organisation: ShortText
    telephone: PhoneNumber | None = None
    email: EmailAddress | None = None

    def has_contact(self) -> bool:
        return self.telephone is not None or self.email is not None


class ParentOrGuardian(WireModel):
    name: Name
    relationship: ShortText
    # Only a person with parental responsibility can consent for a child (REFERENCE.md 3.2
    # CHILD_PARENT_CONSENT: "parent identity and PR status").
    parental_responsibility: bool
    telephone: PhoneNumber | None = None
    email: EmailAddress | None = None


class PrimaryLanguage(WireModel):
    """Form label "Primary Language"."""

    first_language: ShortText | None = None
    speaks_understands_english: bool | None = None
    # Not a label of the form: the panel and practitioners need to know it to engage.
    interpreter_needed: bool | None = None

    @model_validator(mode="after")
    def _something_said(self) -> PrimaryLanguage:
        if (
            self.first_language is None
            and self.speaks_understands_english is None
            and self.interpreter_needed is None
        ):
            raise ValueError("give the first language or whether English is understood")
        return self


# =======================================================================================
# National Prevent Referral Form (REFERENCE.md 4.6; seed 004 appendices 3 and 6)
# =======================================================================================


class IndividualDetails(WireModel):
    """Section "Individual's biographical & contact details"."""

    forenames: Annotated[Name | None, Field(description="Forename(s)")] = None
    surname: Annotated[Name | None, Field(description="Surname")] = None
    # Not a label of the form; other names the person is known by help agencies match
    # records (data category "identity").
    aliases: Annotated[tuple[Name, ...], Field(max_length=20)] = ()
    date_of_birth: Annotated[PastDate | None, Field(description="Date of Birth")] = None
    approx_age: Annotated[
        int | None, Field(ge=0, le=130, description="Approx. Age (if DoB unknown)")
    ] = None
    gender: Annotated[ShortText | None, Field(description="Gender (as described)")] = None
    addresses: Annotated[
        tuple[Address, ...],
        Field(max_length=20, description="Known Address(es); mark the current residence"),
    ] = ()
    nationality_citizenship: Annotated[
        ShortText | None, Field(description="Nationality / Citizenship")
    ] = None
    citizenship_documentation: Annotated[
        ShortText | None,
        Field(description="Stated nationality / citizenship documentation (if any)"),
    ] = None
    immigration_asylum_status: Annotated[
        Narrative | None,
        Field(description="Immigration / Asylum Status (refugee status, asylum claimant ...)"),
    ] = None
    primary_language: PrimaryLanguage | None = None
    contact_numbers: Annotated[
        tuple[PhoneNumber, ...], Field(max_length=10, description="Contact Number(s)")
    ] = ()
    email_addresses: Annotated[
        tuple[EmailAddress, ...], Field(max_length=10, description="Email Address(es)")
    ] = ()
    other_family_details: Annotated[
        Narrative | None,
        Field(description="Any Other Family Details (family make-up, who lives with them)"),
    ] = None
    # Not a label of the form; health referrers hold it and it makes matching certain.
    nhs_number: NhsNumber | None = None

    @model_validator(mode="after")
    def _consistent(self) -> IndividualDetails:
        if self.forenames is None and self.surname is None:
            raise ValueError("give the individual's forename(s) or surname")
        if self.date_of_birth is not None and self.approx_age is not None:
            raise ValueError("'approx_age' is only for when the date of birth is unknown")
        if sum(address.current_residence for address in self.addresses) > 1:
            raise ValueError("at most one address is the current residence")
        return self


class DescribeConcerns(WireModel):
    """Section "Describe concerns": the description and the form's prompts."""

    description: Annotated[
        Narrative,
        Field(description="In as much detail as possible, the specific concern(s) for Prevent"),
    ]
    how_came_to_notice: Annotated[
        Narrative | None, Field(description="How / why the individual came to notice")
    ] = None
    specific_event: Annotated[
        Narrative | None,
        Field(description="A specific event, or a combination of factors, and what happened"),
    ] = None
    travel_plans: Annotated[
        Narrative | None,
        Field(description="Travel plans to a warzone or similar countries: where, when, how"),
    ] = None
    concerning_contacts: Annotated[
        Narrative | None,
        Field(description="Contact with groups or individuals of concern: who, why, how often"),
    ] = None
    online_activity: Annotated[
        Narrative | None,
        Field(description="Mobile phone, internet or social media use, and how it is known"),
    ] = None
    threats_of_violence: Annotated[
        Narrative | None,
        Field(description="Expressed desire to cause physical harm or threats: who, when, words"),
    ] = None
    interest_in_extremism: Annotated[
        Narrative | None,
        Field(
            description="Interest in hate crime, extremists, terrorism, an extremist ideology, "
            "group or cause, school-shooters, public massacres or murders of public figures"
        ),
    ] = None
    other_concerns: Annotated[
        Narrative | None, Field(description="Any other concerns not mentioned")
    ] = None


ComplexNeedIndicator = Literal[
    "VICTIM_OF_CRIME_ABUSE_OR_BULLYING",
    "WORK_FINANCIAL_OR_HOUSING_PROBLEMS",
    "CITIZENSHIP_ASYLUM_OR_IMMIGRATION_ISSUES",
    "PERSONAL_EMOTIONAL_RELATIONSHIP_OR_FAMILY_PROBLEMS",
    "ONGOING_COURT_PROCEEDINGS",
    "ON_PROBATION",
    "ERRATIC_VIOLENT_SELF_DESTRUCTIVE_OR_RISKY_BEHAVIOUR",
    "ALCOHOL_OR_DRUG_MISUSE",
    "GRIEVANCE_INJUSTICE_OR_CONSPIRACY_THEORIES",
    "EDUCATIONAL_ISSUES",
    "DEVELOPMENTAL_OR_BEHAVIOURAL_DIFFICULTIES",
    "LEARNING_DISABILITY",
    "AUTISM",
    "MENTAL_ILL_HEALTH",
    "OTHER",
]


class ComplexNeeds(WireModel):
    """Section "Complex needs": what may affect wellbeing or make the person vulnerable.

    The indicators are the form's prompts as tags; the description is the answer.
    """

    description: Narrative | None = None
    indicators: Annotated[tuple[ComplexNeedIndicator, ...], Field(max_length=15)] = ()

    @model_validator(mode="after")
    def _something_said(self) -> ComplexNeeds:
        if self.description is None and not self.indicators:
            raise ValueError("describe the complex needs or tag at least one indicator")
        _unique(self.indicators, "indicators")
        return self


class FurtherInformation(WireModel):
    """The form's further information: social media, service number, other agencies."""

    social_media_details: Narrative | None = None
    military_service_number: ShortText | None = None
    other_agencies_or_professionals: Narrative | None = None
    other: Narrative | None = None

    @model_validator(mode="after")
    def _something_said(self) -> FurtherInformation:
        if all(value is None for value in self.model_dump().values()):
            raise ValueError("further information, when given, must say something")
        return self


class FormContact(WireModel):
    """A person block of the form: forename, surname, role and organisation, contact."""

    forenames: Name
    surname: Name
    professional_role: ShortText
    organisation: ShortText
    relationship_to_individual: ShortText | None = None
    telephone: PhoneNumber | None = None
    email: EmailAddress | None = None

    @model_validator(mode="after")
    def _reachable(self) -> FormContact:
        if self.telephone is None and self.email is None:
            raise ValueError("give a contact telephone number or email address")
        return self


class ConcernOriginator(FormContact):
    """Section "Person who first identified the concerns".

    Their contact details go to the assessing teams so the source can be reached (RQ-13);
    ``wishes_to_remain_anonymous`` asks those teams not to reveal them to the individual.
    """

    wishes_to_remain_anonymous: bool


class RelevantDates(WireModel):
    """Section "Relevant dates"."""

    concern_first_came_to_light: PastDate | None = None
    referral_made_to_prevent: PastDate

    @model_validator(mode="after")
    def _in_order(self) -> RelevantDates:
        first = self.concern_first_came_to_light
        if first is not None and first > self.referral_made_to_prevent:
            raise ValueError("the concern cannot come to light after the referral was made")
        return self


class AnswerWithDetail(WireModel):
    """A Yes/No question of the form and its follow-up ("What was the result ...?")."""

    answer: bool
    detail: Narrative | None = None

    @model_validator(mode="after")
    def _detail_for_yes(self) -> AnswerWithDetail:
        if self.answer and self.detail is None:
            raise ValueError("a 'yes' answer needs its detail")
        return self


class DisabilityAnswer(AnswerWithDetail):
    """Stated or diagnosed disabilities, disorders or mental health issues."""

    diagnosed: bool | None = None

    @model_validator(mode="after")
    def _diagnosis_for_yes(self) -> DisabilityAnswer:
        if not self.answer and self.diagnosed is not None:
            raise ValueError("'diagnosed' is only for a 'yes' answer")
        return self


class InformedIndividual(WireModel):
    """The form's "Have you informed the Individual that you are making this referral?".

    The form asks for the response when informed; the reason when not is what the
    discloser must record (REFERENCE.md 3.7).
    """

    informed: bool
    response: Narrative | None = None
    reason_not_informed: Narrative | None = None

    @model_validator(mode="after")
    def _consistent(self) -> InformedIndividual:
        if self.informed and self.reason_not_informed is not None:
            raise ValueError("'reason_not_informed' is only for when the individual was not told")
        if not self.informed:
            if self.response is not None:
                raise ValueError("'response' is only for when the individual was told")
            if self.reason_not_informed is None:
                raise ValueError("say why the individual was not told ('reason_not_informed')")
        return self


class SafeguardingConsiderations(WireModel):
    """Section "Safeguarding considerations"."""

    disabilities_or_mental_health: DisabilityAnswer | None = None
    discussed_with_safeguarding_lead: AnswerWithDetail | None = None
    informed_individual: InformedIndividual
    direct_action_taken: AnswerWithDetail | None = None
    discussed_with_other_agencies: AnswerWithDetail | None = None
    # Not a label of the form: risks to staff who visit or meet the person (lone working).
    risks_to_staff: Narrative | None = None


class Occupation(WireModel):
    occupation: ShortText | None = None
    employer: ShortText | None = None

    @model_validator(mode="after")
    def _something_said(self) -> Occupation:
        if self.occupation is None and self.employer is None:
            raise ValueError("give the occupation or the employer")
        return self


EmploymentStatus = Literal[
    "EMPLOYED", "SELF_EMPLOYED", "UNEMPLOYED", "IN_EDUCATION", "RETIRED", "OTHER", "UNKNOWN"
]


class EmploymentEducation(WireModel):
    """Section "Individual's employment / education details"."""

    # Not a label of the form; a summary the form's occupation fields imply.
    employment_status: EmploymentStatus | None = None
    current_occupations: Annotated[tuple[Occupation, ...], Field(max_length=10)] = ()
    previous_occupations: Annotated[tuple[Occupation, ...], Field(max_length=20)] = ()
    current_education: Annotated[tuple[ShortText, ...], Field(max_length=10)] = ()
    previous_education: Annotated[tuple[ShortText, ...], Field(max_length=20)] = ()


class NationalPreventReferralForm(WireModel):
    """The National Prevent Referral Form (payload of a ``referral`` message).

    The form is OFFICIAL-SENSITIVE when complete; the envelope carries that marking. The
    form goes to the local authority safeguarding team and the police Prevent team for a
    joint assessment (DESIGN.md section 6).
    """

    individual: IndividualDetails
    concerns: DescribeConcerns
    complex_needs: ComplexNeeds | None = None
    further_information: FurtherInformation | None = None
    person_who_first_identified_concern: ConcernOriginator
    # "Person making this referral (if different from above)"; None means the same person.
    person_making_referral: FormContact | None = None
    # "Referrer's organisational Prevent contact (if different from above)".
    organisational_prevent_contact: FormContact | None = None
    relevant_dates: RelevantDates
    safeguarding_considerations: SafeguardingConsiderations
    employment_education: EmploymentEducation | None = None
    # When consent was not sought, the covering words stating the basis for sharing
    # (seed 004 appendix 4a, REFERENCE.md 3.7); the gateway ids are in the envelope.
    consent_not_sought_statement: Narrative | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> NationalPreventReferralForm:
        born = self.individual.date_of_birth
        if born is not None:
            dates = self.relevant_dates
            first = dates.concern_first_came_to_light
            if first is not None and first < born:
                raise ValueError("the concern cannot come to light before the date of birth")
            if dates.referral_made_to_prevent < born:
                raise ValueError("the referral cannot be made before the date of birth")
        return self


# =======================================================================================
# Information request (REFERENCE.md 3.1) and decision (3.5-3.7)
# =======================================================================================

ChecklistItemId = Literal[
    "RQ-01",
    "RQ-02",
    "RQ-03",
    "RQ-04",
    "RQ-05",
    "RQ-06",
    "RQ-07",
    "RQ-08",
    "RQ-09",
    "RQ-10",
    "RQ-11",
    "RQ-12",
    "RQ-13",
]

# REFERENCE.md 3.1: what a request must contain before any human sees it.
REQUEST_CHECKLIST: Final[Mapping[ChecklistItemId, str]] = {
    "RQ-01": "requester: person, role, organisation and a contact",
    "RQ-02": "the organisation-sanctioned information-request proforma",
    "RQ-03": "a secure channel and the OFFICIAL-SENSITIVE marking",
    "RQ-04": "subject identifiers: name and date of birth (or NHS number)",
    "RQ-05": "specific data categories, each with a justification",
    "RQ-06": "to whom the information will go, including onward sharing",
    "RQ-07": "why it is needed and what it will achieve",
    "RQ-08": "the legal basis relied on",
    "RQ-09": "the consent position and, if consent was not sought, why",
    "RQ-10": "without consent: the public-interest statement",
    "RQ-11": "for an urgent request: why it is urgent",
    "RQ-12": "the requester's statement that it needs the data for its public task",
    "RQ-13": "for referrals: the original source of the concern",
}

ConsentState = Literal[
    "OBTAINED",
    "NOT_SOUGHT",
    "REFUSED",
    "WITHDRAWN",
    "LACKS_CAPACITY",
    "CHILD_PARENT_CONSENT",
    "CHILD_OWN_CONSENT",
    "UNKNOWN",
]
# The states in which the person (or, for a child, a parent) agreed to this sharing.
CONSENT_PRESENT_STATES: Final = frozenset({"OBTAINED", "CHILD_PARENT_CONSENT", "CHILD_OWN_CONSENT"})


class SubjectIdentifiers(WireModel):
    """Who the request or case is about (RQ-04)."""

    forenames: Name | None = None
    surname: Name | None = None
    aliases: Annotated[tuple[Name, ...], Field(max_length=20)] = ()
    date_of_birth: PastDate | None = None
    nhs_number: NhsNumber | None = None
    address: Address | None = None

    def is_identified(self) -> bool:
        named = self.forenames is not None or self.surname is not None
        return named and (self.date_of_birth is not None or self.nhs_number is not None)


class RequestedCategory(WireModel):
    """One data category asked for (the envelope's scope item carries id and period)."""

    category: CategoryId
    justification: Narrative | None = None
    # Why a period longer than the category's limit is needed (scope rule SCOPE-06).
    extension_reason: Narrative | None = None


class IntendedRecipient(WireModel):
    organisation: ShortText
    role: ShortText
    node: NodeId | None = None


class InformationRequestPayload(WireModel):
    """The four questions of a request: what, to whom, why, on what basis.

    The items of the request checklist are optional here so that an incomplete request
    still reaches the discloser, who returns it with the list from :func:`missing_items`
    (outcome ``RETURNED_INCOMPLETE``).
    """

    requester: Professional | None = None  # RQ-01
    proforma_id: ShortText | None = None  # RQ-02
    subject: SubjectIdentifiers | None = None  # RQ-04
    # What: one entry per category of the envelope's scope, in any order (RQ-05).
    requested: Annotated[tuple[RequestedCategory, ...], Field(max_length=64)] = ()
    # To whom (RQ-06), and any onward sharing such as the Channel panel.
    recipients: Annotated[tuple[IntendedRecipient, ...], Field(max_length=64)] = ()
    onward_sharing: Annotated[tuple[IntendedRecipient, ...], Field(max_length=64)] = ()
    onward_sharing_note: Narrative | None = None
    # Why, and with what expected outcome (RQ-07).
    purpose: Narrative | None = None
    expected_outcome: Narrative | None = None
    # On what basis: the narrative; the gateway ids are in the envelope (RQ-08).
    legal_basis_statement: Narrative | None = None
    narrative: Narrative | None = None
    # In broad terms why consent was not sought (RQ-09).
    consent_not_sought_reason: Narrative | None = None
    # The risk of harm and why it outweighs confidentiality (RQ-10).
    public_interest_statement: Narrative | None = None
    urgency_justification: Narrative | None = None  # RQ-11
    public_task_statement: Narrative | None = None  # RQ-12

    @field_validator("requested")
    @classmethod
    def _categories_unique(
        cls, value: tuple[RequestedCategory, ...]
    ) -> tuple[RequestedCategory, ...]:
        _unique([item.category for item in value], "requested categories")
        return value

    def categories(self) -> tuple[str, ...]:
        """The category ids requested, in the order given."""
        return tuple(item.category for item in self.requested)

    def scope_mismatches(self, scope: Sequence[ScopeItem]) -> tuple[str, ...]:
        """How this payload disagrees with the envelope's scope; empty when they match.

        One payload entry per scope item, and the envelope's ``justification_present``
        and ``extension_reason_present`` flags must tell the truth about the text here.
        """
        problems: list[str] = []
        by_category = {item.category: item for item in self.requested}
        scope_categories = [item.category for item in scope]
        for category in sorted(set(scope_categories)):
            if scope_categories.count(category) > 1:
                problems.append(f"{category}: named more than once in the envelope scope")
        for item in scope:
            requested = by_category.get(item.category)
            if requested is None:
                problems.append(f"{item.category}: in the envelope scope but not the payload")
                continue
            if item.justification_present != (requested.justification is not None):
                problems.append(f"{item.category}: justification_present does not match")
            if item.extension_reason_present != (requested.extension_reason is not None):
                problems.append(f"{item.category}: extension_reason_present does not match")
        for category in self.categories():
            if category not in scope_categories:
                problems.append(f"{category}: in the payload but not the envelope scope")
        return tuple(problems)


def missing_items(
    payload: InformationRequestPayload,
    consent_state: ConsentState,
    *,
    urgency: Literal["routine", "urgent"] = "routine",
    public_task_statement_needed: bool = False,
) -> tuple[ChecklistItemId, ...]:
    """The request checklist items (REFERENCE.md 3.1) this request lacks, in order.

    ``consent_state``, ``urgency`` and ``public_task_statement_needed`` (the discloser
    relies on UK GDPR Art 6(1)(ea)) come from the envelope. RQ-03 (marking and channel)
    and the gateway ids of RQ-08 are envelope facts that the policy engine checks; RQ-13
    is for referrals, whose form requires the originator. Missing any item means the
    outcome ``RETURNED_INCOMPLETE``.
    """
    missing: list[ChecklistItemId] = []
    requester = payload.requester
    if requester is None or not requester.has_contact():
        missing.append("RQ-01")
    if payload.proforma_id is None:
        missing.append("RQ-02")
    if payload.subject is None or not payload.subject.is_identified():
        missing.append("RQ-04")
    if not payload.requested or any(item.justification is None for item in payload.requested):
        missing.append("RQ-05")
    if not payload.recipients:
        missing.append("RQ-06")
    if payload.purpose is None or payload.expected_outcome is None:
        missing.append("RQ-07")
    if payload.legal_basis_statement is None:
        missing.append("RQ-08")
    if consent_state == "UNKNOWN" or (
        consent_state == "NOT_SOUGHT" and payload.consent_not_sought_reason is None
    ):
        missing.append("RQ-09")
    if consent_state not in CONSENT_PRESENT_STATES and payload.public_interest_statement is None:
        missing.append("RQ-10")
    if urgency == "urgent" and payload.urgency_justification is None:
        missing.append("RQ-11")
    if public_task_statement_needed and payload.public_task_statement is None:
        missing.append("RQ-12")
    return tuple(missing)


DecisionOutcome = Literal[
    "APPROVED_FULL", "APPROVED_PARTIAL", "REFUSED", "RETURNED_INCOMPLETE", "ESCALATED"
]
DeciderRole = Literal[
    "SAFEGUARDING_LEAD",
    "CALDICOTT_GUARDIAN",
    "IG_LEAD",
    "DPO",
    "PREVENT_POLICE_OFFICER",
    "CHANNEL_CHAIR",
    "CHANNEL_COORDINATOR",
]
EscalationTarget = Literal["CALDICOTT_GUARDIAN", "IG_LEAD", "DPO"]


class DecisionMaker(WireModel):
    name: Name
    role: DeciderRole
    job_title: ShortText | None = None
    organisation: ShortText


class Np07Considerations(WireModel):
    """The health discloser's questions (REFERENCE.md 3.5 NP-07; seed 004 para 70)."""

    protects_from_exploitation_grooming_or_self_harm: bool | None = None
    prevents_detects_serious_crime_or_safeguards: bool | None = None
    proportionate_to_risk_of_serious_harm: bool | None = None
    person_poses_harm_to_self_or_public: bool | None = None
    public_interest_clearly_stated: bool | None = None
    notes: Narrative | None = None


class SubjectInformed(WireModel):
    """Whether the subject was told of the disclosure, and if not why (REFERENCE.md 3.7)."""

    informed: bool
    reason_not_informed: Narrative | None = None

    @model_validator(mode="after")
    def _reason_when_not(self) -> SubjectInformed:
        if self.informed and self.reason_not_informed is not None:
            raise ValueError("'reason_not_informed' is only for when the subject was not told")
        if not self.informed and self.reason_not_informed is None:
            raise ValueError("say why the subject was not told ('reason_not_informed')")
        return self


class Consultation(WireModel):
    """The decider's consultation with the Caldicott Guardian or IG officer (SEED 004 p69).

    The envelope's ``decision.consulted`` names the roles for the hub (rule ROLE-05); the
    payload records who was consulted, when, and what they advised.
    """

    role: ConsultedRole
    name: Name | None = None
    consulted_at: AwareDatetime
    advice: Narrative


class DecisionPayload(WireModel):
    """The reasons for a release decision, recorded whether or not anything is shared.

    ``outcome`` repeats the envelope's ``decision.outcome`` so that each field below can
    be required or refused by outcome; a receiving node checks that the two agree.
    """

    outcome: DecisionOutcome
    rationale: Narrative
    decided_by: DecisionMaker
    # RETURNED_INCOMPLETE: what is missing, as checklist ids and/or in words.
    missing_items: Annotated[tuple[ChecklistItemId, ...], Field(max_length=13)] = ()
    missing_detail: Narrative | None = None
    escalated_to: EscalationTarget | None = None  # ESCALATED
    refusal_reason: Narrative | None = None  # REFUSED
    np07: Np07Considerations | None = None
    # Without consent: which public-interest or best-interests considerations set aside
    # the person's rights under the CLDC, DPA 2018 and HRA 1998 (REFERENCE.md 3.7).
    public_interest_considerations: Narrative | None = None
    # Required when something is released.
    subject_informed: SubjectInformed | None = None
    # An entry of the disclosure was made in the patient or client record (seed 004 p62),
    # and where to find it there (the record system's own reference, never clinical text).
    recorded_in_subject_record: bool | None = None
    subject_record_ref: ShortText | None = None
    # The Caldicott Guardian / IG consultations behind the decision (ROLE-05).
    consultations: Annotated[tuple[Consultation, ...], Field(max_length=6)] = ()

    @model_validator(mode="after")
    def _fields_for_outcome(self) -> DecisionPayload:
        incomplete = self.outcome == "RETURNED_INCOMPLETE"
        if incomplete and not self.missing_items and self.missing_detail is None:
            raise ValueError("RETURNED_INCOMPLETE needs 'missing_items' or 'missing_detail'")
        if not incomplete and (self.missing_items or self.missing_detail is not None):
            raise ValueError("'missing_items' and 'missing_detail' are for RETURNED_INCOMPLETE")
        _unique(self.missing_items, "missing_items")
        if (self.outcome == "ESCALATED") != (self.escalated_to is not None):
            raise ValueError("'escalated_to' is required for ESCALATED and only for it")
        if (self.outcome == "REFUSED") != (self.refusal_reason is not None):
            raise ValueError("'refusal_reason' is required for REFUSED and only for it")
        approved = self.outcome in ("APPROVED_FULL", "APPROVED_PARTIAL")
        if approved and self.subject_informed is None:
            raise ValueError("an approval records whether the subject was informed")
        if self.subject_record_ref is not None and self.recorded_in_subject_record is not True:
            raise ValueError(
                "'subject_record_ref' is for a decision recorded in the subject's record "
                "('recorded_in_subject_record': true)"
            )
        return self

    def consulted_roles(self) -> frozenset[str]:
        return frozenset(c.role for c in self.consultations)


# =======================================================================================
# Referral triage (police) and the referrer's feedback
# =======================================================================================

TriageOutcome = Literal["NFA", "SIGNPOSTED", "CHANNEL", "POLICE_LED"]
SupportDestination = Literal[
    "EARLY_HELP",
    "CHILDRENS_SOCIAL_CARE",
    "ADULT_SOCIAL_CARE",
    "MENTAL_HEALTH_SERVICES",
    "OTHER_HEALTH_SERVICES",
    "EDUCATION",
    "HOUSING",
    "SUBSTANCE_MISUSE_SERVICES",
    "EMPLOYMENT_SUPPORT",
    "VOLUNTARY_SECTOR",
    "OTHER",
]


class OnwardReferral(WireModel):
    """Where someone is signposted or referred on (REFERENCE.md 4.2, CTSA 2015 s36(6))."""

    destination: SupportDestination
    organisation: ShortText | None = None
    note: Narrative | None = None


class TriageOutcomePayload(WireModel):
    """The police triage ("gateway assessment") outcome of a referral.

    For the local authority Prevent lead and the police; the referrer gets only
    :func:`feedback_for_referrer`. ``rationale``, ``risk_summary`` and
    ``deconfliction_note`` are police assessment and never leave for the referrer.
    """

    outcome: TriageOutcome
    rationale: Narrative
    assessed_by: Professional
    triage_date: PastDate
    assessment_framework: Literal["PAF", "VAF", "OTHER"] | None = None
    risk_summary: Narrative | None = None
    deconfliction_note: Narrative | None = None
    signposted_to: Annotated[tuple[OnwardReferral, ...], Field(max_length=10)] = ()
    # The only free text the referrer will see: what they should do next. Written for the
    # referrer, so it must hold no police intelligence.
    referrer_next_steps: Narrative | None = None

    @model_validator(mode="after")
    def _signposting(self) -> TriageOutcomePayload:
        if self.outcome == "SIGNPOSTED" and not self.signposted_to:
            raise ValueError("SIGNPOSTED needs where to in 'signposted_to'")
        return self


FeedbackOutcome = Literal[
    "NO_FURTHER_PREVENT_ACTION", "SIGNPOSTED_TO_OTHER_SUPPORT", "PREVENT_MANAGEMENT_ONGOING"
]


class ReferrerFeedback(WireModel):
    """What the referrer may know: an outcome category and next steps, nothing more.

    CHANNEL and POLICE_LED share one category so that feedback never reveals that the
    police manage a case.
    """

    outcome: FeedbackOutcome
    next_steps: Narrative
    signposted_to: Annotated[tuple[SupportDestination, ...], Field(max_length=10)] = ()


_FEEDBACK_OUTCOME: Final[Mapping[TriageOutcome, FeedbackOutcome]] = {
    "NFA": "NO_FURTHER_PREVENT_ACTION",
    "SIGNPOSTED": "SIGNPOSTED_TO_OTHER_SUPPORT",
    "CHANNEL": "PREVENT_MANAGEMENT_ONGOING",
    "POLICE_LED": "PREVENT_MANAGEMENT_ONGOING",
}
_DEFAULT_NEXT_STEPS: Final[Mapping[FeedbackOutcome, str]] = {
    "NO_FURTHER_PREVENT_ACTION": (
        "No further Prevent action. Continue to support the person through your "
        "organisation's usual safeguarding arrangements and refer again if concerns change."
    ),
    "SIGNPOSTED_TO_OTHER_SUPPORT": (
        "The person has been signposted to other support. Continue your usual "
        "safeguarding arrangements and refer again if concerns change."
    ),
    "PREVENT_MANAGEMENT_ONGOING": (
        "The referral is being taken forward by Prevent partners. You may be contacted. "
        "Report any new concern at once."
    ),
}


def feedback_for_referrer(triage: TriageOutcomePayload) -> ReferrerFeedback:
    """The referrer's feedback: the outcome category, next steps and signposting only."""
    outcome = _FEEDBACK_OUTCOME[triage.outcome]
    destinations: tuple[SupportDestination, ...] = ()
    if triage.outcome == "SIGNPOSTED":
        destinations = tuple(dict.fromkeys(item.destination for item in triage.signposted_to))
    return ReferrerFeedback(
        outcome=outcome,
        next_steps=triage.referrer_next_steps or _DEFAULT_NEXT_STEPS[outcome],
        signposted_to=destinations,
    )


# =======================================================================================
# Channel case (REFERENCE.md 4.2-4.5)
# =======================================================================================


class CaseSubject(SubjectIdentifiers):
    """What the panel needs to know of who the person is."""

    gender: ShortText | None = None
    primary_language: PrimaryLanguage | None = None
    parents_or_guardians: Annotated[tuple[ParentOrGuardian, ...], Field(max_length=6)] = ()


class CaseOpenPayload(WireModel):
    """Payload of ``case_open``: the subject, a case summary and the panel meeting."""

    subject: CaseSubject
    case_summary: Narrative
    referral_date: PastDate | None = None
    # The (first) panel meeting; it may be in the future.
    meeting_date: date | None = None
    coordinator: Professional | None = None


ConsentMethod = Literal[
    "IN_PERSON_WRITTEN",
    "IN_PERSON_VERBAL",
    "TELEPHONE",
    "VIDEO_CALL",
    "LETTER",
    "EMAIL",
    "OTHER",
]


class ConsentRecordPayload(WireModel):
    """Payload of ``consent_record``: who consented to what, how, when, what they were told.

    Channel support is voluntary: the person (or under 18 a parent or guardian with
    parental responsibility) must know what support means and consent to it and to the
    sharing of their information, and may withdraw at any time (REFERENCE.md 3.2 CS-04,
    CS-05).
    """

    outcome: Literal["CONSENTED", "REFUSED", "WITHDRAWN"]
    given_by: Literal["SUBJECT", "PARENT_OR_GUARDIAN"]
    parent_or_guardian: ParentOrGuardian | None = None
    consent_to: Annotated[
        tuple[Literal["CHANNEL_SUPPORT", "INFORMATION_SHARING"], ...],
        Field(min_length=1, max_length=2),
    ]
    method: ConsentMethod
    # When consent was given or refused.
    decided_at: AwareDatetime
    sought_by: Professional
    information_given: Narrative
    right_to_withdraw_explained: bool
    # A competent child's own consent, or capacity under the MCA 2005 where in doubt.
    competence_or_capacity_note: Narrative | None = None
    withdrawn_at: AwareDatetime | None = None
    withdrawal_note: Narrative | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ConsentRecordPayload:
        _unique(self.consent_to, "consent_to")
        if self.given_by == "PARENT_OR_GUARDIAN":
            if self.parent_or_guardian is None:
                raise ValueError("consent by a parent or guardian names them")
            if not self.parent_or_guardian.parental_responsibility:
                raise ValueError(
                    "only a parent or guardian with parental responsibility may consent"
                )
        elif self.parent_or_guardian is not None:
            raise ValueError("'parent_or_guardian' is only for consent given by them")
        if (self.outcome == "WITHDRAWN") != (self.withdrawn_at is not None):
            raise ValueError("'withdrawn_at' is required for WITHDRAWN and only for it")
        if self.withdrawal_note is not None and self.withdrawn_at is None:
            raise ValueError("'withdrawal_note' is only for a withdrawal")
        if self.withdrawn_at is not None and self.withdrawn_at < self.decided_at:
            raise ValueError("consent cannot be withdrawn before it was given")
        return self


# --- Vulnerability assessment (REFERENCE.md 4.5) ----------------------------------------
VafDimension = Literal["engagement", "intent", "capability"]
# The 22 VAF factors: 13 engagement, 6 intent, 3 capability (wording [UNCONFIRMED]).
VAF_FACTORS: Final[Mapping[str, tuple[VafDimension, str]]] = {
    "E01": ("engagement", "feelings of grievance and injustice"),
    "E02": ("engagement", "feeling under threat"),
    "E03": ("engagement", "need for identity, meaning and belonging"),
    "E04": ("engagement", "desire for status"),
    "E05": ("engagement", "desire for excitement and adventure"),
    "E06": ("engagement", "need to dominate and control"),
    "E07": ("engagement", "susceptibility to indoctrination"),
    "E08": ("engagement", "desire for political or moral change"),
    "E09": ("engagement", "opportunistic involvement"),
    "E10": ("engagement", "family or friends support extremist offending"),
    "E11": ("engagement", "transitional periods"),
    "E12": ("engagement", "group influence and control"),
    "E13": ("engagement", "mental health"),
    "I01": ("intent", "over-identification with a group or ideology"),
    "I02": ("intent", '"us and them" thinking'),
    "I03": ("intent", "dehumanisation of the enemy"),
    "I04": ("intent", "attitudes that justify offending"),
    "I05": ("intent", "harmful means to an end"),
    "I06": ("intent", "harmful objectives"),
    "C01": ("capability", "individual knowledge, skills and competencies"),
    "C02": ("capability", "access to networks, funding or equipment"),
    "C03": ("capability", "criminal history"),
}
FactorId = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_.-]{0,31}$")]


class AssessedFactor(WireModel):
    factor: FactorId
    # None: not known.
    present: bool | None = None
    evidence: Narrative | None = None


class DimensionAssessment(WireModel):
    summary: Narrative
    factors: Annotated[tuple[AssessedFactor, ...], Field(max_length=32)] = ()


class VulnerabilityAssessment(WireModel):
    """Engagement, intent and capability, each assessed separately.

    Police triage now uses the Prevent Assessment Framework (PAF); whether panels use VAF
    or PAF output is unconfirmed, so the framework is named (REFERENCE.md 4.5). With VAF,
    factor ids are checked against :data:`VAF_FACTORS` and their dimension.
    """

    framework: Literal["VAF", "PAF", "OTHER"]
    version: ShortText | None = None
    assessed_on: PastDate
    assessed_by: Professional
    engagement: DimensionAssessment
    intent: DimensionAssessment
    capability: DimensionAssessment

    @model_validator(mode="after")
    def _factors(self) -> VulnerabilityAssessment:
        dimensions: dict[VafDimension, DimensionAssessment] = {
            "engagement": self.engagement,
            "intent": self.intent,
            "capability": self.capability,
        }
        all_factors = [f.factor for d in dimensions.values() for f in d.factors]
        _unique(all_factors, "assessed factors")
        if self.framework == "VAF":
            for dimension, assessment in dimensions.items():
                for item in assessment.factors:
                    known = VAF_FACTORS.get(item.factor)
                    if known is None:
                        raise ValueError(f"{item.factor} is not a VAF factor")
                    if known[0] != dimension:
                        raise ValueError(f"{item.factor} is a VAF {known[0]} factor")
        return self


# --- Support plan (CTSA 2015 s36(5); REFERENCE.md 4.4 item 6) ---------------------------
SupportType = Literal[
    "IDEOLOGICAL_MENTORING",
    "LIFE_SKILLS_MENTORING",
    "EDUCATION_OR_TRAINING",
    "EMPLOYMENT",
    "HEALTH",
    "MENTAL_HEALTH",
    "HOUSING",
    "SUBSTANCE_MISUSE",
    "FAMILY_SUPPORT",
    "DIVERSIONARY_ACTIVITY",
    "OTHER",
]


class SupportPlanItem(WireModel):
    """Nature of the support, who provides it, and how and when."""

    support_type: SupportType
    description: Narrative
    provider: ShortText
    delivery: Narrative | None = None
    start_date: date | None = None


class ConsentRequestPlan(WireModel):
    """How, when and by whom consent to the support will be requested (s36(5)(a))."""

    how: ShortText
    when: date | None = None
    by_whom: ShortText


class ProposedSupportPlan(WireModel):
    consent_request: ConsentRequestPlan
    items: Annotated[tuple[SupportPlanItem, ...], Field(min_length=1, max_length=32)]


class PartnerReturn(WireModel):
    """A partner's information return (CTSA 2015 s38) with the basis it was given on."""

    provided_by: ShortText
    provider_node: NodeId | None = None
    gateway_ids: Annotated[tuple[GatewayId, ...], Field(min_length=1, max_length=16)]
    # e.g. the id of the consent_record message, when the return relies on consent.
    consent_record_ref: OpaqueRef | None = None
    # e.g. the id of the release message the information came in.
    release_ref: OpaqueRef | None = None


CasePackSectionKind = Literal[
    "REFERRAL_SUMMARY",
    "TRIAGE_SUMMARY",
    "PARTNER_RETURN",
    "VULNERABILITY_ASSESSMENT",
    "OTHER_VULNERABILITIES_AND_SUPPORT",
    "PROPOSED_SUPPORT_PLAN",
    "CONSENT_AND_CAPACITY",
    "REVIEW_HISTORY",
]


class CasePackSection(WireModel):
    """One section of a Channel case pack (REFERENCE.md 4.4), with its own marking.

    A triage summary holds OFFICIAL-SENSITIVE police assessment only, never the
    intelligence services' "sensitive information" (CTSA 2015 s38(4)(b)).
    """

    kind: CasePackSectionKind
    title: ShortText | None = None
    marking: DocumentMarking
    content: SectionText
    partner_return: PartnerReturn | None = None  # PARTNER_RETURN
    assessment: VulnerabilityAssessment | None = None  # VULNERABILITY_ASSESSMENT
    support_plan: ProposedSupportPlan | None = None  # PROPOSED_SUPPORT_PLAN

    @model_validator(mode="after")
    def _detail_for_kind(self) -> CasePackSection:
        for field, kind in (
            ("partner_return", "PARTNER_RETURN"),
            ("assessment", "VULNERABILITY_ASSESSMENT"),
            ("support_plan", "PROPOSED_SUPPORT_PLAN"),
        ):
            if (self.kind == kind) != (getattr(self, field) is not None):
                raise ValueError(f"'{field}' is required for a {kind} section and only for it")
        return self

    def is_sensitive(self) -> bool:
        return self.marking.removeprefix("UK ").startswith("OFFICIAL-SENSITIVE")


class CasePackPayload(WireModel):
    """Payload of ``case_pack``: the sections a panel member needs for a meeting."""

    meeting_date: date
    prepared_by: Professional
    sections: Annotated[tuple[CasePackSection, ...], Field(min_length=1, max_length=64)]

    def needs_sensitive_marking(self) -> bool:
        """Whether the envelope must be OFFICIAL-SENSITIVE: a pack is marked at its highest."""
        return any(section.is_sensitive() for section in self.sections)


PanelOutcome = PanelOutcomeCode


class PanelOutcomePayload(WireModel):
    """Payload of ``panel_outcome``: adopt, not adopt (no further action or refer on), exit.

    A panel may adopt a case before the person has consented: the plan then says how,
    when and by whom consent will be sought (CTSA 2015 s36(5)(a); REFERENCE.md 4.2 stage
    7), and support starts only once it is given. Not adopting needs no further action in
    many cases (SEED 004 para 31), or a referral elsewhere (s36(6)).
    """

    outcome: PanelOutcome
    meeting_date: PastDate
    rationale: Narrative
    # Decided unanimously if possible, else by majority, else by the chair (s37).
    decided_by: Literal["UNANIMOUS", "MAJORITY", "CHAIR"] | None = None
    support_plan: Annotated[tuple[SupportPlanItem, ...], Field(max_length=32)] = ()  # ADOPTED
    # ADOPTED before consent: how, when and by whom consent will be sought.
    consent_request: ConsentRequestPlan | None = None
    # NOT_ADOPTED_NFA: the panel "must consider" referring the person to health or social
    # care services (CTSA 2015 s36(6); REFERENCE.md 4.2 stage 6), and says why not.
    referral_considered: Narrative | None = None
    referred_on_to: Annotated[tuple[OnwardReferral, ...], Field(max_length=10)] = ()
    exit_date: PastDate | None = None  # EXITED
    exit_reason: Literal["SUSCEPTIBILITY_REDUCED", "CONSENT_WITHDRAWN", "OTHER"] | None = None

    @model_validator(mode="after")
    def _fields_for_outcome(self) -> PanelOutcomePayload:
        if (self.outcome == "ADOPTED") != bool(self.support_plan):
            raise ValueError("'support_plan' is required for ADOPTED and only for it")
        if self.consent_request is not None and self.outcome != "ADOPTED":
            raise ValueError("'consent_request' is only for ADOPTED")
        if (self.outcome == "NOT_ADOPTED_NFA") != (self.referral_considered is not None):
            raise ValueError(
                "'referral_considered' is required for NOT_ADOPTED_NFA and only for it: say "
                "why no referral to health or social care services is needed (CTSA 2015 s36(6))"
            )
        if (self.outcome == "NOT_ADOPTED_REFERRED_ON") != bool(self.referred_on_to):
            raise ValueError(
                "'referred_on_to' is required for NOT_ADOPTED_REFERRED_ON and only for it"
            )
        exited = self.outcome == "EXITED"
        if exited != (self.exit_date is not None) or exited != (self.exit_reason is not None):
            raise ValueError(
                "'exit_date' and 'exit_reason' are required for EXITED and only for it"
            )
        return self


class CaseReviewPayload(WireModel):
    """Payload of ``case_review``: the review 6 or 12 months after exit (REFERENCE.md 4.2)."""

    review_point: Literal["6_MONTHS", "12_MONTHS"]
    review_date: PastDate
    reviewed_by: Professional
    notes: Narrative
    outcome: Literal["NO_FURTHER_CONCERNS", "REVIEW_EXTENDED", "REOPENED", "REFERRED_ON"]
    # REVIEW_EXTENDED: the panel may extend reviews up to two years after exit.
    next_review_date: date | None = None
    referred_on_to: Annotated[tuple[OnwardReferral, ...], Field(max_length=10)] = ()

    @model_validator(mode="after")
    def _fields_for_outcome(self) -> CaseReviewPayload:
        extended = self.outcome == "REVIEW_EXTENDED"
        if extended != (self.next_review_date is not None):
            raise ValueError("'next_review_date' is required for REVIEW_EXTENDED and only for it")
        if self.next_review_date is not None and self.next_review_date <= self.review_date:
            raise ValueError("'next_review_date' must be after 'review_date'")
        if (self.outcome == "REFERRED_ON") != bool(self.referred_on_to):
            raise ValueError("'referred_on_to' is required for REFERRED_ON and only for it")
        return self
