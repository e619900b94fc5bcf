"""The chair's Channel pages and the panel member's case pack reader, through the real app.

The chair opens a case with its panel, records consent, sends each member a case pack
with its access expiry, records the panel's outcome and a review; each form is posted as
a browser would post it (the page's own fields and defaults, with the answers given).
Every message goes through the real hub test fixture with real crypto.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HubFixture
from tests.console.reading_world import HEALTH, LA, POLICE, Console, World, open_world, text_of

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
    summary = html.split("govuk-error-summary__list", 1)[1].split("</ul>", 1)[0]
    return re.findall(r'href="#([^"]+)"', summary)


async def open_case(world: World, answers: Mapping[str, Any] | None = None) -> str:
    la = world.consoles[LA]
    response = await submit(la, "/cases/new", {**OPEN, **(answers or {})})
    assert response.status == 303, field_errors(await response.text())
    return str(response.headers["Location"])


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
        assert "Field required" not in html, path
        assert "Tuple should" not in html, path
    assert la.services.store.count_messages("out") == sent
