"""Synthetic payload examples for tests, demos, benchmarks and documentation.

Deterministic: the same ``seed`` gives the same document. Obviously not real: every free
text says SYNTHETIC, names are made up, telephone numbers are from Ofcom's drama ranges
(07700 900xxx), email addresses are at ``example.org`` (RFC 2606), postcodes use the
unissued ``ZZ`` area and NHS numbers start 999 (the test range) with a valid Modulus 11
check digit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Final

from hub.model.envelope import ConsultedRole
from hub.model.payloads import (
    Address,
    AnswerWithDetail,
    AssessedFactor,
    CaseOpenPayload,
    CasePackPayload,
    CasePackSection,
    CaseReviewPayload,
    CaseSubject,
    ComplexNeeds,
    ConcernOriginator,
    ConsentRecordPayload,
    ConsentRequestPlan,
    Consultation,
    DecisionMaker,
    DecisionOutcome,
    DecisionPayload,
    DescribeConcerns,
    DimensionAssessment,
    DisabilityAnswer,
    EmploymentEducation,
    FormContact,
    FurtherInformation,
    IndividualDetails,
    InformationRequestPayload,
    InformedIndividual,
    IntendedRecipient,
    NationalPreventReferralForm,
    Np07Considerations,
    Occupation,
    OnwardReferral,
    PanelOutcome,
    PanelOutcomePayload,
    ParentOrGuardian,
    PartnerReturn,
    PrimaryLanguage,
    Professional,
    ProposedSupportPlan,
    RelevantDates,
    RequestedCategory,
    SafeguardingConsiderations,
    SubjectIdentifiers,
    SubjectInformed,
    SupportPlanItem,
    TriageOutcome,
    TriageOutcomePayload,
    VulnerabilityAssessment,
    nhs_check_digit,
)

__all__ = [
    "SYNTHETIC_MARKER",
    "synthetic_case_open",
    "synthetic_case_pack",
    "synthetic_case_review",
    "synthetic_consent_record",
    "synthetic_decision",
    "synthetic_information_request",
    "synthetic_nhs_number",
    "synthetic_panel_outcome",
    "synthetic_referral_form",
    "synthetic_triage_outcome",
]

SYNTHETIC_MARKER: Final = "SYNTHETIC"

_FORENAMES: Final = ("Synthia", "Testa", "Fictio", "Exampla", "Placeholda", "Dummie", "Mockton")
_SURNAMES: Final = ("Testperson", "Notareal", "Madeupname", "Samplecase", "Fakename", "Invento")
_TOWNS: Final = ("Testbury", "Exampleton", "Synthford", "Mockchester")


def _pick(options: Sequence[str], seed: int, salt: int = 0) -> str:
    return options[(seed * 7 + salt) % len(options)]


def _text(seed: int, body: str) -> str:
    return f"{SYNTHETIC_MARKER} TEST DATA (seed {seed}), not a real person or case. {body}"


def _phone(seed: int, salt: int) -> str:
    # Ofcom reserves 07700 900000-900999 for drama and examples.
    return f"07700 900{(seed * 31 + salt) % 1000:03d}"


def _email(local: str) -> str:
    return f"{local.lower().replace(' ', '.')}@example.org"


def synthetic_nhs_number(seed: int = 0) -> str:
    """A 999-range NHS number with a valid check digit, different for nearby seeds."""
    body = (seed * 104_729 + 12_345) % 1_000_000
    while True:
        stem = f"999{body:06d}"
        check = nhs_check_digit(stem)
        if check is not None:
            return f"{stem}{check}"
        # This stem's check digit would be 10: such numbers are never issued.
        body = (body + 1) % 1_000_000


def _date_of_birth(seed: int) -> date:
    # Between 1990 and 2014, so some examples are children and some adults.
    return date(1990, 1, 1) + timedelta(days=(seed * 997) % 9000)


def _referral_date(seed: int) -> date:
    return date(2024, 5, 1) + timedelta(days=seed % 28)


def _professional(seed: int, role: str, organisation: str, salt: int) -> Professional:
    name = f"{_pick(_FORENAMES, seed, salt + 3)} {_pick(_SURNAMES, seed, salt + 5)}"
    return Professional(
        name=name,
        role=role,
        organisation=organisation,
        telephone=_phone(seed, salt),
        email=_email(name),
    )


def _address(seed: int, *, current: bool) -> Address:
    return Address(
        lines=(f"{seed % 97 + 1} {SYNTHETIC_MARKER.title()} Street",),
        town=_pick(_TOWNS, seed),
        postcode=f"ZZ{seed % 9 + 1} {seed % 10}ZZ",
        current_residence=current,
    )


def synthetic_referral_form(seed: int = 0) -> NationalPreventReferralForm:
    """A complete National Prevent Referral Form with every section filled in."""
    forenames = _pick(_FORENAMES, seed)
    surname = _pick(_SURNAMES, seed)
    referral_date = _referral_date(seed)
    originator_name = (_pick(_FORENAMES, seed, 1), _pick(_SURNAMES, seed, 2))
    return NationalPreventReferralForm(
        individual=IndividualDetails(
            forenames=forenames,
            surname=surname,
            aliases=(f"{forenames[0]}. {SYNTHETIC_MARKER.title()}",),
            date_of_birth=_date_of_birth(seed),
            gender="Synthetic example gender description",
            addresses=(_address(seed, current=True), _address(seed + 1, current=False)),
            nationality_citizenship="British (SYNTHETIC)",
            citizenship_documentation="SYNTHETIC passport, number not recorded",
            immigration_asylum_status=_text(seed, "No immigration or asylum issues known."),
            primary_language=PrimaryLanguage(
                first_language="English",
                speaks_understands_english=True,
                interpreter_needed=False,
            ),
            contact_numbers=(_phone(seed, 0),),
            email_addresses=(_email(f"{forenames}.{surname}"),),
            other_family_details=_text(seed, "Lives with a parent and one sibling."),
            nhs_number=synthetic_nhs_number(seed),
        ),
        concerns=DescribeConcerns(
            description=_text(seed, "Has repeatedly shared extremist material with peers."),
            how_came_to_notice=_text(seed, "Raised by a clinician during an appointment."),
            specific_event=_text(seed, "A combination of remarks over three appointments."),
            travel_plans=_text(seed, "None known."),
            concerning_contacts=_text(seed, "Mentions an online group weekly."),
            online_activity=_text(seed, "Described videos seen on a video-sharing site."),
            threats_of_violence=_text(seed, "No threats of violence expressed."),
            interest_in_extremism=_text(seed, "Praised a fictional extremist group."),
            other_concerns=_text(seed, "None."),
        ),
        complex_needs=ComplexNeeds(
            description=_text(seed, "Recently bereaved; isolated from friends."),
            indicators=("PERSONAL_EMOTIONAL_RELATIONSHIP_OR_FAMILY_PROBLEMS", "MENTAL_ILL_HEALTH"),
        ),
        further_information=FurtherInformation(
            social_media_details=_text(seed, "Handle not recorded."),
            military_service_number=None,
            other_agencies_or_professionals=_text(seed, "School nurse involved."),
        ),
        person_who_first_identified_concern=ConcernOriginator(
            forenames=originator_name[0],
            surname=originator_name[1],
            professional_role="Practice nurse (SYNTHETIC)",
            organisation="Synthetic Health Centre",
            relationship_to_individual="Treating nurse",
            telephone=_phone(seed, 1),
            email=_email(" ".join(originator_name)),
            wishes_to_remain_anonymous=seed % 2 == 0,
        ),
        person_making_referral=FormContact(
            forenames=_pick(_FORENAMES, seed, 4),
            surname=_pick(_SURNAMES, seed, 6),
            professional_role="Safeguarding locality lead (SYNTHETIC)",
            organisation="Synthetic Integrated Care Board",
            relationship_to_individual="None: referring on behalf of the organisation",
            telephone=_phone(seed, 2),
        ),
        organisational_prevent_contact=None,
        relevant_dates=RelevantDates(
            concern_first_came_to_light=referral_date - timedelta(days=14),
            referral_made_to_prevent=referral_date,
        ),
        safeguarding_considerations=SafeguardingConsiderations(
            disabilities_or_mental_health=DisabilityAnswer(
                answer=True, detail=_text(seed, "Low mood, under GP review."), diagnosed=False
            ),
            discussed_with_safeguarding_lead=AnswerWithDetail(
                answer=True, detail=_text(seed, "Lead agreed a Prevent referral.")
            ),
            informed_individual=InformedIndividual(
                informed=False,
                reason_not_informed=_text(seed, "Telling them could prejudice the assessment."),
            ),
            direct_action_taken=AnswerWithDetail(answer=False),
            discussed_with_other_agencies=AnswerWithDetail(
                answer=True, detail=_text(seed, "School safeguarding lead shares the concern.")
            ),
            risks_to_staff=_text(seed, "No known risks to staff."),
        ),
        employment_education=EmploymentEducation(
            employment_status="IN_EDUCATION",
            current_occupations=(Occupation(occupation="Part-time shop assistant"),),
            previous_occupations=(),
            current_education=("Synthetic Sixth Form College",),
            previous_education=("Example Academy",),
        ),
        consent_not_sought_statement=_text(
            seed,
            "This referral is made without prior consent, relying on DPA 2018 Sch 2 Pt 1 "
            "para 2 and Crime and Disorder Act 1998 s115.",
        ),
    )


def synthetic_information_request(
    seed: int = 0,
    *,
    categories: Sequence[str] = ("mental_health_services", "appointments_non_attendance"),
    urgent: bool = False,
) -> InformationRequestPayload:
    """A complete request (nothing missing for consent NOT_SOUGHT)."""
    return InformationRequestPayload(
        requester=_professional(
            seed, "Prevent case officer (SYNTHETIC)", "Synthetic Counter Terrorism Policing", 10
        ),
        proforma_id="SYNTHETIC-ISR-v1",
        subject=SubjectIdentifiers(
            forenames=_pick(_FORENAMES, seed),
            surname=_pick(_SURNAMES, seed),
            date_of_birth=_date_of_birth(seed),
            nhs_number=synthetic_nhs_number(seed),
            address=_address(seed, current=True),
        ),
        requested=tuple(
            RequestedCategory(
                category=category,
                justification=_text(seed, f"Needed to assess vulnerability ({category})."),
            )
            for category in categories
        ),
        recipients=(
            IntendedRecipient(
                organisation="Synthetic Counter Terrorism Policing",
                role="Prevent case officer",
                node="police.synthetic-ctp",
            ),
        ),
        onward_sharing=(
            IntendedRecipient(
                organisation="Synthetic County Council", role="Channel panel members"
            ),
        ),
        onward_sharing_note=_text(seed, "A summary may go to the Channel panel."),
        purpose=_text(seed, "To decide whether the case should go to a Channel panel."),
        expected_outcome=_text(seed, "A proportionate support offer, or no further action."),
        legal_basis_statement=_text(
            seed, "CTSA 2015 s38 co-operation; UK GDPR Art 6(1)(e); DPA 2018 Sch 1 para 10."
        ),
        narrative=_text(seed, "Referral received from a health partner; see the form."),
        consent_not_sought_reason=_text(seed, "Informing the person may prejudice the outcome."),
        public_interest_statement=_text(
            seed, "Risk of being drawn into terrorism outweighs the duty of confidence."
        ),
        urgency_justification=_text(seed, "Travel is planned this week.") if urgent else None,
    )


def synthetic_decision(
    seed: int = 0,
    *,
    outcome: DecisionOutcome = "APPROVED_PARTIAL",
    consulted: Sequence[ConsultedRole] = (),
) -> DecisionPayload:
    """A decision's reasons; ``consulted`` adds a consultation per role (SEED 004 p69)."""
    approved = outcome in ("APPROVED_FULL", "APPROVED_PARTIAL")
    final = approved or outcome == "REFUSED"
    return DecisionPayload(
        outcome=outcome,
        rationale=_text(seed, "Only the information relevant to the concern is released."),
        decided_by=DecisionMaker(
            name=f"{_pick(_FORENAMES, seed, 20)} {_pick(_SURNAMES, seed, 21)}",
            role="CALDICOTT_GUARDIAN" if outcome == "ESCALATED" else "SAFEGUARDING_LEAD",
            job_title="Designated nurse (SYNTHETIC)",
            organisation="Synthetic Integrated Care Board",
        ),
        missing_items=("RQ-02", "RQ-10") if outcome == "RETURNED_INCOMPLETE" else (),
        escalated_to="CALDICOTT_GUARDIAN" if outcome == "ESCALATED" else None,
        refusal_reason=_text(seed, "Not proportionate to the risk.")
        if outcome == "REFUSED"
        else None,
        np07=Np07Considerations(
            prevents_detects_serious_crime_or_safeguards=True,
            proportionate_to_risk_of_serious_harm=True,
            public_interest_clearly_stated=True,
            notes=_text(seed, "NP-07 questions considered."),
        ),
        public_interest_considerations=_text(seed, "Risk of harm to the person and others."),
        subject_informed=SubjectInformed(
            informed=False, reason_not_informed=_text(seed, "Would prejudice the assessment.")
        )
        if approved
        else None,
        # Documented in the patient record whether or not shared (SEED 004 para 62).
        recorded_in_subject_record=True if final else None,
        subject_record_ref=f"EPR-SYNTH-{seed:06d}" if final else None,
        consultations=tuple(
            Consultation(
                role=role,
                consulted_at=datetime(2024, 6, 3, 10, 0, tzinfo=UTC),
                advice=_text(seed, "Sharing is proportionate; release only what is relevant."),
            )
            for role in consulted
        ),
    )


def synthetic_triage_outcome(
    seed: int = 0, *, outcome: TriageOutcome = "CHANNEL"
) -> TriageOutcomePayload:
    return TriageOutcomePayload(
        outcome=outcome,
        rationale=_text(seed, "POLICE ONLY: assessed susceptibility with ideological drivers."),
        assessed_by=_professional(
            seed, "Prevent officer (SYNTHETIC)", "Synthetic Counter Terrorism Policing", 30
        ),
        triage_date=_referral_date(seed) + timedelta(days=3),
        assessment_framework="PAF",
        risk_summary=_text(seed, "POLICE ONLY: risk summary."),
        deconfliction_note=_text(seed, "POLICE ONLY: no live investigation."),
        signposted_to=(
            OnwardReferral(
                destination="MENTAL_HEALTH_SERVICES",
                organisation="Synthetic Mental Health Trust",
                note=_text(seed, "POLICE ONLY: contact named in the case file."),
            ),
        )
        if outcome == "SIGNPOSTED"
        else (),
        referrer_next_steps=_text(seed, "Continue usual support; report any new concern."),
    )


def _case_subject(seed: int) -> CaseSubject:
    return CaseSubject(
        forenames=_pick(_FORENAMES, seed),
        surname=_pick(_SURNAMES, seed),
        date_of_birth=_date_of_birth(seed),
        nhs_number=synthetic_nhs_number(seed),
        address=_address(seed, current=True),
        gender="Synthetic example gender description",
        primary_language=PrimaryLanguage(first_language="English"),
        parents_or_guardians=(_parent(seed),),
    )


def _parent(seed: int) -> ParentOrGuardian:
    return ParentOrGuardian(
        name=f"{_pick(_FORENAMES, seed, 40)} {_pick(_SURNAMES, seed)}",
        relationship="Mother (SYNTHETIC)",
        parental_responsibility=True,
        telephone=_phone(seed, 40),
    )


def synthetic_case_open(seed: int = 0) -> CaseOpenPayload:
    return CaseOpenPayload(
        subject=_case_subject(seed),
        case_summary=_text(seed, "Referred by health; police triage recommended Channel."),
        referral_date=_referral_date(seed),
        meeting_date=_referral_date(seed) + timedelta(days=21),
        coordinator=_professional(
            seed, "Channel coordinator (SYNTHETIC)", "Synthetic County Council", 50
        ),
    )


def synthetic_consent_record(seed: int = 0, *, by_parent: bool = False) -> ConsentRecordPayload:
    decided_at = datetime(2024, 6, 1, 10, 30, tzinfo=UTC) + timedelta(days=seed % 28)
    return ConsentRecordPayload(
        outcome="CONSENTED",
        given_by="PARENT_OR_GUARDIAN" if by_parent else "SUBJECT",
        parent_or_guardian=_parent(seed) if by_parent else None,
        consent_to=("CHANNEL_SUPPORT", "INFORMATION_SHARING"),
        method="IN_PERSON_WRITTEN",
        decided_at=decided_at,
        sought_by=_professional(
            seed, "Channel coordinator (SYNTHETIC)", "Synthetic County Council", 50
        ),
        information_given=_text(
            seed, "Explained Channel's aims, what support involves, who will share what."
        ),
        right_to_withdraw_explained=True,
    )


def _support_plan_item(seed: int) -> SupportPlanItem:
    return SupportPlanItem(
        support_type="IDEOLOGICAL_MENTORING",
        description=_text(seed, "Weekly sessions with an intervention provider."),
        provider="Synthetic Intervention Provider Ltd",
        delivery=_text(seed, "In person at the college, weekly for twelve weeks."),
    )


def synthetic_case_pack(seed: int = 0) -> CasePackPayload:
    meeting = _referral_date(seed) + timedelta(days=21)
    sensitive = "OFFICIAL-SENSITIVE - PERSONAL DATA"
    assessor = _professional(
        seed, "Channel coordinator (SYNTHETIC)", "Synthetic County Council", 50
    )
    return CasePackPayload(
        meeting_date=meeting,
        prepared_by=assessor,
        sections=(
            CasePackSection(
                kind="REFERRAL_SUMMARY",
                marking=sensitive,
                content=_text(seed, "Minimised summary of the referral form."),
            ),
            CasePackSection(
                kind="TRIAGE_SUMMARY",
                marking=sensitive,
                content=_text(seed, "Police triage recommended Channel."),
            ),
            CasePackSection(
                kind="PARTNER_RETURN",
                marking=sensitive,
                content=_text(seed, "Health partner return: attendance summary."),
                partner_return=PartnerReturn(
                    provided_by="Synthetic Integrated Care Board",
                    provider_node="health.synthetic-icb",
                    gateway_ids=("CTSA2015-s38", "UKGDPR-A6-1e"),
                    consent_record_ref=f"consent-{seed:04d}",
                ),
            ),
            CasePackSection(
                kind="VULNERABILITY_ASSESSMENT",
                marking=sensitive,
                content=_text(seed, "Assessment against engagement, intent and capability."),
                assessment=VulnerabilityAssessment(
                    framework="VAF",
                    assessed_on=meeting - timedelta(days=2),
                    assessed_by=assessor,
                    engagement=DimensionAssessment(
                        summary=_text(seed, "Some engagement."),
                        factors=(
                            AssessedFactor(factor="E03", present=True),
                            AssessedFactor(factor="E11", present=True),
                        ),
                    ),
                    intent=DimensionAssessment(
                        summary=_text(seed, "No intent seen."),
                        factors=(AssessedFactor(factor="I02", present=False),),
                    ),
                    capability=DimensionAssessment(summary=_text(seed, "No capability seen.")),
                ),
            ),
            CasePackSection(
                kind="PROPOSED_SUPPORT_PLAN",
                marking="OFFICIAL",
                content=_text(seed, "Proposed mentoring support."),
                support_plan=ProposedSupportPlan(
                    consent_request=ConsentRequestPlan(
                        how="Home visit with a parent present",
                        when=meeting + timedelta(days=7),
                        by_whom="Channel coordinator",
                    ),
                    items=(_support_plan_item(seed),),
                ),
            ),
        ),
    )


def synthetic_panel_outcome(
    seed: int = 0, *, outcome: PanelOutcome = "ADOPTED"
) -> PanelOutcomePayload:
    meeting = _referral_date(seed) + timedelta(days=21)
    return PanelOutcomePayload(
        outcome=outcome,
        meeting_date=meeting,
        rationale=_text(seed, "Panel decision recorded."),
        decided_by="UNANIMOUS",
        support_plan=(_support_plan_item(seed),) if outcome == "ADOPTED" else (),
        # Adopted before consent: how it will be sought (CTSA 2015 s36(5)(a)).
        consent_request=ConsentRequestPlan(
            how="In person with the allocated mentor", by_whom="Channel coordinator"
        )
        if outcome == "ADOPTED"
        else None,
        referral_considered=_text(
            seed, "Referral to health or social care considered: not needed; GP aware."
        )
        if outcome == "NOT_ADOPTED_NFA"
        else None,
        referred_on_to=(
            OnwardReferral(destination="EARLY_HELP", organisation="Synthetic Early Help"),
        )
        if outcome == "NOT_ADOPTED_REFERRED_ON"
        else (),
        exit_date=meeting if outcome == "EXITED" else None,
        exit_reason="SUSCEPTIBILITY_REDUCED" if outcome == "EXITED" else None,
    )


def synthetic_case_review(seed: int = 0) -> CaseReviewPayload:
    return CaseReviewPayload(
        review_point="6_MONTHS",
        review_date=date(2024, 12, 1) + timedelta(days=seed % 28),
        reviewed_by=_professional(
            seed, "Channel panel chair (SYNTHETIC)", "Synthetic County Council", 60
        ),
        notes=_text(seed, "No new concerns since exit."),
        outcome="NO_FURTHER_CONCERNS",
    )
