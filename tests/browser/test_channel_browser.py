"""Channel in real headless Chromium: the chair opens a case and sends case packs by
keyboard alone; panel members read theirs, download the marked PDF, and find it gone
once its access has ended.

The packs' access ends a minute or two after they are sent (the field is to the minute),
so the test waits for it in real time; the consoles run on the real clock.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.browser.conftest import USERS, Federation, check_accessibility, sign_in
from tests.browser.keyboard import (
    press_button,
    select_option,
    tick,
    type_date,
    type_datetime,
    type_into,
)
from tests.node.test_casepack_pdf import read_pages

POLICE, HEALTH, LA = "police.ctp-sw", "health.bsw-icb", "la.wiltshire"
CASE_REF = "case-wilts-browser-0001"
MARKING = "OFFICIAL-SENSITIVE - PERSONAL DATA"
# How long after the packs are composed their access ends, at least (rounded up to the
# minute the field holds): long enough to send both and read them, short enough to wait.
ACCESS_FOR = timedelta(seconds=60)
NODE_OF = {"panel-police": POLICE, "panel-health": HEALTH}


def display_name(node_id: str, username: str) -> str:
    return next(name for user, name, _ in USERS[node_id] if user == username)


def option_text(page: Any, select_id: str, value: str) -> str:
    """The visible text of a ``<select>``'s option (what a person reads, then chooses)."""
    return str(page.locator(f'#{select_id} option[value="{value}"]').inner_text()).strip()


def choose_option(page: Any, select_id: str, value: str) -> None:
    select_option(page, page.locator(f"#{select_id}"), option_text(page, select_id, value))


def path_of(page: Any) -> str:
    return urlsplit(page.url).path


def open_the_case(page: Any) -> None:
    """/cases → 'Open a Channel case' → the form, all by keyboard; a first try with the
    summary left out shows the error at its field, then the case opens."""
    page.goto("/cases")
    check_accessibility(page, "channel-cases")
    press_button(page, page.get_by_role("link", name="Open a Channel case"))
    page.wait_for_url(lambda url: urlsplit(url).path == "/cases/new")
    check_accessibility(page, "channel-case-new")
    type_into(page, page.get_by_label("Case reference"), CASE_REF)
    type_into(page, page.get_by_label("Subject reference"), "subj-wilts-browser-0001")
    for row, (node, role) in enumerate(((POLICE, "POLICE_PREVENT"), (HEALTH, "HEALTH"))):
        choose_option(page, f"f-case-members-{row}-node", node)
        choose_option(page, f"f-case-members-{row}-role", role)
    type_into(page, page.get_by_label("First names"), "Sam")
    type_into(page, page.get_by_label("Last name"), "Synthetic")
    type_date(page, page.get_by_label("Date of birth"), date(2001, 2, 3))
    tick(page, page.locator('input[name="legal_basis.powers"][value="LGA1972-s111"]'))
    choose_option(page, "f-legal_basis-art6", "UKGDPR-A6-1e")
    choose_option(page, "f-legal_basis-art9", "UKGDPR-A9-2g")
    choose_option(page, "f-legal_basis-sch1", "DPA2018-S1P2p18")
    press_button(page, page.get_by_role("button", name="Check and open the case"))
    page.locator(".govuk-error-summary").wait_for()
    assert "nothing has been sent" in page.locator(".govuk-error-summary").inner_text()
    summary = page.locator("#f-payload-case_summary-error-1")
    assert " ".join(summary.inner_text().split()) == "Error: Enter a case summary"
    assert page.locator(".govuk-error-summary__list li").count() == 1
    check_accessibility(page, "channel-case-new-error")
    # Every answer given is still there; the summary is typed and the case opens.
    assert page.get_by_label("Case reference").input_value() == CASE_REF
    type_into(
        page,
        page.get_by_label("Case summary"),
        "SYNTHETIC: referred by health; police triage found it suitable for Channel.",
    )
    press_button(page, page.get_by_role("button", name="Check and open the case"))
    page.wait_for_url(lambda url: urlsplit(url).path.startswith(f"/cases/{CASE_REF}/sent/"))
    check_accessibility(page, "channel-case-opened")


def send_pack(page: Any, member: str, expires: datetime, text: str) -> str:
    """From the case page, compose and send one member's pack by keyboard; its id."""
    page.goto(f"/cases/{CASE_REF}")
    press_button(page, page.get_by_role("link", name="Compose a case pack"))
    page.wait_for_url(lambda url: urlsplit(url).path == f"/cases/{CASE_REF}/packs/new")
    check_accessibility(page, f"channel-pack-new-{member}")
    choose_option(page, "f-recipients", member)
    type_date(page, page.get_by_label("Panel meeting date"), date.today() + timedelta(days=2))
    type_datetime(page, page.get_by_label("Access ends (UTC)"), expires)
    type_into(page, page.locator("#f-payload-prepared_by-role"), "Channel panel chair")
    select_option(page, page.get_by_label("Section 1: kind"), "Referral summary")
    type_into(page, page.get_by_label("Section 1: content"), text)
    press_button(page, page.get_by_role("button", name="Check and send the case pack"))
    page.wait_for_url(lambda url: "/sent/" in urlsplit(url).path)
    check_accessibility(page, f"channel-pack-sent-{member}")
    return path_of(page).rsplit("/", 1)[1]


def wait_for_pack(page: Any, pack_id: str, deadline: float = 30.0) -> None:
    """Reload the member's case packs until the pack has arrived (the console syncs)."""
    end = time.monotonic() + deadline
    link = page.locator(f'a[href="/case-packs/{pack_id}"]')
    while True:
        page.goto("/case-packs")
        if link.count():
            return
        assert time.monotonic() < end, f"pack {pack_id} never reached {page.url}"
        time.sleep(1.0)


def read_pack(page: Any, pack_id: str, username: str, text: str, tmp: Path) -> None:
    """The member's pack page, by keyboard from the list, then its PDF downloaded: the
    marking and the reader's name on every page."""
    reader = display_name(NODE_OF[username], username)
    check_accessibility(page, f"channel-case-packs-{username}")
    press_button(page, page.locator(f'a[href="/case-packs/{pack_id}"]'))
    page.wait_for_url(lambda url: urlsplit(url).path == f"/case-packs/{pack_id}")
    warning = page.locator(".govuk-warning-text").inner_text()
    assert "Access ends in" in warning
    assert "minute" in warning
    assert text in page.locator("main").inner_text()
    check_accessibility(page, f"channel-case-pack-{username}")
    with page.expect_download() as fetched:
        press_button(page, page.get_by_role("link", name="Download as PDF"))
    target = tmp / f"{username}.pdf"
    fetched.value.save_as(target)
    pages = read_pages(target.read_bytes())
    assert pages
    for number, one in enumerate(pages, start=1):
        assert MARKING in one.text, (reader, number)
        assert reader in one.text, (reader, number)


def assert_gone(page: Any, path: str, name: str) -> None:
    answer = page.goto(path)
    assert answer is not None
    assert answer.status == 410, f"{path}: {answer.status}"
    assert page.get_by_role("heading", name="Access to this case pack has ended").is_visible()
    body = page.locator("main").inner_text()
    assert "deleted from this node" in body
    assert CASE_REF in body
    check_accessibility(page, name)


def test_the_chair_sends_packs_that_members_read_until_access_ends(
    federation: Federation, browser: Any, tmp_path: Path
) -> None:
    chair = sign_in(browser, federation.console(LA), "chair")
    open_the_case(chair)
    # Access ends a little over a minute from now, at a whole minute (the field's unit).
    start = datetime.now(UTC)
    expires = (start + ACCESS_FOR + timedelta(seconds=59)).replace(second=0, microsecond=0)
    texts = {
        POLICE: "SYNTHETIC referral summary for the police panel member.",
        HEALTH: "SYNTHETIC referral summary for the health panel member.",
    }
    packs = {member: send_pack(chair, member, expires, text) for member, text in texts.items()}
    chair.goto(f"/cases/{CASE_REF}")
    check_accessibility(chair, "channel-case-with-packs")
    sent = chair.locator("table", has_text="Access ends").inner_text()
    for member in (POLICE, HEALTH):
        row = next(line for line in sent.splitlines() if line.startswith(member))
        assert f"{expires:%-d %b %Y %H:%M} UTC" in row, row

    readers = {POLICE: "panel-police", HEALTH: "panel-health"}
    members = {
        node: sign_in(browser, federation.console(node), user) for node, user in readers.items()
    }
    for node, page in members.items():
        wait_for_pack(page, packs[node])
        assert datetime.now(UTC) < expires - timedelta(seconds=5), "too slow to read in time"
        read_pack(page, packs[node], readers[node], texts[node], tmp_path)
    # A member holds only its own pack.
    police = members[POLICE]
    answer = police.goto(f"/case-packs/{packs[HEALTH]}")
    assert answer is not None
    assert answer.status == 404

    # After the access end: the pack and its PDF are gone, with a page saying why.
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds() + 2))
    for node, page in members.items():
        assert_gone(page, f"/case-packs/{packs[node]}", f"channel-pack-gone-{node}")
        assert_gone(page, f"/case-packs/{packs[node]}.pdf", f"channel-pack-pdf-gone-{node}")
        page.goto("/case-packs")
        row = page.locator("tr", has_text=CASE_REF)
        assert "Ended" in row.inner_text()
        assert page.locator(f'a[href="/case-packs/{packs[node]}"]').count() == 0
        check_accessibility(page, f"channel-case-packs-ended-{node}")
    # The police node's administrator finds each look at the pack in its access log.
    admin = sign_in(browser, federation.console(POLICE), "admin")
    admin.goto("/admin/access-log")
    check_accessibility(admin, "channel-access-log")
    rows = [
        line for line in admin.locator("table").inner_text().splitlines() if packs[POLICE] in line
    ]
    for action in ("view", "download", "refused-expired"):
        assert any("panel-police" in row and f"\t{action}\t" in row for row in rows), action
    for page in (chair, admin, *members.values()):
        page.context.close()
