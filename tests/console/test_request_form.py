"""The new information request page: gateway picker, scope builder, pre-flight, send.

The consoles are the real app over real node services on the real hub fixture
(tests/console/reading_world.py). The drafts are the demo's (hub/cli/story.py): the
careless police request (the whole record, citing only a Schedule 2 exemption) is refused
with its rules beside the fields, and the corrected one (three named categories with
periods and justifications, the gateways health relies on) is sent and reaches health
with exactly the scope posted.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from hub.model import EnvelopeFields
from tests.conftest import HubFixture
from tests.console.reading_world import (
    HEALTH,
    LA,
    POLICE,
    REQUEST_SCOPE_DAYS,
    SUBJECT,
    World,
    open_world,
    request_document,
    text_of,
)


def _common(**extra: str) -> dict[str, str]:
    return {
        "_acting_as": "PREVENT_POLICE_OFFICER",
        "recipients": HEALTH,
        "subject_ref": SUBJECT,
        "purpose": "PREVENT_TRIAGE",
        "marking.tier": "OFFICIAL",
        "marking.sensitive": "true",
        "marking.descriptors": "PERSONAL_DATA",
        "urgency": "routine",
        "payload.requester.name": "PC Synthetic Officer",
        "payload.requester.role": "Prevent case officer",
        "payload.requester.organisation": "Synthetic Counter Terrorism Policing",
        "payload.subject.forenames": "Alex",
        "payload.subject.surname": "Example",
        "payload.subject.date_of_birth": "1990-01-01",
        "payload.purpose": "To decide whether the case should go to a Channel panel.",
        **extra,
    }


def careless() -> dict[str, str]:
    """The demo's careless draft: the whole record, citing only the Sch 2 exemption."""
    return _common(
        **{
            "_rows": "1",
            "scope.0._row": "0",
            "scope.0.category": "whole_record",
            "scope.0.justification": "Everything you hold, please.",
            "legal_basis.exemptions": "DPA2018-S2P1p2",
            "consent.state": "NOT_SOUGHT",
            "consent.subject_age": "ADULT",
        }
    )


def corrected(world: World) -> dict[str, str]:
    """The demo's corrected request: 3 named categories, periods, justifications."""
    today = world.hub.clock().date()
    fields = _common(
        **{
            "_rows": "3",
            "legal_basis.powers": "CDA1998-s115",
            "legal_basis.art6": "UKGDPR-A6-1e",
            "legal_basis.art9": "UKGDPR-A9-2g",
            "legal_basis.sch1": "DPA2018-S1P2p10",
            "legal_basis.confidentiality": "CLDC-PUBINT",
            "consent.state": "NOT_SOUGHT",
            "consent.reason_code": "WOULD_PREJUDICE_OUTCOME",
            "consent.subject_age": "ADULT",
            "payload.consent_not_sought_reason": "Informing the person may prejudice it.",
        }
    )
    for i, (category, days) in enumerate(REQUEST_SCOPE_DAYS.items()):
        fields[f"scope.{i}._row"] = str(i)
        fields[f"scope.{i}.category"] = category
        fields[f"scope.{i}.period_from"] = (today - timedelta(days=days)).isoformat()
        fields[f"scope.{i}.period_to"] = (today - timedelta(days=1)).isoformat()
        fields[f"scope.{i}.justification"] = f"Needed to assess vulnerability ({category})."
    return fields


def _field_block(html: str, field_id: str) -> str:
    """The text of the form group holding the field with HTML id ``field_id``."""
    at = html.index(f'id="{field_id}"')
    start = html.rfind('<div class="govuk-form-group', 0, at)
    end = html.find('<div class="govuk-form-group', at)
    return text_of(html[start : end if end != -1 else len(html)])


async def _sent(world: World) -> int:
    return world.consoles[POLICE].services.store.count_messages("out")


async def test_the_form_is_for_roles_that_may_ask(world: World) -> None:
    police = world.consoles[POLICE]
    page = text_of(await police.page("/requests/new"))
    assert "New information request" in page
    assert "Add another category" in page
    # Each gateway with its explanation and what it needs (GW-14 for Sch 1 para 10).
    html = await police.page(f"/requests/new?to={HEALTH}")
    assert "CLDC-PUBINT" in html
    assert "unless the disclosure is to a competent authority" in text_of(html)
    # Only gateways that permit disclosure to the police (gateways.yaml to_whom; GW-09):
    # a s47 enquiry is the local authority's, not a basis for health to tell the police.
    assert 'name="legal_basis.powers" type="checkbox" value="CA1989-s47"' not in html
    assert 'name="legal_basis.powers" type="checkbox" value="CDA1998-s115"' in html
    # The categories health holds, not those of other agency types.
    assert 'value="mental_health_diagnoses"' in html
    tracker = await police.page("/requests")
    assert 'href="/requests/new"' in tracker
    assert 'href="/requests/new"' in await police.page("/inbox")


async def test_role_guard(hub: HubFixture, tmp_path: Path) -> None:
    world = await open_world(hub, tmp_path, {POLICE: ("PANEL_MEMBER",)})
    try:
        police = world.consoles[POLICE]
        await police.page("/requests/new", status=403)
        response = await police.post("/requests/new", corrected(world))
        assert response.status == 403
        assert await _sent(world) == 0
        assert 'href="/requests/new"' not in await police.page("/requests")
    finally:
        await world.close()


async def test_csrf_is_required(world: World) -> None:
    police = world.consoles[POLICE]
    response = await police.client.post(
        "/requests/new", data={**corrected(world), "csrf_token": "wrong"}
    )
    assert response.status == 403
    response = await police.client.post("/requests/new", data=corrected(world))
    assert response.status == 403
    assert await _sent(world) == 0


async def test_add_row_shows_one_more_row_and_sends_nothing(world: World) -> None:
    police = world.consoles[POLICE]
    fields = corrected(world)
    response = await police.post("/requests/new", {**fields, "action": "add-row"})
    html = await response.text()
    assert response.status == 200
    assert await _sent(world) == 0
    assert 'name="scope.3.category"' in html
    assert 'name="scope.4.category"' not in html
    assert 'name="_rows" value="4"' in html
    # What was typed is shown again.
    assert "Needed to assess vulnerability (medication)." in html
    assert "There is a problem" not in html


async def test_careless_draft_is_refused_with_rules_at_the_fields(world: World) -> None:
    police = world.consoles[POLICE]
    response = await police.post("/requests/new", {**careless(), "action": "send"})
    html = await response.text()
    assert response.status == 400, html[:2000]
    assert await _sent(world) == 0
    page = text_of(html)
    assert "There is a problem: nothing has been sent" in page
    # The whole record, by name (SCOPE-03), beside the category field of row 1.
    assert "SCOPE-03" in _field_block(html, "f-scope-0-category")
    # An exemption is never a lawful basis on its own; no power, no Art 6 basis.
    for rule in ("GW-EX", "GW-01", "GW-02"):
        assert rule in page, rule
    # Consent not sought needs its reason (CS-02), shown in the consent position.
    assert "CS-02" in page
    # Each rule with what it says and its source.
    assert "The rule: A DPA 2018 Schedule 2 exemption is never a lawful basis" in page
    # The form keeps what was posted.
    assert (
        'value="DPA2018-S2P1p2" aria-describedby="f-legal_basis-exemptions-1-hint" checked' in html
    )


async def test_corrected_draft_is_sent_and_health_receives_exactly_that_scope(
    world: World,
) -> None:
    police = world.consoles[POLICE]
    fields = corrected(world)
    response = await police.post("/requests/new", {**fields, "action": "send"})
    assert response.status == 303, (await response.text())[:3000]
    location = response.headers["Location"]
    assert location.startswith("/requests/sent/")
    message_id = location.rsplit("/", 1)[1]
    confirmation = text_of(await police.page(location))
    assert "Information request sent" in confirmation
    assert message_id in confirmation
    assert "Accepted by" in confirmation
    assert await _sent(world) == 1

    health = world.consoles[HEALTH]
    await health.sync()
    stored = health.services.store.get(message_id)
    assert stored is not None
    assert stored.kind == "information_request"
    envelope = stored.envelope
    today = world.hub.clock().date()
    assert [
        (s.category, s.period_from, s.period_to, s.justification_present) for s in envelope.scope
    ] == [
        (c, today - timedelta(days=d), today - timedelta(days=1), True)
        for c, d in REQUEST_SCOPE_DAYS.items()
    ]
    basis = envelope.legal_basis
    assert basis is not None
    assert basis.powers == ("CDA1998-s115",)
    assert (basis.art6, basis.art9, basis.sch1) == (
        "UKGDPR-A6-1e",
        "UKGDPR-A9-2g",
        "DPA2018-S1P2p10",
    )
    assert basis.confidentiality == ("CLDC-PUBINT",)
    assert basis.exemptions == ()
    assert envelope.consent is not None
    assert envelope.consent.model_dump(exclude_defaults=True) == {
        "state": "NOT_SOUGHT",
        "reason_code": "WOULD_PREJUDICE_OUTCOME",
        "subject_age": "ADULT",
    }
    assert envelope.marking.render() == "OFFICIAL-SENSITIVE - PERSONAL DATA"
    assert envelope.recipients == (HEALTH,)
    assert envelope.author.role == "PREVENT_POLICE_OFFICER"
    # Field for field, the demo's corrected request (hub/cli/story.py).
    expected = EnvelopeFields.model_validate_json(json.dumps(request_document(world)))
    for name in (
        "kind",
        "author",
        "recipients",
        "marking",
        "subject_ref",
        "purpose",
        "legal_basis",
        "consent",
        "scope",
        "urgency",
    ):
        assert getattr(envelope, name) == getattr(expected, name), name
    # The justifications travel in the payload, one per category.
    page = text_of(await health.page(f"/messages/{message_id}"))
    for category in REQUEST_SCOPE_DAYS:
        assert f"Needed to assess vulnerability ({category})." in page


@pytest.mark.parametrize(
    ("change", "field_id", "rule"),
    [
        ({"scope.1.category": "made_up_category"}, "f-scope-1-category", "SCOPE-03"),
        ({"scope.2.period_to": "2000-01-01"}, "f-scope-2-period_to", "SCOPE-07"),
        ({"scope.0.justification": ""}, "f-scope-0-justification", "SCOPE-08"),
    ],
    ids=["unknown category", "period end before start", "missing justification"],
)
async def test_bad_scope_input_is_shown_at_its_field_and_nothing_is_sent(
    world: World, change: dict[str, str], field_id: str, rule: str
) -> None:
    police = world.consoles[POLICE]
    response = await police.post("/requests/new", {**corrected(world), **change, "action": "send"})
    html = await response.text()
    assert response.status == 400, html[:2000]
    assert rule in _field_block(html, field_id)
    assert f'href="#{field_id}"' in html
    assert await _sent(world) == 0
    assert await world.consoles[HEALTH].sync() == "/inbox?synced=0"


async def test_an_unreadable_date_is_shown_at_its_field(world: World) -> None:
    police = world.consoles[POLICE]
    fields = {**corrected(world), "scope.1.period_from": "yesterday", "action": "send"}
    response = await police.post("/requests/new", fields)
    html = await response.text()
    assert response.status == 400
    assert "date" in _field_block(html, "f-scope-1-period_from").lower()
    assert await _sent(world) == 0


async def test_the_choices_follow_the_recipient_chosen(world: World) -> None:
    police = world.consoles[POLICE]
    fields = {**corrected(world), "recipients": LA, "action": "choose-recipient"}
    response = await police.post("/requests/new", fields)
    html = await response.text()
    assert response.status == 200
    assert await _sent(world) == 0
    # The local authority's categories (data_categories.yaml held_by), not health's.
    assert 'value="childrens_social_care"' in html
    assert 'value="mental_health_diagnoses"' not in html
    health = await police.page(f"/requests/new?to={HEALTH}")
    assert 'value="mental_health_diagnoses"' in health
    assert 'value="childrens_social_care"' not in health


async def test_an_implied_power_asks_for_its_statutory_function(world: World) -> None:
    """An implied power names the statutory function it rests on (GW-15), shown at the
    statutory function field of the picker."""
    police = world.consoles[POLICE]
    fields = {
        **corrected(world),
        "legal_basis.powers": "IMPLIED-FUNCTION",
        "purpose": "CHANNEL_ASSESSMENT",
    }
    response = await police.post("/requests/new", {**fields, "action": "send"})
    html = await response.text()
    assert response.status == 400
    assert "GW-15" in _field_block(html, "f-legal_basis-statutory_function")
    assert await _sent(world) == 0


async def test_add_row_stops_at_the_registry_maximum(world: World) -> None:
    police = world.consoles[POLICE]
    most = police.services.registry.settings.max_scope_categories
    fields = {**corrected(world), "_rows": str(most), "action": "add-row"}
    response = await police.post("/requests/new", fields)
    html = await response.text()
    assert response.status == 200
    assert f'name="scope.{most - 1}.category"' in html
    assert f'name="scope.{most}.category"' not in html
    assert "Add another category" not in html
    assert await _sent(world) == 0


async def test_a_request_about_a_person_cannot_be_marked_official(world: World) -> None:
    police = world.consoles[POLICE]
    fields = {**corrected(world), "marking.sensitive": "false", "action": "send"}
    response = await police.post("/requests/new", fields)
    html = await response.text()
    assert response.status == 400
    assert "MK-10" in _field_block(html, "f-marking-sensitive")
    assert await _sent(world) == 0
