"""The new referral page in real Chromium, filled by keyboard alone.

Health's safeguarding lead opens "New referral" from the navigation, picks the
individual's area (the demo writes health's console.toml route, Wiltshire -> the council
and the police), and fills the National Prevent Referral Form but leaves out the
description of the concerns: the console refuses it on screen, the error beside that
field, and sends nothing. The lead describes the concerns and sends it; the council's
Channel chair and the police Prevent officer both find it in their inboxes (the consoles'
background sync runs every 2 s) and open it. axe-core checks every page on the way.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from agency_adapters.node.console.settings import load_console_toml
from tests.browser.conftest import Federation, check_accessibility, sign_in
from tests.browser.keyboard import choose, press_button, select_option, tick, type_into
from tests.browser.test_request_form_browser import _error_at, _option_text, _submit

HEALTH, POLICE, LA = "health.bsw-icb", "police.ctp-sw", "la.wiltshire"
SUBJECT = "subj-demo-0002"
DESCRIPTION = "Has repeatedly shared extremist material with peers (SYNTHETIC, browser)."


def _ticked(page: Any) -> set[str]:
    boxes = page.locator("input[name='recipients']")
    return {
        str(boxes.nth(i).get_attribute("value"))
        for i in range(boxes.count())
        if boxes.nth(i).is_checked()
    }


def _fill(page: Any, name: str, text: str) -> None:
    type_into(page, page.locator(f"[name='{name}']"), text)


def _yes_no(page: Any, name: str, answer: bool) -> None:
    choose(page, page.locator(f"input[name='{name}'][value='{'true' if answer else 'false'}']"))


def _open_in_inbox(browser: Any, federation: Federation, node: str, user: str, mid: str) -> None:
    page = sign_in(browser, federation.console(node), user)
    link = page.locator(f"a[href='/messages/{mid}']")
    deadline = time.monotonic() + 20
    while link.count() == 0 and time.monotonic() < deadline:
        time.sleep(1)
        page.reload()
    assert link.count() == 1, f"the referral never reached {node}'s inbox"
    check_accessibility(page, f"inbox-{node}-referral")
    with page.expect_navigation():
        press_button(page, link)
    assert urlsplit(page.url).path == f"/messages/{mid}"
    form = page.locator("#referral-form").inner_text()
    for posted in (DESCRIPTION, "Riverside", "Robin", "Telling them could prejudice it."):
        assert posted in form, (node, posted)
    check_accessibility(page, f"message-{node}-referral")
    page.context.close()


def test_lead_refers_by_keyboard_and_la_and_police_open_it(
    federation: Federation, browser: Any
) -> None:
    # The demo kept health's route for Wiltshire in its console.toml.
    routes = load_console_toml(federation.console(HEALTH).node_dir / "console.toml")
    assert routes == {"Wiltshire": (LA, POLICE)}

    page = sign_in(browser, federation.console(HEALTH), "lead")
    check_accessibility(page, "inbox-health-lead")
    with page.expect_navigation():
        press_button(page, page.get_by_role("link", name="New referral"))
    assert urlsplit(page.url).path == "/referrals/new"
    check_accessibility(page, "referral-new")

    # --- the area's route ticks the council and the police --------------------------
    assert _ticked(page) == set()
    select_option(page, page.locator("#f-_area"), "Wiltshire")
    _submit(page, "Fill in the recipients for this area")
    assert _ticked(page) == {LA, POLICE}

    # --- the form, without the description of the concerns ---------------------------
    p = "payload."
    _fill(page, "subject_ref", SUBJECT)
    _fill(page, p + "individual.forenames", "Sam")
    _fill(page, p + "individual.surname", "Riverside")
    _fill(page, p + "individual.date_of_birth", "1995-05-17")
    _fill(page, p + "individual.addresses.0.lines", "2 Synthetic Road")
    tick(page, page.locator(f"[name='{p}individual.addresses.0.current_residence']"))
    _fill(page, p + "concerns.online_activity", "Shares videos from a forum (SYNTHETIC).")
    tick(page, page.locator(f"input[name='{p}complex_needs.indicators'][value='AUTISM']"))
    originator = p + "person_who_first_identified_concern."
    _fill(page, originator + "forenames", "Robin")
    _fill(page, originator + "surname", "Placeholder")
    _fill(page, originator + "professional_role", "Practice nurse")
    _fill(page, originator + "organisation", "Synthetic Health Centre")
    _fill(page, originator + "telephone", "01632 960003")
    _yes_no(page, originator + "wishes_to_remain_anonymous", False)
    # The lead making the referral is filled in from the sign-in; the form wants a contact.
    _fill(page, p + "person_making_referral.telephone", "01632 960004")
    informed = p + "safeguarding_considerations.informed_individual."
    _yes_no(page, informed + "informed", False)
    _fill(page, informed + "reason_not_informed", "Telling them could prejudice it.")
    _fill(page, p + "consent_not_sought_statement", "Seeking consent would prejudice it.")
    for power in ("CDA1998-s115", "CTSA2015-s38"):
        tick(page, page.locator(f"input[name='legal_basis.powers'][value='{power}']"))
    for field, value in (
        ("art6", "UKGDPR-A6-1e"),
        ("art9", "UKGDPR-A9-2g"),
        ("sch1", "DPA2018-S1P2p18"),
    ):
        select_id = f"f-legal_basis-{field}"
        select_option(page, page.locator(f"#{select_id}"), _option_text(page, select_id, value))
    tick(page, page.locator("input[name='legal_basis.confidentiality'][value='CLDC-PUBINT']"))
    select_option(page, page.locator("#f-consent-state"), "Not sought")
    select_option(
        page, page.locator("#f-consent-reason_code"), "Seeking it would prejudice the outcome"
    )
    select_option(page, page.locator("#f-consent-subject_age"), "18 or over")
    _submit(page, "Check and send the referral")

    summary = page.locator(".govuk-error-summary").inner_text()
    assert "nothing has been sent" in summary
    assert "Answer this question" in _error_at(page, "f-payload-concerns-description")
    assert page.locator("#f-payload-concerns-description.govuk-textarea--error").count() == 1
    check_accessibility(page, "referral-new-refused")

    # --- completed and sent -----------------------------------------------------------
    _fill(page, p + "concerns.description", DESCRIPTION)
    _submit(page, "Check and send the referral")
    assert urlsplit(page.url).path.startswith("/referrals/sent/"), page.locator(
        ".govuk-error-summary"
    ).all_inner_texts()
    message_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    assert "Prevent referral sent" in page.locator("h1").inner_text()
    assert "Accepted by" in page.locator("#receipt").inner_text()
    sent_to = page.locator("#sent-to").inner_text()
    assert LA in sent_to
    assert POLICE in sent_to
    check_accessibility(page, "referral-sent")
    page.context.close()

    # --- the council's chair and the police officer both open it -----------------------
    _open_in_inbox(browser, federation, LA, "chair", message_id)
    _open_in_inbox(browser, federation, POLICE, "officer", message_id)
