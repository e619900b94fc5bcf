"""The new referral page: the National Prevent Referral Form, routed, checked, sent.

The consoles are the real app over real node services on the real hub fixture
(tests/console/reading_world.py). Health's safeguarding lead fills every section of the
form (seed 004 Appendix 3); the recipients come from the node's console.toml route for
the individual's area, or, with no route, every local authority and police node; a
missing required answer is shown at its field and nothing is sent; the complete referral
reaches both the local authority and the police with what was posted.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agency_adapters.node.console.presenting import REFERRAL_FORM_SECTIONS
from agency_adapters.node.console.settings import (
    ConsoleSettings,
    ConsoleSettingsError,
    load_console_toml,
    render_referral_routes,
)
from hub.cli.demo import DEMO_REFERRAL_ROUTES, _write_referral_routes
from tests.cli.test_cli import run
from tests.conftest import HubFixture
from tests.console.reading_world import HEALTH, LA, POLICE, SUBJECT, World, open_world, text_of
from tests.console.test_request_form import _field_block

Pairs = list[tuple[str, str]]
ROUTE = {"Wiltshire": [LA, POLICE]}


@pytest.fixture
async def routed(hub: HubFixture, tmp_path: Path) -> AsyncIterator[World]:
    """The world with health's console.toml routing Wiltshire to only the LA (so the
    route, not the fallback, is seen to decide)."""
    (tmp_path / HEALTH).mkdir(parents=True)
    (tmp_path / HEALTH / "console.toml").write_text(
        render_referral_routes(
            {"Wiltshire": [LA], "Elsewhere": [POLICE], "Nowhere": ["la.nowhere"]}
        )
    )
    opened = await open_world(hub, tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


def complete(world: World, *, recipients: tuple[str, ...] = (LA, POLICE)) -> Pairs:
    """A complete referral, as the form posts it (synthetic people only)."""
    today = world.hub.clock().date().isoformat()
    p = "payload."
    pairs: Pairs = [("recipients", node) for node in recipients]
    pairs += [
        ("_acting_as", "SAFEGUARDING_LEAD"),
        ("subject_ref", SUBJECT),
        ("purpose", "PREVENT_REFERRAL"),
        ("marking.tier", "OFFICIAL"),
        ("marking.sensitive", "true"),
        ("marking.descriptors", "PERSONAL_DATA"),
        ("urgency", "routine"),
        (p + "individual.forenames", "Alex"),
        (p + "individual.surname", "Example-Synthetic"),
        (p + "individual.date_of_birth", "1990-01-01"),
        (p + "individual.gender", "Synthetic description"),
        (p + "individual.addresses.0.lines", "1 Synthetic Street\nFlat 2"),
        (p + "individual.addresses.0.town", "Trowbridge"),
        (p + "individual.addresses.0.current_residence", "true"),
        (p + "individual.primary_language.first_language", "English"),
        (p + "individual.primary_language.speaks_understands_english", "true"),
        (p + "individual.contact_numbers", "01632 960001"),
        (p + "concerns.description", "Has shared extremist material with peers (SYNTHETIC)."),
        (p + "concerns.online_activity", "Described videos on a video-sharing site."),
        (p + "complex_needs.description", "Recently bereaved (SYNTHETIC)."),
        (p + "complex_needs.indicators", "MENTAL_ILL_HEALTH"),
        (p + "complex_needs.indicators", "AUTISM"),
        (p + "further_information.other_agencies_or_professionals", "School nurse involved."),
        (p + "person_who_first_identified_concern.forenames", "Robin"),
        (p + "person_who_first_identified_concern.surname", "Placeholder"),
        (p + "person_who_first_identified_concern.professional_role", "Practice nurse"),
        (p + "person_who_first_identified_concern.organisation", "Synthetic Health Centre"),
        (p + "person_who_first_identified_concern.telephone", "01632 960002"),
        (p + "person_who_first_identified_concern.wishes_to_remain_anonymous", "false"),
        (p + "relevant_dates.referral_made_to_prevent", today),
        (p + "safeguarding_considerations.informed_individual.informed", "false"),
        (
            p + "safeguarding_considerations.informed_individual.reason_not_informed",
            "Telling them could prejudice the assessment.",
        ),
        (p + "safeguarding_considerations.discussed_with_safeguarding_lead.answer", "true"),
        (
            p + "safeguarding_considerations.discussed_with_safeguarding_lead.detail",
            "Lead agreed a Prevent referral.",
        ),
        (p + "employment_education.employment_status", "UNEMPLOYED"),
        (p + "consent_not_sought_statement", "Seeking consent would prejudice the outcome."),
        ("legal_basis.powers", "CDA1998-s115"),
        ("legal_basis.powers", "CTSA2015-s38"),
        ("legal_basis.art6", "UKGDPR-A6-1e"),
        ("legal_basis.art9", "UKGDPR-A9-2g"),
        ("legal_basis.sch1", "DPA2018-S1P2p18"),
        ("legal_basis.confidentiality", "CLDC-PUBINT"),
        ("consent.state", "NOT_SOUGHT"),
        ("consent.reason_code", "WOULD_PREJUDICE_OUTCOME"),
        ("consent.subject_age", "ADULT"),
        ("action", "send"),
    ]
    return pairs


async def _post(world: World, pairs: Pairs, *, csrf: str | None = None) -> tuple[int, str, str]:
    health = world.consoles[HEALTH]
    token = health.csrf_token if csrf is None else csrf
    response = await health.client.post(
        "/referrals/new", data=[("csrf_token", token), *pairs], allow_redirects=False
    )
    return response.status, await response.text(), response.headers.get("Location", "")


def _sent(world: World) -> int:
    return world.consoles[HEALTH].services.store.count_messages("out")


def _ticked(html: str) -> set[str]:
    return set(re.findall(r'name="recipients" type="checkbox" value="([^"]+)" checked', html))


async def test_every_section_of_the_form_is_on_the_page(world: World) -> None:
    html = await world.consoles[HEALTH].page("/referrals/new")
    sections = re.findall(r'data-section="([a-z_]+)"', html)
    assert sections == [key for key, _, _ in REFERRAL_FORM_SECTIONS]
    page = text_of(html)
    for _, heading, _ in REFERRAL_FORM_SECTIONS:
        assert heading in page, heading
    # The form's own prompts (seed 004 Appendix 3).
    for prompt in (
        "Forename(s)",
        "Known address",
        "Immigration / asylum status",
        "Primary language",
        "Any other family details",
        "Travel plans to a warzone",
        "Is there anything in the individual's life",
        "Have you informed the individual that you are making this referral?",
    ):
        assert prompt in page, prompt
    assert 'name="csrf_token"' in html
    assert "no-store" in (await world.consoles[HEALTH].client.get("/referrals/new")).headers.get(
        "Cache-Control", ""
    )
    # The page is offered in the navigation of the inbox and the sent items.
    for path in ("/inbox", "/sent"):
        assert 'href="/referrals/new"' in await world.consoles[HEALTH].page(path)


async def test_role_guard_follows_the_registry(hub: HubFixture, tmp_path: Path) -> None:
    # A health REFERRER may not make a Prevent referral (roles.yaml REFER-HEALTH-PREVENT):
    # only the safeguarding lead; a panel member never.
    world = await open_world(hub, tmp_path, {HEALTH: ("REFERRER",), LA: ("PANEL_MEMBER",)})
    try:
        await world.consoles[HEALTH].page("/referrals/new", status=403)
        status, _, _ = await _post(world, complete(world))
        assert status == 403
        assert _sent(world) == 0
        await world.consoles[LA].page("/referrals/new", status=403)
        assert 'href="/referrals/new"' not in await world.consoles[LA].page("/inbox")
    finally:
        await world.close()


async def test_csrf_is_required(world: World) -> None:
    status, _, _ = await _post(world, complete(world), csrf="wrong")
    assert status == 403
    response = await world.consoles[HEALTH].client.post("/referrals/new", data=complete(world))
    assert response.status == 403
    assert _sent(world) == 0


async def test_without_a_route_every_la_and_police_node_is_ticked(world: World) -> None:
    html = await world.consoles[HEALTH].page("/referrals/new")
    assert _ticked(html) == {LA, POLICE}
    assert "No area routes are set" in text_of(html)
    assert 'name="_area"' not in html


async def test_the_areas_route_ticks_its_recipients(routed: World) -> None:
    health = routed.consoles[HEALTH]
    html = await health.page("/referrals/new")
    assert '<option value="Wiltshire">Wiltshire</option>' in html
    assert _ticked(html) == set()
    # A route to a node the directory does not list is flagged, never ticked silently.
    assert "console.toml routes to nodes not in the hub directory: la.nowhere" in text_of(html)
    assert _ticked(await health.page("/referrals/new?area=Wiltshire")) == {LA}
    status, html, _ = await _post(
        routed,
        [
            ("_area", "Elsewhere"),
            ("payload.concerns.description", "Kept."),
            ("action", "choose-area"),
        ],
    )
    assert status == 200
    assert _ticked(html) == {POLICE}
    assert "Kept." in html
    assert "There is a problem" not in html
    assert _sent(routed) == 0


async def test_console_toml_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "console.toml"
    assert load_console_toml(path) == {}
    path.write_text(render_referral_routes(ROUTE))
    assert ConsoleSettings(node_dir=tmp_path).referral_routes == {"Wiltshire": (LA, POLICE)}
    for text, key in (
        ('[referral_routes]\nWiltshire = "la.wiltshire"\n', "referral_routes.Wiltshire"),
        ("[referral_routes]\nWiltshire = []\n", "referral_routes.Wiltshire"),
        ('[referral_routes]\nWiltshire = ["not a node"]\n', "referral_routes.Wiltshire"),
        (
            '[referral_routes]\nWiltshire = ["la.wiltshire", "la.wiltshire"]\n',
            "referral_routes.Wiltshire",
        ),
        ('referral_routes = "Wiltshire"\n', "referral_routes"),
        ("[referal_routes]\nWiltshire = []\n", "referal_routes"),
        ("[referral_routes\n", "console.toml"),
    ):
        path.write_text(text)
        with pytest.raises(ConsoleSettingsError, match=re.escape(key)):
            ConsoleSettings(node_dir=tmp_path)


async def test_a_missing_required_answer_is_shown_at_its_field(world: World) -> None:
    pairs = [
        (n, v)
        for n, v in complete(world)
        if n
        not in (
            "payload.concerns.description",
            "payload.safeguarding_considerations.informed_individual.informed",
            "payload.safeguarding_considerations.informed_individual.reason_not_informed",
        )
    ]
    status, html, _ = await _post(world, pairs)
    assert status == 400, html[:2000]
    assert _sent(world) == 0
    assert "There is a problem: nothing has been sent" in text_of(html)
    assert "Answer this question" in _field_block(html, "f-payload-concerns-description")
    assert 'href="#f-payload-concerns-description"' in html
    informed = "f-payload-safeguarding_considerations-informed_individual-informed"
    assert "Answer this question" in _field_block(html, informed)
    # What was typed is kept.
    assert "Described videos on a video-sharing site." in html


async def test_a_policy_rule_is_shown_with_its_explanation(world: World) -> None:
    # Marked OFFICIAL although the form holds personal data: the marking rules refuse it.
    pairs = [(n, v) for n, v in complete(world) if n != "marking.sensitive"]
    pairs.append(("marking.sensitive", "false"))
    status, html, _ = await _post(world, pairs)
    assert status == 400, html[:2000]
    assert _sent(world) == 0
    assert re.search(r"MK-\d\d", html)
    assert "The rule:" in text_of(html)


async def test_a_complete_referral_reaches_the_la_and_the_police(world: World) -> None:
    status, html, location = await _post(world, complete(world))
    assert status == 303, html[:3000]
    assert location.startswith("/referrals/sent/")
    message_id = location.rsplit("/", 1)[1]
    confirmation = text_of(await world.consoles[HEALTH].page(location))
    assert "Prevent referral sent" in confirmation
    assert message_id in confirmation
    assert "Accepted by hub.test" in confirmation
    stored = world.consoles[HEALTH].services.store.get(message_id)
    assert stored is not None
    assert set(stored.recipients) == {LA, POLICE}
    assert stored.envelope.purpose == "PREVENT_REFERRAL"
    assert stored.envelope.author.role == "SAFEGUARDING_LEAD"
    for node in (LA, POLICE):
        console = world.consoles[node]
        await console.sync()
        assert message_id in await console.page("/inbox")
        page = text_of(await console.page(f"/messages/{message_id}"))
        for posted in (
            "Example-Synthetic",
            "Has shared extremist material with peers (SYNTHETIC).",
            "1 Synthetic Street",
            "Telling them could prejudice the assessment.",
            "Robin",
            "Seeking consent would prejudice the outcome.",
        ):
            assert posted in page, (node, posted)


def test_the_console_refuses_to_start_on_a_bad_route(tmp_path: Path) -> None:
    (tmp_path / "console.toml").write_text('[referral_routes]\nWiltshire = "la.wiltshire"\n')
    result = run("node", "console", "--node", tmp_path, "--port", "1")
    assert result.returncode != 0
    assert "referral_routes.Wiltshire" in result.stderr


def test_the_demo_writes_healths_wiltshire_route(tmp_path: Path) -> None:
    (tmp_path / "nodes" / HEALTH).mkdir(parents=True)
    _write_referral_routes(tmp_path)
    written = load_console_toml(tmp_path / "nodes" / HEALTH / "console.toml")
    assert written == {key: tuple(nodes) for key, nodes in DEMO_REFERRAL_ROUTES.items()}
    assert written == {"Wiltshire": (LA, POLICE)}


async def test_no_recipient_and_malformed_answers_are_shown_at_their_fields(world: World) -> None:
    replaced = {
        "payload.individual.date_of_birth": "31/01/1990",
        "payload.individual.contact_numbers": "not a number",
    }
    pairs = [(n, replaced.get(n, v)) for n, v in complete(world) if n != "recipients"]
    status, html, _ = await _post(world, pairs)
    assert status == 400, html[:2000]
    assert _sent(world) == 0
    assert "Choose who the referral goes to" in _field_block(html, "f-recipients")
    assert "date" in _field_block(html, "f-payload-individual-date_of_birth").lower()
    assert 'id="f-payload-individual-contact_numbers-error-1"' in html
    # The answers are shown again as typed.
    assert "31/01/1990" in html
