"""Encrypted payload models: the referral form, requests, decisions, triage, Channel case.

Documents are parsed as a receiving node parses a decrypted payload: ``model_validate_json``
over the bytes, with "today" fixed through the validation context.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, TypeVar, get_args

import pytest
from pydantic import ValidationError

from hub.model import SCHEMA_MODELS, ScopeItem, WireModel
from hub.model import examples as ex
from hub.model.payloads import (
    CONSENT_PRESENT_STATES,
    REQUEST_CHECKLIST,
    TODAY_CONTEXT_KEY,
    VAF_FACTORS,
    CaseOpenPayload,
    CasePackPayload,
    CasePackSection,
    CaseReviewPayload,
    ChecklistItemId,
    ConsentRecordPayload,
    ConsentState,
    DecisionOutcome,
    DecisionPayload,
    IndividualDetails,
    InformationRequestPayload,
    NationalPreventReferralForm,
    PanelOutcome,
    PanelOutcomePayload,
    ReferrerFeedback,
    RequestedCategory,
    SafeguardingConsiderations,
    SubjectIdentifiers,
    TriageOutcome,
    TriageOutcomePayload,
    feedback_for_referrer,
    is_valid_nhs_number,
    missing_items,
    normalise_nhs_number,
)

M = TypeVar("M", bound=WireModel)

TODAY = date(2025, 6, 30)
CONTEXT = {TODAY_CONTEXT_KEY: TODAY}


def _doc(model: WireModel) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(model.model_dump_json())
    return loaded


def _parse(model: type[M], document: dict[str, Any]) -> M:
    return model.model_validate_json(json.dumps(document), context=CONTEXT)


def _changed(model: WireModel, change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    document = copy.deepcopy(_doc(model))
    change(document)
    return document


def _refused(model: type[WireModel], document: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        _parse(model, document)


# --- NHS number (REFERENCE.md 6.1) ------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["9434765919", "943 476 5919", "9434765870", "943 476 5870", "4010232137"]
)
def test_valid_nhs_numbers(text: str) -> None:
    assert is_valid_nhs_number(text)
    assert normalise_nhs_number(text) == text.replace(" ", "")


@pytest.mark.parametrize(
    "text",
    [
        "9434765918",  # wrong check digit
        "9434765910",
        "943476591",  # nine digits
        "94347659190",  # eleven digits
        "943-476-5919",  # only spaces may group the digits
        " 9434765919",
        "943  476 5919",
        "94347 65919",
        "\uff19\uff14\uff13\uff14\uff17\uff16\uff15\uff19\uff11\uff19",  # full-width digits
        "abcdefghij",
        "",
    ],
)
def test_invalid_nhs_numbers(text: str) -> None:
    assert not is_valid_nhs_number(text)
    with pytest.raises(ValueError, match="not a valid NHS number"):
        normalise_nhs_number(text)


def test_worked_example_of_the_check_digit() -> None:
    # 9*10+4*9+3*8+4*7+7*6+6*5+5*4+9*3+1*2 = 299; 299 mod 11 = 2; 11 - 2 = 9.
    assert [is_valid_nhs_number(f"943476591{d}") for d in range(10)] == [d == 9 for d in range(10)]


def test_a_check_digit_of_ten_means_no_number_is_valid() -> None:
    # 1*10 + 1*2 = 12; 12 mod 11 = 1; 11 - 1 = 10: never issued, whatever digit 10 is.
    assert not any(is_valid_nhs_number(f"100000001{d}") for d in range(10))
    # A check digit of 11 becomes 0: 9434765870 sums to 308 = 28 * 11.
    assert is_valid_nhs_number("9434765870")


def test_the_nhs_number_field_normalises_and_checks() -> None:
    subject = SubjectIdentifiers.model_validate_json(
        '{"surname": "Testperson", "nhs_number": "943 476 5919"}', context=CONTEXT
    )
    assert subject.nhs_number == "9434765919"
    with pytest.raises(ValidationError, match="not a valid NHS number"):
        SubjectIdentifiers.model_validate_json('{"nhs_number": "943 476 5918"}')
    with pytest.raises(ValidationError, match="should match pattern"):
        SubjectIdentifiers.model_validate_json('{"nhs_number": "943-476-5919"}')
    with pytest.raises(ValidationError, match="should be a valid string"):
        SubjectIdentifiers.model_validate_json('{"nhs_number": 9434765919}')


# --- National Prevent Referral Form -----------------------------------------------------


def test_the_form_has_every_section_of_the_national_form() -> None:
    # Seed 004 appendices 3 and 6, in the form's order; REFERENCE.md 4.6.
    assert list(NationalPreventReferralForm.model_fields) == [
        "individual",
        "concerns",
        "complex_needs",
        "further_information",
        "person_who_first_identified_concern",
        "person_making_referral",
        "organisational_prevent_contact",
        "relevant_dates",
        "safeguarding_considerations",
        "employment_education",
        "consent_not_sought_statement",
    ]
    assert {
        "forenames",
        "surname",
        "date_of_birth",
        "approx_age",
        "gender",
        "addresses",
        "nationality_citizenship",
        "citizenship_documentation",
        "immigration_asylum_status",
        "primary_language",
        "contact_numbers",
        "email_addresses",
        "other_family_details",
    } <= set(IndividualDetails.model_fields)
    assert set(SafeguardingConsiderations.model_fields) >= {
        "disabilities_or_mental_health",
        "discussed_with_safeguarding_lead",
        "informed_individual",
        "direct_action_taken",
        "discussed_with_other_agencies",
    }


def test_a_full_synthetic_form_round_trips_through_json() -> None:
    form = ex.synthetic_referral_form(seed=5)
    text = form.model_dump_json()
    assert NationalPreventReferralForm.model_validate_json(text, context=CONTEXT) == form
    # Every optional section is filled in, so the round trip covers the whole form.
    document = json.loads(text)
    for section in ("complex_needs", "further_information", "person_making_referral"):
        assert document[section] is not None


def test_a_minimal_form_has_the_required_sections_only() -> None:
    form = _parse(
        NationalPreventReferralForm,
        {
            "individual": {"surname": "Notareal"},
            "concerns": {"description": "SYNTHETIC concern."},
            "person_who_first_identified_concern": {
                "forenames": "Testa",
                "surname": "Samplecase",
                "professional_role": "Nurse",
                "organisation": "Synthetic Trust",
                "email": "testa@example.org",
                "wishes_to_remain_anonymous": True,
            },
            "relevant_dates": {"referral_made_to_prevent": "2025-06-01"},
            "safeguarding_considerations": {
                "informed_individual": {"informed": True, "response": "SYNTHETIC: agreed."}
            },
        },
    )
    assert form.person_making_referral is None
    assert form.individual.date_of_birth is None


def test_a_future_date_of_birth_is_refused() -> None:
    form = ex.synthetic_referral_form()
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    document = _changed(form, lambda d: d["individual"].update(date_of_birth=tomorrow))
    _refused(NationalPreventReferralForm, document, "must not be in the future")
    # Today itself is allowed (the order check against the referral date then applies).
    subject = SubjectIdentifiers.model_validate_json(
        json.dumps({"surname": "Notareal", "date_of_birth": TODAY.isoformat()}), context=CONTEXT
    )
    assert subject.date_of_birth == TODAY


def test_without_a_context_today_is_the_clock_date() -> None:
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    with pytest.raises(ValidationError, match="must not be in the future"):
        SubjectIdentifiers.model_validate_json(json.dumps({"date_of_birth": tomorrow}))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["individual"].update(date_of_birth="2024-05-20"),
            "before the date of birth",
        ),
        (
            lambda d: d["relevant_dates"].update(
                concern_first_came_to_light="2024-06-01", referral_made_to_prevent="2024-05-01"
            ),
            "cannot come to light after the referral",
        ),
        (
            lambda d: d["relevant_dates"].update(referral_made_to_prevent="2099-01-01"),
            "must not be in the future",
        ),
        (lambda d: d["individual"].update(approx_age=17), "only for when the date of birth"),
        (lambda d: d["individual"].update(forenames=None, surname=None), "forename"),
        (lambda d: d["individual"].update(surname="   "), "at least 1 character"),
        (lambda d: d["individual"].update(nhs_number="9434765918"), "not a valid NHS number"),
        (
            lambda d: d["individual"]["addresses"][1].update(current_residence=True),
            "at most one address",
        ),
        (
            lambda d: d["person_who_first_identified_concern"].update(telephone=None, email=None),
            "contact telephone number or email",
        ),
        (
            lambda d: d["person_who_first_identified_concern"].pop("wishes_to_remain_anonymous"),
            "wishes_to_remain_anonymous",
        ),
        (
            lambda d: d["safeguarding_considerations"]["informed_individual"].update(
                reason_not_informed=None
            ),
            "say why the individual was not told",
        ),
        (
            lambda d: d["safeguarding_considerations"]["discussed_with_safeguarding_lead"].update(
                detail=None
            ),
            "a 'yes' answer needs its detail",
        ),
        (lambda d: d["complex_needs"].update(indicators=["AUTISM", "AUTISM"]), "must not repeat"),
        (
            lambda d: d["complex_needs"].update(indicators=["ASTROLOGY"]),
            "Input should be 'VICTIM_OF",
        ),
        (
            lambda d: d["individual"].update(email_addresses=["not-an-email"]),
            "should match pattern",
        ),
        (lambda d: d.pop("concerns"), "concerns"),
    ],
)
def test_invalid_forms_are_refused(
    change: Callable[[dict[str, Any]], object], message: str
) -> None:
    form = ex.synthetic_referral_form(seed=0)
    _refused(NationalPreventReferralForm, _changed(form, change), message)


@pytest.mark.parametrize(
    "path",
    [(), ("individual",), ("concerns",), ("safeguarding_considerations", "informed_individual")],
)
def test_unknown_fields_are_refused_at_every_level(path: tuple[str, ...]) -> None:
    document = _doc(ex.synthetic_referral_form())
    target = document
    for key in path:
        target = target[key]
    target["religion"] = "not a field of the form"
    with pytest.raises(ValidationError) as caught:
        _parse(NationalPreventReferralForm, document)
    assert [e["type"] for e in caught.value.errors()] == ["extra_forbidden"]


def test_free_text_is_stripped() -> None:
    document = _changed(
        ex.synthetic_referral_form(), lambda d: d["individual"].update(surname="  Notareal  ")
    )
    assert _parse(NationalPreventReferralForm, document).individual.surname == "Notareal"


# --- Information request and its checklist (REFERENCE.md 3.1) ---------------------------


def test_the_checklist_names_every_item_of_reference_3_1() -> None:
    assert tuple(REQUEST_CHECKLIST) == get_args(ChecklistItemId)
    assert tuple(REQUEST_CHECKLIST) == tuple(f"RQ-{n:02d}" for n in range(1, 14))


def test_a_complete_request_misses_nothing() -> None:
    request = ex.synthetic_information_request()
    assert missing_items(request, "NOT_SOUGHT") == ()
    assert missing_items(request, "OBTAINED") == ()
    assert _parse(InformationRequestPayload, _doc(request)) == request


def test_an_empty_request_misses_every_payload_item() -> None:
    assert missing_items(InformationRequestPayload(), "UNKNOWN") == (
        "RQ-01",
        "RQ-02",
        "RQ-04",
        "RQ-05",
        "RQ-06",
        "RQ-07",
        "RQ-08",
        "RQ-09",
        "RQ-10",
    )


@pytest.mark.parametrize("state", get_args(ConsentState))
def test_the_public_interest_statement_is_needed_without_consent(state: ConsentState) -> None:
    request = ex.synthetic_information_request().model_copy(
        update={"public_interest_statement": None}
    )
    assert ("RQ-10" in missing_items(request, state)) == (state not in CONSENT_PRESENT_STATES)


def test_not_seeking_consent_needs_a_reason() -> None:
    request = ex.synthetic_information_request().model_copy(
        update={"consent_not_sought_reason": None}
    )
    assert missing_items(request, "NOT_SOUGHT") == ("RQ-09",)
    assert missing_items(request, "REFUSED") == ()
    assert missing_items(request, "UNKNOWN") == ("RQ-09",)


def test_urgency_and_public_task_items() -> None:
    request = ex.synthetic_information_request()
    assert missing_items(request, "OBTAINED", urgency="urgent") == ("RQ-11",)
    assert (
        missing_items(ex.synthetic_information_request(urgent=True), "OBTAINED", urgency="urgent")
        == ()
    )
    assert missing_items(request, "OBTAINED", public_task_statement_needed=True) == ("RQ-12",)


@pytest.mark.parametrize(
    ("update", "item"),
    [
        ({"requester": None}, "RQ-01"),
        ({"proforma_id": None}, "RQ-02"),
        ({"subject": SubjectIdentifiers(surname="Notareal")}, "RQ-04"),
        ({"subject": SubjectIdentifiers(date_of_birth=date(2000, 1, 1))}, "RQ-04"),
        ({"requested": ()}, "RQ-05"),
        ({"requested": (RequestedCategory(category="medication"),)}, "RQ-05"),
        ({"recipients": ()}, "RQ-06"),
        ({"expected_outcome": None}, "RQ-07"),
        ({"legal_basis_statement": None}, "RQ-08"),
    ],
)
def test_each_missing_item_is_named(update: dict[str, Any], item: str) -> None:
    request = ex.synthetic_information_request().model_copy(update=update)
    assert missing_items(request, "NOT_SOUGHT") == (item,)


def test_a_requester_without_contact_is_incomplete() -> None:
    request = ex.synthetic_information_request()
    assert request.requester is not None
    requester = request.requester.model_copy(update={"telephone": None, "email": None})
    assert missing_items(request.model_copy(update={"requester": requester}), "OBTAINED") == (
        "RQ-01",
    )


def test_categories_match_the_envelope_scope_one_to_one() -> None:
    request = ex.synthetic_information_request(categories=("medication", "ae_attendance"))
    assert request.categories() == ("medication", "ae_attendance")
    scope = [
        ScopeItem(category="ae_attendance", justification_present=True),
        ScopeItem(category="medication", justification_present=True),
    ]
    assert request.scope_mismatches(scope) == ()
    assert request.scope_mismatches(scope[:1]) == (
        "medication: in the payload but not the envelope scope",
    )
    assert request.scope_mismatches(
        [*scope, ScopeItem(category="housing", justification_present=True)]
    ) == ("housing: in the envelope scope but not the payload",)
    assert request.scope_mismatches(
        [scope[0], ScopeItem(category="medication", justification_present=False)]
    ) == ("medication: justification_present does not match",)
    assert request.scope_mismatches(
        [
            scope[0],
            ScopeItem(
                category="medication", justification_present=True, extension_reason_present=True
            ),
        ]
    ) == ("medication: extension_reason_present does not match",)
    assert "ae_attendance: named more than once in the envelope scope" in (
        request.scope_mismatches([*scope, scope[0]])
    )


def test_a_category_is_requested_once() -> None:
    document = _changed(
        ex.synthetic_information_request(categories=("medication", "medication_x")),
        lambda d: d["requested"][1].update(category="medication"),
    )
    _refused(InformationRequestPayload, document, "requested categories must not repeat")


def test_a_whole_record_category_id_is_refused_by_shape() -> None:
    document = _changed(
        ex.synthetic_information_request(),
        lambda d: d["requested"][0].update(category="Whole Record"),
    )
    _refused(InformationRequestPayload, document, "should match pattern")


# --- Decision ---------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", get_args(DecisionOutcome))
def test_every_outcome_has_a_valid_example(outcome: DecisionOutcome) -> None:
    decision = ex.synthetic_decision(outcome=outcome)
    assert _parse(DecisionPayload, _doc(decision)) == decision


def test_the_rationale_is_mandatory_and_not_blank() -> None:
    decision = ex.synthetic_decision()
    _refused(DecisionPayload, _changed(decision, lambda d: d.pop("rationale")), "rationale")
    _refused(
        DecisionPayload,
        _changed(decision, lambda d: d.update(rationale=" \n ")),
        "at least 1 character",
    )


@pytest.mark.parametrize(
    ("outcome", "change", "message"),
    [
        ("RETURNED_INCOMPLETE", lambda d: d.update(missing_items=[]), "RETURNED_INCOMPLETE needs"),
        ("APPROVED_FULL", lambda d: d.update(missing_items=["RQ-02"]), "for RETURNED_INCOMPLETE"),
        (
            "RETURNED_INCOMPLETE",
            lambda d: d.update(missing_items=["RQ-14"]),
            "Input should be 'RQ-01'",
        ),
        (
            "RETURNED_INCOMPLETE",
            lambda d: d.update(missing_items=["RQ-02", "RQ-02"]),
            "must not repeat",
        ),
        ("ESCALATED", lambda d: d.update(escalated_to=None), "'escalated_to' is required"),
        (
            "ESCALATED",
            lambda d: d.update(escalated_to="CHANNEL_CHAIR"),
            "Input should be 'CALDICOTT",
        ),
        ("REFUSED", lambda d: d.update(escalated_to="DPO"), "'escalated_to' is required"),
        ("REFUSED", lambda d: d.update(refusal_reason=None), "'refusal_reason' is required"),
        ("APPROVED_PARTIAL", lambda d: d.update(subject_informed=None), "whether the subject"),
        (
            "APPROVED_PARTIAL",
            lambda d: d["subject_informed"].update(reason_not_informed=None),
            "say why the subject was not told",
        ),
    ],
)
def test_decision_fields_follow_the_outcome(
    outcome: DecisionOutcome, change: Callable[[dict[str, Any]], object], message: str
) -> None:
    decision = ex.synthetic_decision(outcome=outcome)
    _refused(DecisionPayload, _changed(decision, change), message)


def test_a_decision_records_its_consultations_and_patient_record_entry() -> None:
    """SEED 004 para 69 (consultation with the Caldicott Guardian and/or IG officer) and
    para 62 (documented in the patient record); Appendix 4a: "the decision and rationale
    must be documented"."""
    decision = ex.synthetic_decision(outcome="REFUSED", consulted=("CALDICOTT_GUARDIAN",))
    parsed = _parse(DecisionPayload, _doc(decision))
    assert parsed.consulted_roles() == frozenset({"CALDICOTT_GUARDIAN"})
    assert parsed.consultations[0].advice
    assert parsed.recorded_in_subject_record is True
    assert parsed.subject_record_ref == "EPR-SYNTH-000000"
    _refused(
        DecisionPayload,
        _changed(decision, lambda d: d.update(recorded_in_subject_record=False)),
        "'subject_record_ref' is for a decision recorded",
    )
    _refused(
        DecisionPayload,
        _changed(decision, lambda d: d["consultations"][0].update(role="PANEL_MEMBER")),
        "Input should be 'CALDICOTT_GUARDIAN'",
    )
    _refused(
        DecisionPayload,
        _changed(decision, lambda d: d["consultations"][0].pop("advice")),
        "advice",
    )
    _refused(
        DecisionPayload,
        _changed(
            decision, lambda d: d["consultations"][0].update(consulted_at="2024-06-03T10:00:00")
        ),
        "time zone",
    )


def test_returned_incomplete_may_say_what_is_missing_in_words() -> None:
    document = _changed(
        ex.synthetic_decision(outcome="RETURNED_INCOMPLETE"),
        lambda d: d.update(missing_items=[], missing_detail="SYNTHETIC: the period is unclear."),
    )
    assert _parse(DecisionPayload, document).missing_items == ()


# --- Triage and the referrer's feedback -------------------------------------------------

POLICE_ONLY_FIELDS = {
    "rationale",
    "assessed_by",
    "triage_date",
    "assessment_framework",
    "risk_summary",
    "deconfliction_note",
}


def test_referrer_feedback_has_no_police_only_fields() -> None:
    assert set(TriageOutcomePayload.model_fields) >= POLICE_ONLY_FIELDS
    assert set(ReferrerFeedback.model_fields) == {"outcome", "next_steps", "signposted_to"}
    assert not POLICE_ONLY_FIELDS & set(ReferrerFeedback.model_fields)


@pytest.mark.parametrize("outcome", get_args(TriageOutcome))
def test_feedback_carries_no_police_text(outcome: TriageOutcome) -> None:
    triage = ex.synthetic_triage_outcome(seed=4, outcome=outcome)
    assert _parse(TriageOutcomePayload, _doc(triage)) == triage
    feedback = feedback_for_referrer(triage)
    text = feedback.model_dump_json()
    # The example marks every police-only text, including the signposting note.
    assert "POLICE ONLY" in triage.model_dump_json()
    assert "POLICE ONLY" not in text
    assert triage.assessed_by.name not in text
    assert feedback.next_steps == triage.referrer_next_steps


def test_feedback_categories_hide_police_led_cases() -> None:
    channel = feedback_for_referrer(ex.synthetic_triage_outcome(outcome="CHANNEL"))
    police_led = feedback_for_referrer(ex.synthetic_triage_outcome(outcome="POLICE_LED"))
    assert channel == police_led
    assert channel.outcome == "PREVENT_MANAGEMENT_ONGOING"
    signposted = feedback_for_referrer(ex.synthetic_triage_outcome(outcome="SIGNPOSTED"))
    assert signposted.outcome == "SIGNPOSTED_TO_OTHER_SUPPORT"
    assert signposted.signposted_to == ("MENTAL_HEALTH_SERVICES",)
    assert feedback_for_referrer(ex.synthetic_triage_outcome(outcome="NFA")).signposted_to == ()


def test_feedback_has_default_next_steps() -> None:
    triage = ex.synthetic_triage_outcome(outcome="NFA").model_copy(
        update={"referrer_next_steps": None}
    )
    feedback = feedback_for_referrer(triage)
    assert feedback.outcome == "NO_FURTHER_PREVENT_ACTION"
    assert feedback.next_steps.startswith("No further Prevent action")


def test_signposting_names_where_to() -> None:
    triage = ex.synthetic_triage_outcome(outcome="SIGNPOSTED")
    _refused(
        TriageOutcomePayload,
        _changed(triage, lambda d: d.update(signposted_to=[])),
        "SIGNPOSTED needs where to",
    )


# --- Channel case -----------------------------------------------------------------------


def test_every_case_pack_section_carries_a_marking() -> None:
    pack = ex.synthetic_case_pack()
    assert {s.kind for s in pack.sections} >= {
        "REFERRAL_SUMMARY",
        "TRIAGE_SUMMARY",
        "PARTNER_RETURN",
        "VULNERABILITY_ASSESSMENT",
        "PROPOSED_SUPPORT_PLAN",
    }
    assert all(section.marking for section in pack.sections)
    assert "marking" in CasePackSection.model_json_schema()["required"]
    _refused(
        CasePackPayload,
        _changed(pack, lambda d: d["sections"][0].pop("marking")),
        "marking",
    )


@pytest.mark.parametrize(
    ("marking", "accepted"),
    [
        ("OFFICIAL", True),
        ("OFFICIAL-SENSITIVE", True),
        ("OFFICIAL-SENSITIVE - PERSONAL DATA", True),
        ("UK OFFICIAL-SENSITIVE - RECIPIENTS ONLY", True),
        ("SECRET", False),
        ("TOP SECRET - PERSONAL DATA", False),
        ("official-sensitive", False),
        ("", False),
    ],
)
def test_section_markings_stay_at_official(marking: str, accepted: bool) -> None:
    pack = ex.synthetic_case_pack()
    document = _changed(pack, lambda d: d["sections"][0].update(marking=marking))
    if accepted:
        assert _parse(CasePackPayload, document).sections[0].marking == marking
    else:
        _refused(CasePackPayload, document, "should match pattern")


def test_a_pack_is_marked_at_its_highest_section() -> None:
    pack = ex.synthetic_case_pack()
    assert pack.needs_sensitive_marking()
    official = tuple(s.model_copy(update={"marking": "OFFICIAL"}) for s in pack.sections)
    assert not pack.model_copy(update={"sections": official}).needs_sensitive_marking()


@pytest.mark.parametrize(
    ("index", "change", "message"),
    [
        (2, lambda s: s.update(partner_return=None), "'partner_return' is required"),
        (0, lambda s: s.update(kind="PARTNER_RETURN"), "'partner_return' is required"),
        (3, lambda s: s.update(assessment=None), "'assessment' is required"),
        (4, lambda s: s.update(support_plan=None), "'support_plan' is required"),
        (2, lambda s: s["partner_return"].update(gateway_ids=[]), "at least 1 item"),
        (
            3,
            lambda s: s["assessment"]["intent"]["factors"].append({"factor": "E01"}),
            "E01 is a VAF engagement factor",
        ),
        (
            3,
            lambda s: s["assessment"]["capability"]["factors"].append({"factor": "C99"}),
            "C99 is not a VAF factor",
        ),
        (
            3,
            lambda s: s["assessment"]["engagement"]["factors"].append({"factor": "E03"}),
            "must not repeat",
        ),
    ],
)
def test_section_detail_follows_its_kind(
    index: int, change: Callable[[dict[str, Any]], object], message: str
) -> None:
    pack = ex.synthetic_case_pack()
    _refused(CasePackPayload, _changed(pack, lambda d: change(d["sections"][index])), message)


def test_other_frameworks_name_their_own_factors() -> None:
    def to_paf(document: dict[str, Any]) -> None:
        assessment = document["sections"][3]["assessment"]
        assessment["framework"] = "PAF"
        assessment["intent"]["factors"].append({"factor": "PAF.INTENT-2"})

    assert _parse(CasePackPayload, _changed(ex.synthetic_case_pack(), to_paf))


def test_the_vaf_has_22_factors() -> None:
    dimensions = [dimension for dimension, _ in VAF_FACTORS.values()]
    assert (
        dimensions.count("engagement"),
        dimensions.count("intent"),
        dimensions.count("capability"),
    ) == (13, 6, 3)


def test_consent_by_a_parent_needs_parental_responsibility() -> None:
    record = ex.synthetic_consent_record(by_parent=True)
    assert _parse(ConsentRecordPayload, _doc(record)) == record
    _refused(
        ConsentRecordPayload,
        _changed(record, lambda d: d["parent_or_guardian"].update(parental_responsibility=False)),
        "parental responsibility",
    )
    _refused(
        ConsentRecordPayload,
        _changed(record, lambda d: d.update(parent_or_guardian=None)),
        "names them",
    )
    _refused(
        ConsentRecordPayload,
        _changed(record, lambda d: d.update(given_by="SUBJECT")),
        "only for consent given by them",
    )


def test_withdrawal_is_timed_after_consent() -> None:
    record = ex.synthetic_consent_record()
    withdrawn = _changed(
        record,
        lambda d: d.update(
            outcome="WITHDRAWN", withdrawn_at="2024-07-01T09:00:00Z", withdrawal_note="SYNTHETIC"
        ),
    )
    assert _parse(ConsentRecordPayload, withdrawn).withdrawn_at is not None
    _refused(
        ConsentRecordPayload,
        _changed(record, lambda d: d.update(outcome="WITHDRAWN")),
        "'withdrawn_at' is required",
    )
    _refused(
        ConsentRecordPayload,
        _changed(
            record, lambda d: d.update(outcome="WITHDRAWN", withdrawn_at="2024-01-01T00:00:00Z")
        ),
        "cannot be withdrawn before",
    )
    _refused(
        ConsentRecordPayload,
        _changed(record, lambda d: d.update(decided_at="2024-06-01T10:30:00")),
        "time zone",
    )


@pytest.mark.parametrize("outcome", get_args(PanelOutcome))
def test_panel_outcomes(outcome: PanelOutcome) -> None:
    panel = ex.synthetic_panel_outcome(outcome=outcome)
    assert _parse(PanelOutcomePayload, _doc(panel)) == panel
    others: dict[str, Any] = {
        "support_plan": [],
        "referred_on_to": [],
        "exit_date": None,
        "exit_reason": None,
        "referral_considered": None,
    }
    _refused(
        PanelOutcomePayload,
        _changed(panel, lambda d: d.update(others)),
        "required for",
    )


def test_not_adopted_with_no_further_action_carries_no_plan_referral_or_exit() -> None:
    """SEED 004 para 31: "In many cases, no further action will be required"; REFERENCE
    4.2 stage 6. The outcome carries no plan, onward referral or exit."""
    panel = ex.synthetic_panel_outcome(outcome="NOT_ADOPTED_NFA")
    assert (panel.support_plan, panel.referred_on_to, panel.exit_date) == ((), (), None)
    plan = _doc(ex.synthetic_panel_outcome(outcome="ADOPTED"))["support_plan"]
    _refused(
        PanelOutcomePayload,
        _changed(panel, lambda d: d.update(support_plan=plan)),
        "'support_plan' is required for ADOPTED and only for it",
    )
    _refused(
        PanelOutcomePayload,
        _changed(panel, lambda d: d.update(referred_on_to=[{"destination": "EARLY_HELP"}])),
        "required for NOT_ADOPTED_REFERRED_ON and only",
    )


def test_no_further_action_records_that_onward_referral_was_considered() -> None:
    """CTSA 2015 s36(6) (REFERENCE 4.2 stage 6): a panel that does not adopt must consider
    referring the person to health or social care services; the record says why not."""
    panel = ex.synthetic_panel_outcome(outcome="NOT_ADOPTED_NFA")
    assert panel.referral_considered is not None
    _refused(
        PanelOutcomePayload,
        _changed(panel, lambda d: d.update(referral_considered=None)),
        "'referral_considered' is required for NOT_ADOPTED_NFA",
    )
    exited = ex.synthetic_panel_outcome(outcome="EXITED")
    _refused(
        PanelOutcomePayload,
        _changed(exited, lambda d: d.update(referral_considered="SYNTHETIC: considered.")),
        "only for it",
    )


def test_adoption_before_consent_says_how_consent_will_be_sought() -> None:
    """CTSA 2015 s36(5)(a) (REFERENCE 4.2 stage 7): the plan says how, when and by whom
    consent is requested; only an adoption carries it."""
    adopted = ex.synthetic_panel_outcome(outcome="ADOPTED")
    assert adopted.consent_request is not None
    referred = ex.synthetic_panel_outcome(outcome="NOT_ADOPTED_REFERRED_ON")
    request = _doc(adopted)["consent_request"]
    _refused(
        PanelOutcomePayload,
        _changed(referred, lambda d: d.update(consent_request=request)),
        "'consent_request' is only for ADOPTED",
    )


def test_an_adopted_case_cannot_also_exit() -> None:
    _refused(
        PanelOutcomePayload,
        _changed(ex.synthetic_panel_outcome(), lambda d: d.update(exit_date="2024-06-01")),
        "'exit_date' and 'exit_reason'",
    )


def test_case_review_extension_needs_a_later_date() -> None:
    review = ex.synthetic_case_review()
    _refused(
        CaseReviewPayload,
        _changed(review, lambda d: d.update(outcome="REVIEW_EXTENDED")),
        "'next_review_date' is required",
    )
    _refused(
        CaseReviewPayload,
        _changed(
            review, lambda d: d.update(outcome="REVIEW_EXTENDED", next_review_date="2024-01-01")
        ),
        "must be after",
    )
    extended = _changed(
        review, lambda d: d.update(outcome="REVIEW_EXTENDED", next_review_date="2025-06-01")
    )
    assert _parse(CaseReviewPayload, extended).next_review_date == date(2025, 6, 1)


def test_case_open_subject_may_carry_parents() -> None:
    case = ex.synthetic_case_open(seed=2)
    parsed = _parse(CaseOpenPayload, _doc(case))
    assert parsed.subject.parents_or_guardians[0].parental_responsibility


# --- Synthetic examples -----------------------------------------------------------------

BUILDERS: dict[str, Callable[[int], WireModel]] = {
    "referral_form": ex.synthetic_referral_form,
    "information_request": ex.synthetic_information_request,
    "decision": ex.synthetic_decision,
    "triage_outcome": ex.synthetic_triage_outcome,
    "case_open": ex.synthetic_case_open,
    "consent_record": ex.synthetic_consent_record,
    "case_pack": ex.synthetic_case_pack,
    "panel_outcome": ex.synthetic_panel_outcome,
    "case_review": ex.synthetic_case_review,
}


def test_every_builder_is_tested() -> None:
    builders = {name for name in ex.__all__ if name.startswith("synthetic_")}
    assert builders - {"synthetic_nhs_number"} == {f"synthetic_{name}" for name in BUILDERS}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_examples_are_deterministic_synthetic_and_valid(name: str) -> None:
    build = BUILDERS[name]
    first = build(7)
    assert build(7) == first
    assert build(7).model_dump_json() == first.model_dump_json()
    assert build(8) != first
    text = first.model_dump_json()
    assert ex.SYNTHETIC_MARKER in text
    assert type(first).model_validate_json(text, context=CONTEXT) == first


def test_every_payload_schema_has_an_example() -> None:
    payload_models = {
        model
        for name, model in SCHEMA_MODELS.items()
        if name.startswith("payload-") and name != "payload-descriptor"
    }
    built = {type(build(0)) for build in BUILDERS.values()} | {ReferrerFeedback}
    assert payload_models == built


@pytest.mark.parametrize("seed", range(300))
def test_synthetic_nhs_numbers_are_valid_test_numbers(seed: int) -> None:
    number = ex.synthetic_nhs_number(seed)
    assert number.startswith("999")
    assert is_valid_nhs_number(number)
    assert ex.synthetic_nhs_number(seed) == number


def test_synthetic_nhs_numbers_differ_between_seeds() -> None:
    assert len({ex.synthetic_nhs_number(seed) for seed in range(300)}) == 300
