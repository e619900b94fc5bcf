"""The console's reading pages: inbox, sent items, each kind's message page, the tracker.

Every message here went through the real hub test fixture with real crypto (the story of
hub/cli/story.py); the consoles are the real app over real node services.
"""

from __future__ import annotations

import pytest

from tests.console.reading_world import (
    CASE,
    HEALTH,
    LA,
    POLICE,
    SUBJECT,
    World,
    information_request,
    referral,
    text_of,
    whole_story,
)


@pytest.fixture
async def story(world: World) -> World:
    await whole_story(world)
    return world


async def test_check_for_new_messages_fetches_and_says_how_many(world: World) -> None:
    await referral(world)
    police = world.consoles[POLICE]
    assert await police.sync() == "/inbox?synced=1"
    page = text_of(await police.page("/inbox?synced=1"))
    assert "1 new message" in page
    assert "Referral" in page
    assert "Acknowledged" in page
    assert await police.sync() == "/inbox?synced=0"
    assert "No new messages." in text_of(await police.page("/inbox?synced=0"))


async def test_check_for_new_messages_needs_the_csrf_token(world: World) -> None:
    await referral(world)
    police = world.consoles[POLICE]
    response = await police.client.post("/inbox/sync", data={"csrf_token": "wrong"})
    assert response.status == 403
    assert police.services.store.count_messages("in") == 0


async def test_referral_page_is_the_form_in_its_order(story: World) -> None:
    police = story.consoles[POLICE]
    html = await police.page(f"/messages/{story.ids['referral']}")
    page = text_of(html)
    headings = [
        "Individual's biographical and contact details",
        "Describe concerns",
        "Complex needs",
        "Further information",
        "Person who first identified the concerns",
        "Person making this referral (if different from above)",
        "Referrer's organisational Prevent contact (if different from above)",
        "Relevant dates",
        "Safeguarding considerations",
        "Individual's employment / education details",
    ]
    positions = [page.index(heading) for heading in headings]
    assert positions == sorted(positions)
    assert "National Prevent Referral Form" in page
    assert "Have you informed the individual that you are making this referral?" in page
    # Envelope facts, gateways from the registry, the node's answer, the marking banners.
    assert "health.bsw-icb" in page
    assert SUBJECT in page
    assert "Crime and Disorder Act" in page
    assert "CDA1998-s115" in page
    assert "This node Acknowledged" in page
    assert html.count("OFFICIAL-SENSITIVE - PERSONAL DATA") >= 3  # banner top, bottom, facts
    assert ("user-police", "message", story.ids["referral"]) in police.access_log()


async def test_information_request_page_shows_gateways_scope_consent_and_deadline(
    story: World,
) -> None:
    health = story.consoles[HEALTH]
    page = text_of(await health.page(f"/messages/{story.ids['request']}"))
    # Each gateway with its registry name and explanation, layer by layer.
    assert "Power to share" in page
    assert "UK GDPR Article 6 lawful basis" in page
    assert "DPA 2018 Schedule 1 condition" in page
    assert "Common law duty of confidentiality: exception" in page
    gateway = health.services.registry.gateway("CLDC-PUBINT")
    assert gateway is not None
    assert gateway.title in page
    # The scope: category names from the registry, periods and the justification text.
    for category in ("mental_health_diagnoses", "medication", "ae_attendance"):
        entry = health.services.registry.category(category)
        assert entry is not None
        assert entry.name in page
    assert "Needed to assess vulnerability (medication)." in page
    assert "Consent position Not sought: would prejudice outcome" in page
    assert "Deadline for a decision" in page
    assert "Approved in part" not in page


async def test_decision_page_shows_approved_against_requested_and_reasons(story: World) -> None:
    police = story.consoles[POLICE]
    page = text_of(await police.page(f"/messages/{story.ids['decision']}"))
    assert "Approved in part" in page
    assert "Approved scope against what was asked for" in page
    assert "Not approved" in page  # A&E attendance was asked for, not approved
    assert "Only the information relevant to the concern is released." in page
    assert "Subject informed No:" in page
    assert "Would prejudice the assessment." in page
    assert "Consultations" in page
    assert "Caldicott Guardian" in page
    assert "Entered in the subject's record Yes" in page


async def test_release_page_shows_manifest_and_released_records(story: World) -> None:
    police = story.consoles[POLICE]
    html = await police.page(f"/messages/{story.ids['release']}")
    page = text_of(html)
    assert "What was released (the signed content manifest" in page
    assert 'id="fhir-Condition"' in html
    assert 'id="fhir-MedicationStatement"' in html
    assert "Moderate depressive episode" in page
    assert "Sertraline 50mg tablets" in page
    assert "Synthetic free-text note; never released." not in page
    # The sender reads its own sent release the same way.
    health = story.consoles[HEALTH]
    assert "Sertraline 50mg tablets" in text_of(
        await health.page(f"/messages/{story.ids['release']}")
    )


async def test_other_kinds_render_their_key_facts(story: World) -> None:
    health, police = story.consoles[HEALTH], story.consoles[POLICE]
    outcome = text_of(await health.page(f"/messages/{story.ids['referral_outcome']}"))
    assert "What the referrer is told" in outcome
    assert "Prevent management ongoing" in outcome
    case_open = text_of(await police.page(f"/messages/{story.ids['case_open']}"))
    assert "Channel case" in case_open
    assert CASE in case_open
    consent = text_of(await police.page(f"/messages/{story.ids['consent_record']}"))
    assert "Consented" in consent
    panel = text_of(await police.page(f"/messages/{story.ids['panel_outcome']}"))
    assert "Adopted" in panel
    assert "Support plan" in panel
    note = text_of(await police.page(f"/messages/{story.ids['note']}"))
    assert "Synthetic note: the panel meets on Tuesday." in note


async def test_case_pack_page_links_to_the_reader_without_its_content(story: World) -> None:
    police = story.consoles[POLICE]
    html = await police.page(f"/messages/{story.ids['case_pack']}")
    assert f'href="/case-packs/{story.ids["case_pack"]}"' in html
    assert "Open the case pack" in html
    assert "Readable until" in text_of(html)
    # Nothing of the pack's sections is on this page.
    assert "Vulnerability assessment" not in html


async def test_thread_links_the_reply_and_the_message_it_answers(story: World) -> None:
    police = story.consoles[POLICE]
    decision = await police.page(f"/messages/{story.ids['decision']}")
    assert f'href="/messages/{story.ids["request"]}"' in decision
    request = await police.page(f"/messages/{story.ids['request']}")
    assert f'href="/messages/{story.ids["decision"]}"' in request


async def test_sent_page_fetches_live_status_and_keeps_it_for_the_list(story: World) -> None:
    health = story.consoles[HEALTH]
    listed = text_of(await health.page("/sent?kind=referral"))
    assert "Sent" in listed
    page = text_of(await health.page(f"/messages/{story.ids['referral']}"))
    assert "Status at the hub, now: Acknowledged" in page
    assert "la.wiltshire Acknowledged" in page
    assert "police.ctp-sw Acknowledged" in page
    stored = health.services.store.get(story.ids["referral"])
    assert stored is not None
    assert stored.state == "acknowledged"
    listed = text_of(await health.page("/sent?state=acknowledged"))
    assert "1 message" in listed.replace("of 1 message", "1 message")


async def test_filters_by_kind_and_state_and_search_by_reference(story: World) -> None:
    police = story.consoles[POLICE]
    everything = police.services.store.count_messages("in")
    assert everything >= 6
    only = text_of(await police.page("/inbox?kind=case_pack"))
    assert "of 1 message" in only
    by_case = text_of(await police.page(f"/inbox?q={CASE}"))
    assert f"of {police.services.store.count_messages('in', case_ref=CASE)} messages" in by_case
    by_id = text_of(await police.page(f"/inbox?q={story.ids['referral'][:23]}"))
    assert "of 1 message" in by_id
    by_request = text_of(await police.page(f"/sent?q={story.ids['request'][:18]}"))
    assert "Information request" in by_request
    rejected = text_of(await police.page("/inbox?state=rejected"))
    assert "0 messages" in rejected
    assert "No messages match these filters." in rejected


async def test_decided_state_comes_from_the_hub(story: World) -> None:
    health = story.consoles[HEALTH]
    decided = text_of(await health.page("/inbox?state=decided"))
    assert "of 1 message" in decided
    assert "Information request" in decided
    assert "0 messages" in text_of(await health.page("/inbox?state=overdue"))


async def test_pagination_splits_a_long_inbox(world: World) -> None:
    for _ in range(27):
        await information_request(world)
    health = world.consoles[HEALTH]
    await health.sync()
    first = await health.page("/inbox")
    assert "Showing 1 to 25 of 27 messages" in text_of(first)
    assert 'aria-label="Pagination"' in first
    assert 'href="/inbox?page=2"' in first
    second = text_of(await health.page("/inbox?page=2"))
    assert "Showing 26 to 27 of 27 messages" in second


async def test_tracker_shows_both_parties_and_overdue_after_the_deadline(world: World) -> None:
    await information_request(world)
    health, police = world.consoles[HEALTH], world.consoles[POLICE]
    await health.sync()
    to_answer = text_of(await health.page("/requests"))
    assert "Requests to answer (1)" in to_answer
    assert "Requests sent" in to_answer
    assert "0 overdue" in to_answer
    sent = await police.page("/requests")
    assert "Requests sent (1)" in text_of(sent)
    assert f'href="/messages/{world.ids["request"]}"' in sent
    # Past the routine deadline the hub reports it overdue, to both parties.
    world.hub.clock.advance(60 * 24 * 3600)
    for console in (health, police):
        console.renew()
        page = text_of(await console.page("/requests"))
        assert "1 overdue" in page
        assert "Overdue" in page
    only = text_of(await police.page("/requests?overdue=1"))
    assert "Requests sent (1)" in only
    assert "of 1 message" in text_of(await health.page("/inbox?state=overdue"))


async def test_purged_payload_page_says_why_and_when(world: World) -> None:
    from tests.console.reading_world import channel_case

    await channel_case(world, pack_days=1)
    police = world.consoles[POLICE]
    await police.sync()
    world.hub.clock.advance(2 * 24 * 3600)
    police.services.store.purge(world.hub.clock())
    police.renew()
    page = text_of(await police.page(f"/messages/{world.ids['case_pack']}"))
    assert "The content of this message is no longer held at this node." in page
    assert "case pack access expired" in page
    assert "Open the case pack" not in page


async def test_unknown_message_is_404_and_logs_nothing(story: World) -> None:
    police = story.consoles[POLICE]
    before = len(police.access_log())
    await police.page("/messages/0190a5e0-0000-7000-8000-000000000000", status=404)
    assert len(police.access_log()) == before


async def test_a_message_of_another_node_is_not_shown(story: World) -> None:
    # The note went to police and health only; the referral outcome not to police.
    police = story.consoles[POLICE]
    await police.page(f"/messages/{story.ids['referral_outcome']}", status=200)
    la = story.consoles[LA]
    await la.page(f"/messages/{story.ids['request']}", status=404)
