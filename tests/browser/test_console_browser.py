"""The node console in real headless Chromium: sign-in, the inbox, accessibility, keyboard.

The federation is a kept demo, so every node's inbox already holds the demo's messages.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tests.browser.conftest import (
    INSECURE_TEST_PASSWORD,
    Federation,
    check_accessibility,
    sign_in,
)
from tests.browser.keyboard import type_into, unreachable_controls

POLICE, HEALTH, LA = "police.ctp-sw", "health.bsw-icb", "la.wiltshire"


def test_sign_in_page_is_accessible_and_works_by_keyboard_alone(
    federation: Federation, browser: Any
) -> None:
    console = federation.console(POLICE)
    context = browser.new_context(base_url=console.url)
    page = context.new_page()
    page.goto("/inbox")
    # No session: the page sends you to sign in, and remembers where you were going.
    assert "/sign-in" in page.url
    check_accessibility(page, "sign-in")
    # Keyboard only: Tab to each field, type, Enter submits.
    type_into(page, page.get_by_label("Username"), "officer")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "password"
    page.keyboard.type(INSECURE_TEST_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == "/inbox")
    assert page.get_by_role("heading", name="Inbox").is_visible()
    context.close()


def test_a_wrong_password_gets_one_answer_for_every_reason(
    federation: Federation, browser: Any
) -> None:
    console = federation.console(HEALTH)
    context = browser.new_context(base_url=console.url)
    page = context.new_page()
    page.goto("/sign-in")
    page.get_by_label("Username").fill("lead")
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_text("There is a problem").is_visible()
    wrong = page.locator(".govuk-error-summary").inner_text()
    page.get_by_label("Username").fill("nobody-here")
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    assert page.locator(".govuk-error-summary").inner_text() == wrong
    check_accessibility(page, "sign-in-refused")
    context.close()


def test_inbox_shows_the_demo_messages_with_their_marking(
    federation: Federation, browser: Any
) -> None:
    page = sign_in(browser, federation.console(POLICE), "officer")
    banners = page.locator(".seh-marking__text")
    assert banners.count() == 2
    assert "OFFICIAL-SENSITIVE" in banners.first.inner_text()
    assert page.locator("table.govuk-table a", has_text="Referral").first.is_visible()
    check_accessibility(page, "inbox")
    page.locator("table.govuk-table a", has_text="Referral").first.click()
    page.wait_for_url(lambda url: urlsplit(url).path.startswith("/messages/"))
    assert "OFFICIAL-SENSITIVE" in page.locator(".seh-marking__text").last.inner_text()
    check_accessibility(page, "message-referral")
    page.context.close()


def test_the_other_pages_are_accessible_and_marked(federation: Federation, browser: Any) -> None:
    """Every section a role opens from the navigation passes axe-core, marked at both ends."""
    visits = [
        (POLICE, "officer", "/requests", "requests"),
        (POLICE, "officer", "/sent", "sent"),
        (HEALTH, "auditor", "/audit", "audit"),
        (HEALTH, "auditor", "/audit/assurance?period=2026Q4", "audit-assurance"),
        (HEALTH, "auditor", "/audit/disclosures?subject_ref=subj-demo-0001", "audit-register"),
        (LA, "chair", "/cases", "cases"),
        (LA, "chair", "/cases/case-wilts-demo-0001", "case"),
        (LA, "admin", "/admin", "admin"),
        (LA, "admin", "/admin/access-log", "access-log"),
    ]
    pages: dict[tuple[str, str], Any] = {}
    for node_id, username, path, name in visits:
        key = (node_id, username)
        if key not in pages:
            pages[key] = sign_in(browser, federation.console(node_id), username)
        page = pages[key]
        answer = page.goto(path)
        assert answer is not None
        assert answer.status == 200, f"{path}: {answer.status}"
        assert page.locator(".seh-marking__text").count() == 2, path
        check_accessibility(page, name)
        if name == "case":
            assert "OFFICIAL-SENSITIVE" in page.locator(".seh-marking__text").first.inner_text()
    # The access log the admin reads names the chair's view of the case.
    log_page = pages[(LA, "admin")]
    log_page.goto("/admin/access-log")
    assert "case-wilts-demo-0001" in log_page.locator("table").inner_text()
    for page in pages.values():
        page.context.close()


def test_every_form_is_accessible_and_reachable_by_keyboard_alone(
    federation: Federation, browser: Any
) -> None:
    """Each form's every field, radio group, select and button is reached by Tab alone
    (the flows that fill them by keyboard are in the other browser tests), and passes axe."""
    forms = [
        (POLICE, "officer", "/inbox", "form-inbox"),
        (POLICE, "officer", "/sent", "form-sent"),
        (POLICE, "officer", "/requests", "form-requests"),
        (POLICE, "officer", "/requests/new", "form-request-new"),
        (HEALTH, "lead", "/referrals/new", "form-referral-new"),
        (HEALTH, "auditor", "/audit", "form-audit"),
        (LA, "chair", "/cases/new", "form-case-new"),
        (LA, "chair", "/cases/case-wilts-demo-0001/consent/new", "form-consent"),
        (LA, "chair", "/cases/case-wilts-demo-0001/outcome/new", "form-outcome"),
        (LA, "chair", "/cases/case-wilts-demo-0001/review/new", "form-review"),
        (LA, "chair", "/cases/case-wilts-demo-0001/packs/new", "form-pack"),
    ]
    pages: dict[tuple[str, str], Any] = {}
    problems: dict[str, list[str]] = {}
    for node_id, username, path, name in forms:
        key = (node_id, username)
        if key not in pages:
            pages[key] = sign_in(browser, federation.console(node_id), username)
        page = pages[key]
        answer = page.goto(path)
        assert answer is not None
        assert answer.status == 200, f"{path}: {answer.status}"
        check_accessibility(page, name)
        missed = unreachable_controls(page)
        if missed:
            problems[path] = missed
    assert not problems, f"controls Tab never reaches: {problems}"
    for page in pages.values():
        page.context.close()
