"""The chair's Channel pages and the panel member's case pack reader, through the real app.

The chair opens a case with its panel, records consent, sends each member a case pack
with its access expiry, records the panel's outcome and a review; each form is posted as
a browser would post it (the page's own fields and defaults, with the answers given).
Every message goes through the real hub test fixture with real crypto.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from agency_adapters.node.console.channel import time_left
from tests.conftest import HubFixture
from tests.console.reading_world import HEALTH, LA, POLICE, Console, World, open_world, text_of
from tests.node.test_casepack_pdf import read_pages

ROLES = {HEALTH: ("PANEL_MEMBER",), POLICE: ("PANEL_MEMBER",), LA: ("CHANNEL_CHAIR",)}


@pytest.fixture
async def world(hub: HubFixture, tmp_path: Path) -> AsyncIterator[World]:
    opened = await open_world(hub, tmp_path, ROLES)
    try:
        yield opened
    finally:
        await opened.close()


def errors_of(html: str) -> list[str]:
    found = re.findall(r'<p class="govuk-error-message" id="([^"]+)">(.*?)</p>', html, re.S)
    return [f"{i}: {text_of(t)}" for i, t in found]


async def submit(console: Console, path: str, answers: Mapping[str, Any] | None = None) -> Any:
    html = await console.page(path)
    return await console.client.post(path, data=form_values(html, answers), allow_redirects=False)


async def sent(console: Console, path: str, answers: Mapping[str, Any]) -> str:
    """Post the form with ``answers``; it must send (303 to the sent page): where to."""
    response = await submit(console, path, answers)
    assert response.status == 303, field_errors(await response.text())
    return str(response.headers["Location"])


class _FormReader(HTMLParser):
    """The fields a browser would post for a page's form, as the page fills them."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: list[tuple[str, str]] = []
        self._select: str | None = None
        self._first: str | None = None
        self._chosen = False
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.pairs.append((a["name"], a.get("value", "on")))
            elif kind != "submit":
                self.pairs.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select, self._first, self._chosen = a.get("name"), None, False
        elif tag == "option" and self._select is not None:
            if self._first is None:
                self._first = a.get("value", "")
            if "selected" in a and not self._chosen:
                self._chosen = True
                self.pairs.append((self._select, a.get("value", "")))
        elif tag == "textarea":
            self._textarea, self._text = a.get("name"), ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None:
            if not self._chosen:
                self.pairs.append((self._select, self._first or ""))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.pairs.append((self._textarea, self._text))
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data


def form_values(
    html: str, answers: Mapping[str, str | list[str]] | None = None
) -> list[tuple[str, str]]:
    """The page's form as a browser would post it, with ``answers`` given over what it
    shows (a list answers a group of checkboxes, an empty list unticks them)."""
    reader = _FormReader()
    reader.feed(html)
    answers = dict(answers or {})
    pairs = [(n, v) for n, v in reader.pairs if n not in answers]
    for name, value in answers.items():
        for one in [value] if isinstance(value, str) else value:
            pairs.append((name, one))
    return pairs


CASE_REF = "case-wilts-test-0009"
OPEN = {
    "case_ref": CASE_REF,
    "subject_ref": "subj-test-0009",
    "case.members.0.node": POLICE,
    "case.members.0.role": "POLICE_PREVENT",
    "case.members.1.node": HEALTH,
    "case.members.1.role": "HEALTH",
    "payload.subject.forenames": "Sam",
    "payload.subject.surname": "Synthetic",
    "payload.subject.date_of_birth": "2001-02-03",
    "payload.case_summary": "Synthetic summary.",
    "legal_basis.powers": ["LGA1972-s111"],
    "legal_basis.confidentiality": [],
    "legal_basis.art6": "UKGDPR-A6-1e",
    "legal_basis.art9": "UKGDPR-A9-2g",
    "legal_basis.sch1": "DPA2018-S1P2p18",
    "consent.subject_not_to_be_told": [],
}


EMPTY_FORMS = {
    "consent/new": {
        "f-payload-outcome": "Choose the consent outcome",
        "f-payload-given_by": "Choose who gave or refused consent",
        "f-payload-consent_to": "Choose what the consent covers",
        "f-payload-method": "Choose how consent was sought",
        "f-payload-decided_at": "Enter when consent was given or refused",
        "f-payload-sought_by-role": "Enter their job title",
        "f-payload-information_given": "Enter what the person was told",
        "f-payload-right_to_withdraw_explained": "Confirm that the right to withdraw was explained",
    },
    "packs/new": {
        "f-recipients": "Choose the panel member this pack is for",
        "f-payload-meeting_date": "Enter the date of the panel meeting",
        "f-payload-prepared_by-role": "Enter their job title",
        "f-payload-sections": "Add at least one section to the pack",
    },
    "outcome/new": {
        "f-payload-outcome": "Choose the panel's decision",
        "f-payload-meeting_date": "Enter the date of the panel meeting",
        "f-payload-rationale": "Enter the reasons for the panel's decision",
    },
    "review/new": {
        "f-payload-review_point": "Choose the review point",
        "f-payload-review_date": "Enter the date of the review",
        "f-payload-reviewed_by-role": "Enter their job title",
        "f-payload-notes": "Enter the review notes",
        "f-payload-outcome": "Choose the outcome of the review",
    },
}


def field_errors(html: str) -> dict[str, list[str]]:
    """Each field's error messages (by field id), as the page shows them beside it."""
    found: dict[str, list[str]] = {}
    pattern = r'<p class="govuk-error-message" id="(f-[^"]+?)-error-\d+">(.*?)</p>'
    for anchor, message in re.findall(pattern, html, re.S):
        found.setdefault(anchor, []).append(text_of(message).removeprefix("Error: "))
    return found


def summary_links(html: str) -> list[str]:
    """The error summary's links; each goes to an element on the page."""
    summary = html.split("govuk-error-summary__list", 1)[1].split("</ul>", 1)[0]
    links = re.findall(r'href="#([^"]+)"', summary)
    for anchor in links:
        assert f'id="{anchor}"' in html, f"the error summary links to a missing #{anchor}"
    return links


async def open_case(world: World, answers: Mapping[str, Any] | None = None) -> str:
    return await sent(world.consoles[LA], "/cases/new", {**OPEN, **(answers or {})})


async def test_an_empty_open_form_says_what_to_answer_once_per_problem(world: World) -> None:
    la = world.consoles[LA]
    blank = {"case_ref": "", "subject_ref": "", "payload.case_summary": ""}
    response = await submit(la, "/cases/new", blank)
    assert response.status == 400
    html = await response.text()
    errors = field_errors(html)
    assert errors == {
        "f-case_ref": ["Enter a case reference"],
        "f-case-members": ["Choose at least one panel member and their role"],
        "f-payload-subject": ["Enter the person's first names, last name and date of birth"],
        "f-payload-case_summary": ["Enter a case summary"],
    }, errors
    # The summary links each problem once, to its field.
    assert sorted(summary_links(html)) == sorted(errors)
    assert "nothing has been sent" in html
    assert la.services.store.count_messages("out") == 0


async def test_every_step_form_left_empty_names_each_missing_answer_in_plain_words(
    world: World,
) -> None:
    await open_case(world)
    la = world.consoles[LA]
    sent = la.services.store.count_messages("out")
    for path, expected in EMPTY_FORMS.items():
        blank: dict[str, Any] = {"payload.sought_by.role": "", "payload.reviewed_by.role": ""}
        if path == "packs/new":
            blank = {"payload.prepared_by.role": ""}
        response = await submit(la, f"/cases/{CASE_REF}/{path}", blank)
        assert response.status == 400, path
        html = await response.text()
        assert field_errors(html) == {k: [v] for k, v in expected.items()}, path
        assert sorted(summary_links(html)) == sorted(expected), path
        assert "Field required" not in html, path
        assert "Tuple should" not in html, path
    assert la.services.store.count_messages("out") == sent


def local(moment: datetime) -> str:
    """A moment as a ``datetime-local`` field holds it (UTC, to the minute)."""
    return f"{moment:%Y-%m-%dT%H:%M}"


def consent_answers(world: World) -> dict[str, Any]:
    return {
        "payload.outcome": "CONSENTED",
        "payload.given_by": "SUBJECT",
        "payload.consent_to": ["CHANNEL_SUPPORT", "INFORMATION_SHARING"],
        "payload.method": "IN_PERSON_WRITTEN",
        "payload.decided_at": local(world.hub.clock() - timedelta(hours=1)),
        "payload.sought_by.role": "Channel coordinator",
        "payload.information_given": "What Channel support is, and what the panel shares.",
        "payload.right_to_withdraw_explained": "true",
    }


def pack_answers(world: World, member: str, expires: datetime, text: str) -> dict[str, Any]:
    return {
        "recipients": member,
        "payload.meeting_date": (world.hub.clock() + timedelta(days=3)).date().isoformat(),
        "payload.prepared_by.role": "Channel chair",
        "access_expires_at": local(expires),
        "payload.sections.0.kind": "REFERRAL_SUMMARY",
        "payload.sections.0.content": text,
    }


def message_id(location: str) -> str:
    return location.rsplit("/", 1)[1]


def access_actions(console: Console) -> list[tuple[str, str, str, str]]:
    return [
        (e.username, e.action, e.object_kind, e.object_id)
        for e in console.services.store.access_entries(limit=1000, offset=0)
    ]


async def consent_recorded(world: World) -> None:
    await sent(world.consoles[LA], f"/cases/{CASE_REF}/consent/new", consent_answers(world))


async def test_the_chair_runs_a_case_and_each_member_reads_its_pack_until_access_ends(
    world: World,
) -> None:
    la, police, health = world.consoles[LA], world.consoles[POLICE], world.consoles[HEALTH]
    opened = await open_case(world)
    assert opened.startswith(f"/cases/{CASE_REF}/sent/")
    assert CASE_REF in text_of(await la.page(opened))
    await consent_recorded(world)
    # A pack of its own for each member, with its own access expiry.
    now = world.hub.clock()
    police_expiry = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    health_expiry = (now + timedelta(hours=5)).replace(second=0, microsecond=0)
    pack_ids = []
    for member, expiry, text in (
        (POLICE, police_expiry, "SYNTHETIC referral summary for the police member."),
        (HEALTH, health_expiry, "SYNTHETIC referral summary for the health member."),
    ):
        answers = pack_answers(world, member, expiry, text)
        pack_ids.append(message_id(await sent(la, f"/cases/{CASE_REF}/packs/new", answers)))
    police_pack, health_pack = pack_ids
    stored = la.services.store.get(police_pack)
    assert stored is not None
    assert stored.envelope.recipients == (POLICE,)
    assert stored.access_expires_at == police_expiry
    case_page = text_of(await la.page(f"/cases/{CASE_REF}"))
    assert "Consent" in case_page
    assert POLICE in case_page
    assert HEALTH in case_page

    # The police member reads its pack, with the time left, and downloads its PDF.
    await police.sync()
    listing = text_of(await police.page("/case-packs"))
    assert CASE_REF in listing
    left = time_left(police_expiry, world.hub.clock())
    assert left.startswith("1 hour")
    assert f"Ends in {left}" in listing
    response = await police.client.get(f"/case-packs/{police_pack}")
    assert response.status == 200
    assert response.headers["Cache-Control"].startswith("no-store")
    page = text_of(await response.text())
    assert f"Access ends in {left}" in page
    assert "SYNTHETIC referral summary for the police member." in page
    assert "health member" not in page
    response = await police.client.get(f"/case-packs/{police_pack}.pdf")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/pdf"
    pages = read_pages(await response.read())
    assert pages
    for number, one in enumerate(pages, start=1):
        assert "OFFICIAL-SENSITIVE - PERSONAL DATA" in one.text, number
        assert police.user.display_name in one.text, number
    assert ("user-police", "view", "case_pack", police_pack) in access_actions(police)
    assert ("user-police", "download", "case_pack", police_pack) in access_actions(police)
    # Another member's pack is not at this node at all.
    await police.page(f"/case-packs/{health_pack}", status=404)
    # The chair's sent copy is not read through the reader.
    await la.page(f"/case-packs/{police_pack}", status=404)

    # Past the police pack's expiry: both the pack and its PDF are gone, with a page
    # saying why; the health pack (a later expiry) is still there.
    world.hub.clock.advance((police_expiry - now).total_seconds() + 60)
    for console in (la, police, health):
        console.renew()
    for path in (f"/case-packs/{police_pack}", f"/case-packs/{police_pack}.pdf"):
        response = await police.client.get(path)
        assert response.status == 410, path
        gone = text_of(await response.text())
        assert "Access to this case pack has ended" in gone
        assert f"{police_expiry:%-d %B %Y}" in gone or f"{police_expiry:%-d %b %Y}" in gone
        assert "deleted from this node" in gone
    assert ("user-police", "refused-expired", "case_pack", police_pack) in access_actions(police)
    await health.sync()
    page = text_of(await health.page(f"/case-packs/{health_pack}"))
    assert f"Access ends in {time_left(health_expiry, world.hub.clock())}" in page
    assert "SYNTHETIC referral summary for the health member." in page

    # The panel adopts the case, later the person exits, and the 6-month review follows.
    meeting = world.hub.clock().date().isoformat()
    adopted = {
        "payload.outcome": "ADOPTED",
        "payload.meeting_date": meeting,
        "payload.rationale": "SYNTHETIC: the panel agreed support is needed.",
        "payload.support_plan.0.support_type": "LIFE_SKILLS_MENTORING",
        "payload.support_plan.0.description": "Weekly mentoring sessions.",
        "payload.support_plan.0.provider": "Synthetic Mentoring Ltd",
    }
    await sent(la, f"/cases/{CASE_REF}/outcome/new", adopted)
    exited = {
        "payload.outcome": "EXITED",
        "payload.meeting_date": meeting,
        "payload.rationale": "SYNTHETIC: susceptibility reduced.",
        "payload.exit_date": meeting,
        "payload.exit_reason": "SUSCEPTIBILITY_REDUCED",
    }
    await sent(la, f"/cases/{CASE_REF}/outcome/new", exited)
    review = {
        "payload.review_point": "6_MONTHS",
        "payload.review_date": meeting,
        "payload.reviewed_by.role": "Channel chair",
        "payload.notes": "SYNTHETIC: no further concerns.",
        "payload.outcome": "NO_FURTHER_CONCERNS",
    }
    await sent(la, f"/cases/{CASE_REF}/review/new", review)
    view = await la.services.client.case_state(CASE_REF)
    assert view["stage"] == "EXITED"
    assert view["reviews_done"] == ["6_MONTHS"]
    case_page = text_of(await la.page(f"/cases/{CASE_REF}"))
    assert "6 months after exit" in case_page
    assert ("user-la", "view", "case", CASE_REF) in access_actions(la)


async def pack_refused(world: World, answers: Mapping[str, Any]) -> dict[str, list[str]]:
    la = world.consoles[LA]
    before = la.services.store.count_messages("out")
    response = await submit(la, f"/cases/{CASE_REF}/packs/new", answers)
    assert response.status == 400
    html = await response.text()
    assert "nothing has been sent" in html
    assert la.services.store.count_messages("out") == before
    assert summary_links(html)
    return field_errors(html)


async def test_a_pack_with_a_bad_expiry_or_to_a_stranger_is_refused_at_its_field(
    world: World,
) -> None:
    await open_case(world)
    await consent_recorded(world)
    now = world.hub.clock()
    good = pack_answers(world, POLICE, now + timedelta(days=1), "SYNTHETIC summary.")
    past = await pack_refused(world, {**good, "access_expires_at": local(now - timedelta(hours=1))})
    assert past == {"f-access_expires_at": [past["f-access_expires_at"][0]]}
    assert past["f-access_expires_at"][0].startswith("WF-10 a case pack needs an access expiry")
    assert await pack_refused(world, {**good, "access_expires_at": ""}) == {
        "f-access_expires_at": ["Enter the date and time access to the pack ends"]
    }
    assert await pack_refused(world, {**good, "access_expires_at": "next Tuesday"}) == {
        "f-access_expires_at": ["Enter a real date and time, for example 2026-12-20T17:00"]
    }
    # Only a current panel member gets a pack (WF-09), said beside the member field.
    html = await world.consoles[LA].page(f"/cases/{CASE_REF}/packs/new")
    assert "education.stranger" in html
    stranger = await pack_refused(world, {**good, "recipients": "education.stranger"})
    assert list(stranger) == ["f-recipients"]
    assert len(stranger["f-recipients"]) == 1
    assert stranger["f-recipients"][0].startswith("WF-09 not current panel members")
    # A section's content left out while its kind is chosen: one error, at the content.
    no_content = await pack_refused(world, {**good, "payload.sections.0.content": ""})
    assert no_content == {"f-payload-sections-0-content": ["Enter the section's content"]}


async def test_wrong_answers_on_the_step_forms_are_said_where_they_are(world: World) -> None:
    await open_case(world)
    la = world.consoles[LA]
    consent = consent_answers(world)
    errors = await refused(
        la, f"/cases/{CASE_REF}/consent/new", {**consent, "payload.given_by": "PARENT_OR_GUARDIAN"}
    )
    assert errors == {
        "f-payload-parent_or_guardian-name": [
            "Enter the parent or guardian who gave or refused consent"
        ]
    }
    errors = await refused(
        la, f"/cases/{CASE_REF}/consent/new", {**consent, "payload.decided_at": "2026-02-30T10:00"}
    )
    assert errors == {"f-payload-decided_at": ["Enter a real date and time"]}
    # A review before the person exits Channel support (WF-12): one error, at the top.
    review = {
        "payload.review_point": "6_MONTHS",
        "payload.review_date": world.hub.clock().date().isoformat(),
        "payload.reviewed_by.role": "Channel chair",
        "payload.notes": "SYNTHETIC notes.",
        "payload.outcome": "NO_FURTHER_CONCERNS",
    }
    response = await submit(la, f"/cases/{CASE_REF}/review/new", review)
    assert response.status == 400
    html = await response.text()
    assert summary_links(html) == ["form-top"]
    assert "WF-12" in text_of(html)
    adopted_without_plan = {
        "payload.outcome": "ADOPTED",
        "payload.meeting_date": world.hub.clock().date().isoformat(),
        "payload.rationale": "SYNTHETIC reasons.",
    }
    errors = await refused(la, f"/cases/{CASE_REF}/outcome/new", adopted_without_plan)
    assert errors == {
        "f-payload-support_plan": ["Add the support plan when the case is adopted, and only then"]
    }
    assert la.services.store.count_messages("out") == 1  # the opening only


async def refused(console: Console, path: str, answers: Mapping[str, Any]) -> dict[str, list[str]]:
    response = await submit(console, path, answers)
    assert response.status == 400, path
    html = await response.text()
    assert sorted(set(summary_links(html))) == sorted(field_errors(html)), path
    return field_errors(html)


async def test_every_channel_form_needs_the_csrf_token_and_the_chair_role(world: World) -> None:
    await open_case(world)
    la, police = world.consoles[LA], world.consoles[POLICE]
    paths = ["/cases/new", *(f"/cases/{CASE_REF}/{path}" for path in EMPTY_FORMS)]
    before = la.services.store.count_messages("out")
    for path in paths:
        html = await la.page(path)
        pairs = [(n, v) for n, v in form_values(html, OPEN) if n != "csrf_token"]
        response = await la.client.post(path, data=pairs, allow_redirects=False)
        assert response.status == 403, path
        response = await la.client.post(
            path, data=[*pairs, ("csrf_token", "wrong")], allow_redirects=False
        )
        assert response.status == 403, path
    assert la.services.store.count_messages("out") == before
    # A panel member reads packs; it does not run cases.
    for path in ["/cases", f"/cases/{CASE_REF}", *paths]:
        await police.page(path, status=403)
        response = await police.post(path, {})
        assert response.status in (403, 405), path
    assert police.services.store.count_messages("out") == 0


async def test_a_pack_section_missing_its_detail_says_what_to_add_at_the_section(
    world: World,
) -> None:
    await open_case(world)
    good = pack_answers(world, POLICE, world.hub.clock() + timedelta(days=1), "SYNTHETIC.")
    plan = {
        "payload.sections.4.kind": ["PROPOSED_SUPPORT_PLAN"],
        "payload.sections.4.content": "Plan.",
    }
    returned = {
        "payload.sections.5.kind": ["PARTNER_RETURN"],
        "payload.sections.5.content": "Given.",
    }
    assert await pack_refused(world, {**good, **plan}) == {
        "f-payload-sections-4-support_plan": [
            "Say how consent to the support will be sought and add at least one support item"
        ]
    }
    assert await pack_refused(world, {**good, **returned}) == {
        "f-payload-sections-5-partner_return": [
            "Say who provided the information and the gateway it was given under"
        ]
    }
    half_plan = {**plan, "payload.sections.4.support_plan.consent_request.how": "In person"}
    assert await pack_refused(world, {**good, **half_plan}) == {
        "f-payload-sections-4-support_plan": ["Add at least one support item"],
        "f-payload-sections-4-support_plan-consent_request-by_whom": [
            "Enter who will seek consent"
        ],
    }
    half_return = {**returned, "payload.sections.5.partner_return.provided_by": "Police"}
    assert await pack_refused(world, {**good, **half_return}) == {
        "f-payload-sections-5-partner_return-gateway_ids": [
            "Choose the gateway the information was given under"
        ]
    }
    # A broken policy rule says its id, what it means and its source, at its field (MK-10).
    official = await pack_refused(
        world, {**good, "marking.sensitive": "false", "marking.descriptors": []}
    )
    assert list(official) == ["f-marking-sensitive"]
    assert official["f-marking-sensitive"][0].startswith("MK-10 a case pack must be marked")
    assert "(source: REFERENCE" in official["f-marking-sensitive"][0]
    # Filled in, the same sections go.
    full = {
        **good,
        **half_plan,
        "payload.sections.4.support_plan.consent_request.by_whom": "The Channel coordinator",
        "payload.sections.4.support_plan.items.0.support_type": "LIFE_SKILLS_MENTORING",
        "payload.sections.4.support_plan.items.0.description": "Weekly mentoring.",
        "payload.sections.4.support_plan.items.0.provider": "Synthetic Mentoring Ltd",
        **half_return,
        "payload.sections.5.partner_return.gateway_ids": "CDA1998-s115",
    }
    pack = message_id(await sent(world.consoles[LA], f"/cases/{CASE_REF}/packs/new", full))
    await world.consoles[POLICE].sync()
    page = text_of(await world.consoles[POLICE].page(f"/case-packs/{pack}"))
    assert "Weekly mentoring." in page
    assert "Given under CDA1998-s115" in page


async def test_a_case_reference_in_use_is_refused_beside_it(world: World) -> None:
    await open_case(world)
    la = world.consoles[LA]
    errors = await refused(la, "/cases/new", OPEN)
    assert list(errors) == ["f-case_ref"]
    assert errors["f-case_ref"] == [f"Case reference {CASE_REF} is already in use: choose another"]
    assert la.services.store.count_messages("out") == 1
    errors = await refused(la, "/cases/new", {**OPEN, "case_ref": "case/0001 Sam"})
    assert errors == {
        "f-case_ref": [
            "Use 3 to 80 letters, numbers, dots, dashes, colons or underscores, "
            "starting with a letter or number"
        ]
    }
    # The chair's list shows the one case, linked to its page.
    listing = await la.page("/cases")
    assert listing.count(f'href="/cases/{CASE_REF}"') == 1
