"""Deciding a request and releasing it, in real Chromium, by keyboard alone.

Police send health a request for three categories (by ``hub node submit``, as a script
would; the form is tested in test_request_form_browser.py). Health's Caldicott Guardian
opens it, decides category by category (first forgetting to say why anything is
withheld, which the page refuses at the field), releases two and withholds one; the
release preview shows exactly what goes and what is withheld and why; confirming sends
it. The police officer then reads the release. axe-core checks every page on the way.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hub.model.examples import synthetic_information_request
from tests.browser.conftest import Federation, check_accessibility, hub_cli, sign_in
from tests.browser.keyboard import choose, press_button, select_option, type_into

POLICE, HEALTH = "police.ctp-sw", "health.bsw-icb"
SUBJECT = "subj-demo-0001"
CATEGORIES = {"mental_health_diagnoses": 365, "medication": 365, "ae_attendance": 180}


def _submit_request(federation: Federation, folder: Path) -> str:
    today = datetime.now(UTC).date()
    envelope = {
        "kind": "information_request",
        "author": {
            "user_ref": "usr-browser-0001",
            "role": "PREVENT_POLICE_OFFICER",
            "vetting": "SC",
        },
        "recipients": [HEALTH],
        "marking": {"tier": "OFFICIAL", "sensitive": True, "descriptors": ["PERSONAL_DATA"]},
        "subject_ref": SUBJECT,
        "purpose": "PREVENT_TRIAGE",
        "legal_basis": {
            "powers": ["CDA1998-s115"],
            "art6": "UKGDPR-A6-1e",
            "art9": "UKGDPR-A9-2g",
            "sch1": "DPA2018-S1P2p10",
            "confidentiality": ["CLDC-PUBINT"],
        },
        "consent": {
            "state": "NOT_SOUGHT",
            "reason_code": "WOULD_PREJUDICE_OUTCOME",
            "subject_age": "ADULT",
        },
        "urgency": "routine",
        "scope": [
            {
                "category": category,
                "period_from": (today - timedelta(days=days)).isoformat(),
                "period_to": (today - timedelta(days=1)).isoformat(),
                "justification_present": True,
            }
            for category, days in CATEGORIES.items()
        ],
    }
    payload = synthetic_information_request(1, categories=list(CATEGORIES))
    draft = folder / "request.json"
    draft.write_text(
        json.dumps(
            {
                "envelope": envelope,
                "payload": {
                    "media_type": "application/json",
                    "content": json.loads(payload.model_dump_json()),
                },
            }
        )
    )
    police = federation.console(POLICE).node_dir
    done = hub_cli("node", "submit", "--node", police, draft, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return str(json.loads(done.stdout)["message_id"])


def _wait_for_link(page: Any, href: str, what: str) -> Any:
    link = page.locator(f"a[href='{href}']")
    deadline = time.monotonic() + 25
    while link.count() == 0 and time.monotonic() < deadline:
        time.sleep(1)
        page.reload()
    assert link.count() >= 1, f"{what} never arrived"
    return link.first


def _submit(page: Any, name: str) -> None:
    with page.expect_navigation():
        press_button(page, page.get_by_role("button", name=name))


def test_caldicott_guardian_decides_in_part_releases_and_police_read_it(
    federation: Federation, browser: Any, tmp_path: Path
) -> None:
    request_id = _submit_request(federation, tmp_path)

    # --- health's Caldicott Guardian finds the request and opens the decision form ------
    page = sign_in(browser, federation.console(HEALTH), "caldicott")
    link = _wait_for_link(page, f"/messages/{request_id}", "the request")
    with page.expect_navigation():
        press_button(page, link)
    with page.expect_navigation():
        press_button(page, page.locator("#decide"))
    assert urlsplit(page.url).path == f"/messages/{request_id}/decide"
    check_accessibility(page, "decide")

    # --- first attempt: withholds A&E but gives no reason --------------------------------
    choose(page, page.locator("#f-scope-0-choice-1"))  # release diagnoses
    choose(page, page.locator("#f-scope-1-choice-1"))  # release medication
    choose(page, page.locator("#f-scope-2-choice-2"))  # withhold A&E attendance
    type_into(
        page,
        page.locator("#f-payload-rationale"),
        "Diagnoses and medication bear on vulnerability; A&E attendance does not.",
    )
    type_into(
        page,
        page.locator("#f-payload-public_interest_considerations"),
        "The risk of serious harm to the person and others outweighs confidentiality.",
    )
    choose(page, page.locator("#f-payload-subject_informed-informed-2"))  # not told
    type_into(
        page,
        page.locator("#f-payload-subject_informed-reason_not_informed"),
        "Telling them may prejudice the Prevent assessment.",
    )
    _submit(page, "Check and send the decision")
    assert urlsplit(page.url).path == f"/messages/{request_id}/decide"
    summary = page.locator(".govuk-error-summary").inner_text()
    assert "nothing has been sent" in summary
    reason_error = page.locator("[id^='f-reason_code-error-']").all_inner_texts()
    assert any("Choose the reason" in text for text in reason_error), reason_error
    # The answers given are kept.
    assert page.locator("#f-scope-2-choice-2").is_checked()
    check_accessibility(page, "decide-refused")

    # --- corrected: the reason, and the consultation of the IG officer ----------------
    choose(page, page.locator("input[name='reason_code'][value='MINIMUM_NECESSARY']"))
    select_option(page, page.locator("#f-consultation-role"), "The Information Governance officer")
    type_into(page, page.locator("#f-consultation-advice"), "Share diagnoses and medication.")
    _submit(page, "Check and send the decision")
    assert urlsplit(page.url).path.endswith("/release"), page.locator(
        ".govuk-error-summary"
    ).all_inner_texts()
    decision_id = urlsplit(page.url).path.split("/")[2]

    # --- the preview: what goes, what is withheld and why ------------------------------
    goes = page.locator("#goes").inner_text()
    assert "mental_health_diagnoses" in goes
    assert "medication" in goes
    assert "ae_attendance" not in goes
    withheld = page.locator("#withheld").inner_text()
    assert "A&E and urgent care attendance: not approved by the decision" in withheld
    assert "outside the approved categories or periods" in withheld
    check_accessibility(page, "release-preview")
    _submit(page, "Confirm and send the release")
    release_path = urlsplit(page.url).path
    assert release_path.startswith("/messages/"), page.url
    release_id = release_path.rsplit("/", 1)[1]
    assert release_id != decision_id
    assert "Release" in page.locator("h1").inner_text()
    check_accessibility(page, "release-sent")
    page.context.close()

    # --- the police officer reads the release ------------------------------------------
    officer = sign_in(browser, federation.console(POLICE), "officer")
    link = _wait_for_link(officer, f"/messages/{release_id}", "the release")
    with officer.expect_navigation():
        press_button(officer, link)
    body = officer.locator("main").inner_text()
    assert "Mental health diagnoses and conditions" in body
    assert "Current and recent medication" in body
    assert "A&E and urgent care attendance" not in body.split("What was released")[-1]
    check_accessibility(officer, "release-police")
    officer.context.close()
