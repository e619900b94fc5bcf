"""The new information request page in real Chromium, filled by keyboard alone.

The police Prevent officer first writes the careless request (a category with no period
and no reason, citing only the Schedule 2 crime exemption, consent not sought without a
reason): the console refuses it on screen, each rule beside its field, and sends nothing.
The officer corrects it as the demo does (hub/cli/story.py): three named categories with
periods and justifications, the gateways health relies on, the reason consent was not
sought. It is sent; the health safeguarding lead finds it in the inbox (the console's
background sync runs every 2 s) and opens it. axe-core checks every page on the way.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from tests.browser.conftest import Federation, check_accessibility, sign_in
from tests.browser.keyboard import choose, press_button, select_option, tick, type_into

POLICE, HEALTH = "police.ctp-sw", "health.bsw-icb"
SUBJECT = "subj-demo-0001"
# The corrected request's categories and how far back each goes (hub/cli/story.py).
CATEGORIES = {"mental_health_diagnoses": 365, "medication": 365, "ae_attendance": 180}


def _option_text(page: Any, select_id: str, value: str) -> str:
    return str(page.locator(f"#{select_id} option[value='{value}']").inner_text()).strip()


def _error_at(page: Any, field_id: str) -> str:
    return str(page.locator(f"[id^='{field_id}-error-']").all_inner_texts())


def _submit(page: Any, name: str) -> None:
    with page.expect_navigation():
        press_button(page, page.get_by_role("button", name=name))


def test_officer_writes_a_request_by_keyboard_and_health_opens_it(
    federation: Federation, browser: Any
) -> None:
    today = datetime.now(UTC).date()
    page = sign_in(browser, federation.console(POLICE), "officer")
    page.goto("/requests")
    check_accessibility(page, "requests-tracker-police")
    with page.expect_navigation():
        press_button(page, page.locator("#new-request"))
    assert urlsplit(page.url).path == "/requests/new"
    check_accessibility(page, "request-new")

    # --- the careless draft -------------------------------------------------------
    health_name = _option_text(page, "f-recipients", HEALTH)
    select_option(page, page.locator("#f-recipients"), health_name)
    _submit(page, "Show the choices for this organisation")
    assert "NHS body" in page.locator("#recipient-types").inner_text()
    type_into(page, page.locator("#f-subject_ref"), SUBJECT)
    type_into(page, page.locator("#f-payload-subject-forenames"), "Alex")
    type_into(page, page.locator("#f-payload-subject-surname"), "Example")
    type_into(page, page.locator("#f-payload-subject-date_of_birth"), "1990-01-31")
    first = _option_text(page, "f-scope-0-category", "mental_health_diagnoses")
    select_option(page, page.locator("#f-scope-0-category"), first)
    tick(page, page.locator("input[name='legal_basis.exemptions'][value='DPA2018-S2P1p2']"))
    select_option(page, page.locator("#f-consent-state"), "Not sought")
    select_option(page, page.locator("#f-consent-subject_age"), "18 or over")
    _submit(page, "Check and send the request")

    summary = page.locator(".govuk-error-summary").inner_text()
    assert "nothing has been sent" in summary
    for rule in ("GW-EX", "GW-01", "GW-02", "SCOPE-05", "SCOPE-08", "CS-02"):
        assert rule in summary, rule
    assert "GW-EX" in _error_at(page, "f-legal_basis-exemptions")
    assert "GW-01" in _error_at(page, "f-legal_basis-powers")
    assert "SCOPE-08" in _error_at(page, "f-scope-0-justification")
    assert "SCOPE-05" in _error_at(page, "f-scope-0-period_from") + _error_at(
        page, "f-scope-0-period_to"
    )
    assert "CS-02" in _error_at(page, "f-consent-reason_code")
    # Each error says what the rule is and where it comes from.
    assert "The rule:" in _error_at(page, "f-legal_basis-exemptions")
    check_accessibility(page, "request-new-refused")

    # --- corrected: named categories, periods, justifications, proper gateways -------
    rows = list(CATEGORIES.items())
    for index, (category, days) in enumerate(rows):
        if index > 0:
            _submit(page, "Add another category")
            assert page.locator(f"#f-scope-{index}-category").count() == 1
            label = _option_text(page, f"f-scope-{index}-category", category)
            select_option(page, page.locator(f"#f-scope-{index}-category"), label)
        prefix = f"#f-scope-{index}-"
        type_into(page, page.locator(prefix + "period_from"), str(today - timedelta(days=days)))
        type_into(page, page.locator(prefix + "period_to"), str(today - timedelta(days=1)))
        type_into(
            page,
            page.locator(prefix + "justification"),
            f"Needed to assess vulnerability ({category}).",
        )
    tick(page, page.locator("input[name='legal_basis.powers'][value='CDA1998-s115']"))
    tick(page, page.locator("input[name='legal_basis.confidentiality'][value='CLDC-PUBINT']"))
    choose(page, page.locator("input[name='legal_basis.art6'][value='UKGDPR-A6-1e']"))
    choose(page, page.locator("input[name='legal_basis.art9'][value='UKGDPR-A9-2g']"))
    choose(page, page.locator("input[name='legal_basis.sch1'][value='DPA2018-S1P2p10']"))
    tick(
        page,
        page.locator("input[name='legal_basis.exemptions'][value='DPA2018-S2P1p2']"),
        checked=False,
    )
    select_option(
        page, page.locator("#f-consent-reason_code"), "Seeking it would prejudice the outcome"
    )
    type_into(
        page,
        page.locator("#f-payload-consent_not_sought_reason"),
        "Informing the person may prejudice the outcome.",
    )
    _submit(page, "Check and send the request")

    assert urlsplit(page.url).path.startswith("/requests/sent/"), page.locator(
        ".govuk-error-summary"
    ).all_inner_texts()
    message_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    assert "Information request sent" in page.locator("h1").inner_text()
    assert "Accepted by" in page.locator("#receipt").inner_text()
    sent_scope = page.locator("#sent-scope").inner_text()
    for category in CATEGORIES:
        assert category in sent_scope
    check_accessibility(page, "request-sent")
    with page.expect_navigation():
        press_button(page, page.get_by_role("link", name="Back to the requests tracker"))
    sent_table = page.locator("#requests-sent")
    assert sent_table.locator(f"a[href='/messages/{message_id}']").count() == 1
    check_accessibility(page, "requests-tracker-after-send")
    page.context.close()

    # --- health sees it in the inbox and opens it -------------------------------------
    lead = sign_in(browser, federation.console(HEALTH), "lead")
    link = lead.locator(f"a[href='/messages/{message_id}']")
    deadline = time.monotonic() + 20
    while link.count() == 0 and time.monotonic() < deadline:
        time.sleep(1)
        lead.reload()
    assert link.count() == 1, "the request never reached health's inbox"
    check_accessibility(lead, "inbox-health-request")
    with lead.expect_navigation():
        press_button(lead, link)
    assert urlsplit(lead.url).path == f"/messages/{message_id}"
    scope_table = lead.locator("#scope").inner_text()
    for category in CATEGORIES:
        assert f"Needed to assess vulnerability ({category})." in scope_table
    check_accessibility(lead, "message-health-request")
    lead.context.close()
