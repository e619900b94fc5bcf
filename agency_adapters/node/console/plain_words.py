"""Errors on the Channel forms in the words the forms use: one per problem, at its field.

The wire models speak to programs ("Field required", "Tuple should have at least 1 item
after validation"). A form says what to do instead, as the GOV.UK Design System asks of
error messages: "Enter a case summary", "Choose the panel member this pack is for". The
payload models' cross-field rules (hub/model/payloads.py) are said at the field to change.
Where the form checked a field itself, its words replace the model's on that field, and a
list's "at least one item" is dropped when one of its items is itself wrong, so one
problem is one error. Broken policy rules (with a rule id) pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agency_adapters.node.console.forms import FieldError, FormErrors

__all__ = ["MISSING", "missing_words", "one_per_problem", "plain_message", "without_echoes"]

# Plain words for a missing answer, by the form's field name: a form never shows a wire
# model's "Field required" (GOV.UK error messages: say what to do). A step's own words
# (Step.missing) come first.
MISSING: dict[str, str] = {
    "_acting_as": "Choose the role you are acting in",
    "case_ref": "Enter a case reference",
    "subject_ref": "Enter the subject reference",
    "purpose": "Choose the purpose",
    "marking.sensitive": "Choose the protective marking",
    "consent.state": "Choose the consent position",
    "consent.subject_age": "Choose the person's age",
    "payload.subject": "Enter the person's first names, last name and date of birth",
    "payload.subject.forenames": "Enter the person's first names",
    "payload.subject.surname": "Enter the person's last name",
    "payload.subject.date_of_birth": "Enter the person's date of birth",
    "payload.case_summary": "Enter a case summary",
    "payload.given_by": "Choose who gave or refused consent",
    "payload.parent_or_guardian.name": "Enter the parent or guardian's name",
    "payload.parent_or_guardian.relationship": "Enter their relationship to the person",
    "payload.parent_or_guardian.parental_responsibility": (
        "Say whether they have parental responsibility"
    ),
    "payload.consent_to": "Choose what the consent covers",
    "payload.method": "Choose how consent was sought",
    "payload.decided_at": "Enter when consent was given or refused",
    "payload.information_given": "Enter what the person was told",
    "payload.right_to_withdraw_explained": "Confirm that the right to withdraw was explained",
    "payload.rationale": "Enter the reasons for the panel's decision",
    "payload.review_point": "Choose the review point",
    "payload.review_date": "Enter the date of the review",
    "payload.notes": "Enter the review notes",
    "payload.exit_date": "Enter the date the person exited Channel support",
    "payload.exit_reason": "Choose why the person exited",
    "access_expires_at": "Enter the date and time access to the pack ends",
    "payload.prepared_by": "Enter who prepared the pack",
}
_PROFESSIONAL_PARTS = {
    "name": "Enter their name",
    "role": "Enter their job title",
    "organisation": "Enter their organisation",
}
# The payload models' own cross-field messages (hub/model/payloads.py), in plain words at
# the field to change.
_MODEL_MESSAGES: dict[str, tuple[str, str]] = {
    "'support_plan' is required for ADOPTED and only for it": (
        "payload.support_plan",
        "Add the support plan when the case is adopted, and only then",
    ),
    "'consent_request' is only for ADOPTED": (
        "payload.consent_request",
        "Say how consent will be sought only when the case is adopted",
    ),
    "'referred_on_to' is required for NOT_ADOPTED_REFERRED_ON and only for it": (
        "payload.referred_on_to",
        "Choose where the person is referred on to when the case is referred on, and only then",
    ),
    "'exit_date' and 'exit_reason' are required for EXITED and only for it": (
        "payload.exit_date",
        "Enter the exit date and reason when the person exits, and only then",
    ),
    "'next_review_date' is required for REVIEW_EXTENDED and only for it": (
        "payload.next_review_date",
        "Enter the next review date when reviews are extended, and only then",
    ),
    "'next_review_date' must be after 'review_date'": (
        "payload.next_review_date",
        "The next review date must be after the date of this review",
    ),
    "'referred_on_to' is required for REFERRED_ON and only for it": (
        "payload.referred_on_to",
        "Choose where the person is referred on to when the review refers them on, and only then",
    ),
    "consent by a parent or guardian names them": (
        "payload.parent_or_guardian.name",
        "Enter the parent or guardian who gave or refused consent",
    ),
    "only a parent or guardian with parental responsibility may consent": (
        "payload.parent_or_guardian.parental_responsibility",
        "Only a parent or guardian with parental responsibility may consent",
    ),
    "'parent_or_guardian' is only for consent given by them": (
        "payload.parent_or_guardian.name",
        "Leave the parent or guardian empty when the person answered for themselves",
    ),
    "'withdrawn_at' is required for WITHDRAWN and only for it": (
        "payload.withdrawn_at",
        "Enter when consent was withdrawn for a withdrawal, and only then",
    ),
    "'withdrawal_note' is only for a withdrawal": (
        "payload.withdrawal_note",
        "Leave the withdrawal note empty unless consent was withdrawn",
    ),
    "consent cannot be withdrawn before it was given": (
        "payload.withdrawn_at",
        "Consent cannot be withdrawn before it was given",
    ),
    # A case pack section's (the field is the section's, from the error: ".part").
    "'support_plan' is required for a PROPOSED_SUPPORT_PLAN section and only for it": (
        ".support_plan",
        "Say how consent to the support will be sought and add at least one support item",
    ),
    "'partner_return' is required for a PARTNER_RETURN section and only for it": (
        ".partner_return",
        "Say who provided the information and the gateway it was given under",
    ),
}


# A repeated row's part, by its last name segment (a section, a support item, a referral).
_ROW_PARTS = {
    "content": "Enter the section's content",
    "kind": "Choose the section's kind",
    "marking": "Choose the section's marking",
    "support_type": "Choose the type of support",
    "description": "Enter what the support is",
    "provider": "Enter who provides the support",
    "destination": "Choose where the person is referred on to",
    "how": "Enter how consent will be sought",
    "by_whom": "Enter who will seek consent",
    "provided_by": "Enter who provided the information",
    "gateway_ids": "Choose the gateway the information was given under",
    "items": "Add at least one support item",
}


# The Channel payload parts those rows belong to.
_ROW_PREFIXES = (
    "payload.sections",
    "payload.support_plan",
    "payload.referred_on_to",
    "payload.consent_request",
)


# What a field of a fixed form takes, by its last name segment (hub/model OpaqueRef and
# EmailAddress).
_REFERENCE_WORDS = (
    "Use 3 to 80 letters, numbers, dots, dashes, colons or underscores, "
    "starting with a letter or number"
)
_PATTERN_WORDS = {
    "case_ref": _REFERENCE_WORDS,
    "subject_ref": _REFERENCE_WORDS,
    "email": "Enter an email address in the correct format, like name@example.com",
}


def missing_words(name: str, missing: Mapping[str, str]) -> str:
    if name in missing:
        return missing[name]
    if name in MISSING:
        return MISSING[name]
    head, _, last = name.rpartition(".")
    if last in _PROFESSIONAL_PARTS and head.rsplit(".", 1)[-1].endswith("_by"):
        return _PROFESSIONAL_PARTS[last]
    # A Channel row's part (``payload.sections.0.content``), never another form's field of
    # the same name (the referral form's ``payload.concerns.description``).
    if name.startswith(_ROW_PREFIXES) and last in _ROW_PARTS:
        return _ROW_PARTS[last]
    return "Answer this question"


def plain_message(error: FieldError, missing: Mapping[str, str]) -> FieldError:
    """A wire model's message on a form field, in the words the form uses."""
    text = error.message
    name = error.field
    if error.rule is None:
        if text in _MODEL_MESSAGES:
            target, text = _MODEL_MESSAGES[text]
            name = name + target if target.startswith(".") else target
        elif text == "Field required" or text.startswith("String should have at least 1 char"):
            text = missing_words(name, missing)
        elif text.startswith(("Tuple should have at least", "List should have at least")):
            text = "Choose at least one"
        elif text.startswith("String should match pattern"):
            text = _PATTERN_WORDS.get(
                name.rsplit(".", 1)[-1], "Enter it in the form the hint shows"
            )
        elif text.startswith("Input should be a valid datetime"):
            text = "Enter a real date and time"
        elif text.startswith("Input should be a valid date"):
            text = "Enter a real date"
        elif text.startswith("Input should be"):
            text = "Choose one of the options"
    return FieldError(name, text, error.rule, error.explanation, error.source)


def without_echoes(errors: FormErrors) -> FormErrors:
    """Without a list's "at least one item" when one of its items is itself wrong.

    Pydantic reports a bad item and then the list as too short without it: one problem.
    """
    kept = [
        error
        for error in errors.errors
        if not (
            error.message.startswith(("Tuple should have at least", "List should have at least"))
            and any(other.field.startswith(error.field + ".") for other in errors.errors)
        )
    ]
    return FormErrors(kept)


def one_per_problem(
    found: FormErrors, own: FormErrors, field_names: Sequence[str], missing: Mapping[str, str]
) -> FormErrors:
    """The model's errors and the form's own checks, once each, in plain words.

    Where the form checked a field itself (no panel member chosen, no section), its words
    replace what the wire models said about the same field, so one problem is one error.
    """
    mine = own.attach_to(field_names)
    checked = {error.field for error in mine.errors}
    plain = FormErrors([plain_message(error, missing) for error in found.errors])
    out: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    placed: set[str] = set()
    for error in plain.attach_to(field_names).errors:
        if error.field in checked:
            if error.field not in placed:
                placed.add(error.field)
                out.extend(e for e in mine.errors if e.field == error.field)
            continue
        if (error.field, error.message) not in seen:
            seen.add((error.field, error.message))
            out.append(error)
    out.extend(e for e in mine.errors if e.field not in placed)
    return FormErrors(out)
