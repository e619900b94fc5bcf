"""Deciding an information request in the console, and the release that follows it.

Real app, real hub, real crypto: police ask health; health's safeguarding lead decides
category by category on the form; the release builder's preview shows what goes and what
is withheld; confirming sends the release, bound to the decision, and logs the disclosure.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agency_adapters.health.synthetic import synthetic_patient_bundle
from agency_adapters.node.console.views.decide import records_path
from tests.conftest import HubFixture
from tests.console.reading_world import (
    HEALTH,
    POLICE,
    SUBJECT,
    World,
    information_request,
    open_world,
    text_of,
)

# The request asks for mental_health_diagnoses, medication and ae_attendance (in order).
PART = {
    "scope.0.choice": "release",
    "scope.1.choice": "release",
    "scope.2.choice": "withhold",
    "reason_code": "MINIMUM_NECESSARY",
    "payload.rationale": (
        "Diagnoses and medication are needed to assess vulnerability; A&E attendance is not."
    ),
    "payload.public_interest_considerations": (
        "Risk of serious harm to the person and others outweighs confidentiality."
    ),
    "payload.subject_informed.informed": "false",
    "payload.subject_informed.reason_not_informed": "Telling them may prejudice the outcome.",
    "payload.recorded_in_subject_record": "true",
    "consultation.role": "CALDICOTT_GUARDIAN",
    "consultation.name": "Dr Morgan Fictional",
    "consultation.advice": "Share diagnoses and medication only.",
}


@pytest.fixture
async def asked(hub: HubFixture, tmp_path: Path) -> AsyncIterator[World]:
    world = await open_world(hub, tmp_path)
    try:
        await information_request(world)
        await world.consoles[HEALTH].sync()
        yield world
    finally:
        await world.close()


def _keep_record(world: World) -> Path:
    services = world.consoles[HEALTH].services
    path = records_path(services, SUBJECT)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(synthetic_patient_bundle(1, today=world.hub.clock().date())))
    return path


def _sent(world: World, kind: str) -> list[Any]:
    return world.consoles[HEALTH].services.store.list_messages("out", kind=kind)


async def _decide(world: World, form: dict[str, str]) -> Any:
    request_id = world.ids["request"]
    return await world.consoles[HEALTH].post(f"/messages/{request_id}/decide", form)


async def test_the_request_page_offers_the_decision_and_the_form_lists_each_category(
    asked: World,
) -> None:
    health = asked.consoles[HEALTH]
    request_id = asked.ids["request"]
    page = await health.page(f"/messages/{request_id}")
    assert f'href="/messages/{request_id}/decide"' in page
    form = text_of(await health.page(f"/messages/{request_id}/decide"))
    for name in ("Mental health diagnoses", "Current and recent medication", "A&E and urgent"):
        assert f"Release {name.lower()}" in form, name
        assert f"Withhold {name.lower()}" in form, name
    # The tracker links to the form while the request is undecided.
    assert f'href="/messages/{request_id}/decide"' in await health.page("/requests")
    # The registry's reasons, with their explanations and sources.
    assert "Only the minimum necessary" in form
    assert "NP-02" in form
    # The police officer who sent it may decide requests made to police (DECIDE-ANY), but
    # not their own request: no link, and no form.
    police_page = await asked.consoles[POLICE].page(f"/messages/{request_id}")
    assert "Decide this request" not in police_page
    await asked.consoles[POLICE].page(f"/messages/{request_id}/decide", status=404)


async def test_a_decider_role_is_needed(hub: HubFixture, tmp_path: Path) -> None:
    world = await open_world(hub, tmp_path, roles={HEALTH: ("AUDITOR",)})
    try:
        await information_request(world)
        await world.consoles[HEALTH].sync()
        request_id = world.ids["request"]
        await world.consoles[HEALTH].page(f"/messages/{request_id}/decide", status=403)
        response = await _decide(world, PART)
        assert response.status == 403
        assert "Decide this request" not in await world.consoles[HEALTH].page(
            f"/messages/{request_id}"
        )
        assert not _sent(world, "decision")
    finally:
        await world.close()


async def test_without_the_csrf_token_nothing_is_decided(asked: World) -> None:
    health = asked.consoles[HEALTH]
    response = await health.client.post(
        f"/messages/{asked.ids['request']}/decide", data=PART, allow_redirects=False
    )
    assert response.status == 403
    assert not _sent(asked, "decision")


async def test_each_missing_answer_is_shown_at_its_field_and_nothing_is_sent(
    asked: World,
) -> None:
    form = {k: v for k, v in PART.items() if k not in ("scope.2.choice", "reason_code")}
    form["payload.subject_informed.reason_not_informed"] = ""
    response = await _decide(asked, form)
    assert response.status == 400
    page = await response.text()
    assert 'id="f-scope-2-choice"' in page
    text = text_of(page)
    assert "Choose whether to release or withhold A&E and urgent care attendance" in text
    assert "Say why the person was not told" in text
    # The earlier answers are kept.
    assert 'value="release" checked' in page
    assert not _sent(asked, "decision")


async def test_a_reason_must_fit_the_outcome(asked: World) -> None:
    response = await _decide(asked, {**PART, "reason_code": "FULL_REQUEST_NECESSARY"})
    assert response.status == 400
    assert "is not a reason for withholding part of what was asked" in text_of(
        await response.text()
    )
    response = await _decide(asked, {**PART, "reason_code": "MADE_UP"})
    assert "Choose one of the reasons offered" in text_of(await response.text())
    assert not _sent(asked, "decision")


async def test_the_node_pre_flight_rules_are_shown_at_their_fields(asked: World) -> None:
    # s115 without consent, decided by the safeguarding lead: the Caldicott Guardian's
    # consultation must be recorded (ROLE-05; SEED 004 para 69).
    form = {k: v for k, v in PART.items() if not k.startswith("consultation.")}
    response = await _decide(asked, form)
    assert response.status == 400
    page = await response.text()
    assert "ROLE-05" in page
    assert not _sent(asked, "decision")


async def test_part_approval_sends_exactly_the_released_categories(asked: World) -> None:
    response = await _decide(asked, PART)
    assert response.status == 303, text_of(await response.text())[:2000]
    [decision] = _sent(asked, "decision")
    assert response.headers["Location"] == f"/messages/{decision.id}/release"
    record = decision.envelope.decision
    assert record is not None
    assert record.outcome == "APPROVED_PARTIAL"
    assert [item.category for item in record.approved_scope] == [
        "mental_health_diagnoses",
        "medication",
    ]
    assert record.reason_code == "MINIMUM_NECESSARY"
    assert record.consulted == ("CALDICOTT_GUARDIAN",)
    assert decision.envelope.in_reply_to == asked.ids["request"]
    # Police receive it; a second decision of the same request is refused.
    await asked.consoles[POLICE].sync()
    assert asked.consoles[POLICE].services.store.get(decision.id) is not None
    again = await _decide(asked, PART)
    assert again.status == 409
    tracker = await asked.consoles[HEALTH].page("/requests")
    assert f"/messages/{asked.ids['request']}/decide" not in tracker
    assert len(_sent(asked, "decision")) == 1


async def test_refusing_everything_needs_the_refusal_reason(asked: World) -> None:
    form = {
        **{k: v for k, v in PART.items() if not k.startswith("payload.subject_informed")},
        "scope.0.choice": "withhold",
        "scope.1.choice": "withhold",
        "reason_code": "NOT_PROPORTIONATE",
    }
    response = await _decide(asked, form)
    assert response.status == 400
    assert "Say why the request is refused" in text_of(await response.text())
    response = await _decide(
        asked, {**form, "payload.refusal_reason": "Not proportionate to the risk described."}
    )
    assert response.status == 303, text_of(await response.text())[:2000]
    [decision] = _sent(asked, "decision")
    assert decision.envelope.decision is not None
    assert decision.envelope.decision.outcome == "REFUSED"
    assert response.headers["Location"] == f"/messages/{decision.id}"
    # No release is offered against a refusal.
    assert 'href="/messages/' + decision.id + '/release"' not in await asked.consoles[HEALTH].page(
        f"/messages/{decision.id}"
    )


async def test_preview_shows_what_goes_and_what_is_withheld_then_confirm_sends(
    asked: World,
) -> None:
    _keep_record(asked)
    health = asked.consoles[HEALTH]
    await _decide(asked, PART)
    [decision] = _sent(asked, "decision")
    page = await health.page(f"/messages/{decision.id}/release")
    text = text_of(page)
    assert "What goes" in text
    assert "Mental health diagnoses" in text
    assert "Current and recent medication" in text
    assert "A&E and urgent care attendance: not approved by the decision" in text
    assert "outside the approved categories or periods" in text
    assert not _sent(asked, "release"), "the preview sends nothing"
    sha = page.split('name="content_sha256" value="')[1].split('"')[0]
    response = await health.post(f"/messages/{decision.id}/release", {"content_sha256": sha})
    assert response.status == 303, text_of(await response.text())[:2000]
    [release] = _sent(asked, "release")
    assert response.headers["Location"] == f"/messages/{release.id}"
    assert release.envelope.in_reply_to == decision.id
    assert {c.category for c in release.envelope.manifest.categories} <= {  # type: ignore[union-attr]
        "mental_health_diagnoses",
        "medication",
    }
    # The disclosure log has exactly this release.
    log_lines = health.services.profile.disclosure_log_path.read_text().splitlines()
    assert [json.loads(line)["record"]["release_id"] for line in log_lines] == [release.id]
    # Police read it: released and what it was released under.
    await asked.consoles[POLICE].sync()
    police_page = text_of(await asked.consoles[POLICE].page(f"/messages/{release.id}"))
    assert "Mental health diagnoses" in police_page
    # ... and what was asked for but not released, with the decision's reason.
    assert "Asked for but not released, and why" in police_page
    assert "A&E and urgent care attendance Not approved: only the minimum necessary" in (
        police_page.replace("ae_attendance ", "")
    )
    # Released once only.
    again = await health.post(f"/messages/{decision.id}/release", {"content_sha256": sha})
    assert again.status == 409
    assert "already been released" in text_of(await again.text())
    assert len(_sent(asked, "release")) == 1


async def test_a_stale_preview_is_not_sent(asked: World) -> None:
    _keep_record(asked)
    await _decide(asked, PART)
    [decision] = _sent(asked, "decision")
    response = await asked.consoles[HEALTH].post(
        f"/messages/{decision.id}/release", {"content_sha256": "0" * 64}
    )
    assert response.status == 409
    assert "record has changed since the preview" in text_of(await response.text())
    assert not _sent(asked, "release")


async def test_no_record_is_a_clear_page_and_sends_nothing(asked: World) -> None:
    await _decide(asked, PART)
    [decision] = _sent(asked, "decision")
    text = text_of(await asked.consoles[HEALTH].page(f"/messages/{decision.id}/release"))
    assert "The release cannot be built" in text
    assert f"records/{SUBJECT}.json" in text
    response = await asked.consoles[HEALTH].post(f"/messages/{decision.id}/release", {})
    assert response.status == 400
    assert not _sent(asked, "release")


async def test_an_unreadable_record_is_a_clear_page(asked: World) -> None:
    path = _keep_record(asked)
    path.write_text("{not json")
    await _decide(asked, PART)
    [decision] = _sent(asked, "decision")
    text = text_of(await asked.consoles[HEALTH].page(f"/messages/{decision.id}/release"))
    assert "cannot be read" in text
    assert not _sent(asked, "release")


async def test_release_pages_are_only_for_this_nodes_decisions(asked: World) -> None:
    request_id = asked.ids["request"]
    # A request is not a decision: nothing to release against.
    await asked.consoles[HEALTH].page(f"/messages/{request_id}/release", status=404)
    await asked.consoles[HEALTH].page("/messages/no-such-message/decide", status=404)
