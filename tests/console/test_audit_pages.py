"""The audit pages: the disclosure register for a subject and the assurance report, for
auditors, the DPO, the IG lead and the Caldicott Guardian only; every look-up is logged."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hub.config import HubConfig
from tests.conftest import running_hub
from tests.console.reading_world import (
    HEALTH,
    LA,
    POLICE,
    SUBJECT,
    World,
    open_world,
    text_of,
    whole_story,
)

ROLES = {
    HEALTH: ("SAFEGUARDING_LEAD", "CALDICOTT_GUARDIAN"),
    POLICE: ("PREVENT_POLICE_OFFICER",),
    LA: ("CHANNEL_CHAIR", "AUDITOR"),
}


@pytest.fixture
async def story(make_config: Callable[..., HubConfig], tmp_path: Path) -> AsyncIterator[World]:
    # The local authority's node is one of the hub's auditor nodes; health is not.
    config = dataclasses.replace(make_config(), auditors=(LA,))
    async with running_hub(config) as hub:
        world = await open_world(hub, tmp_path, ROLES)
        try:
            await whole_story(world)
            yield world
        finally:
            await world.close()


@pytest.mark.parametrize("path", ["/audit", f"/audit/disclosures?subject_ref={SUBJECT}"])
async def test_audit_pages_need_an_audit_role(story: World, path: str) -> None:
    police = story.consoles[POLICE]
    page = text_of(await police.page(path, status=403))
    assert "This page is for users with one of these roles" in page
    assert SUBJECT not in page.replace(f"subject_ref={SUBJECT}", "")
    assert not any(kind == "disclosure_register" for _, kind, _ in police.access_log())


async def test_disclosure_register_for_a_subject(story: World) -> None:
    la = story.consoles[LA]
    home = await la.page("/audit")
    assert "Subject reference" in home
    assert "Show the register" in home
    html = await la.page(f"/audit/disclosures?subject_ref={SUBJECT}")
    page = text_of(html)
    assert "Disclosure register" in page
    # The referral, the release and the case pack, with who, to whom and the gateways.
    assert "Referral" in page
    assert "Release" in page
    assert "Case pack" in page
    assert "health.bsw-icb to police.ctp-sw" in page
    assert "Crime and Disorder Act" in page
    assert "MedicationStatement" in page  # what the release's manifest says it held
    assert "OFFICIAL-SENSITIVE" in html
    assert ("user-la", "disclosure_register", SUBJECT) in la.access_log()


async def test_register_refuses_a_reference_that_is_not_opaque(story: World) -> None:
    la = story.consoles[LA]
    page = text_of(await la.page("/audit/disclosures?subject_ref=Sam%20Smith", status=400))
    assert "There is a problem" in page
    assert "A subject reference is letters, digits" in page
    assert not any(kind == "disclosure_register" for _, kind, _ in la.access_log())


async def test_assurance_report_with_chart_and_table(story: World) -> None:
    la = story.consoles[LA]
    now = story.hub.clock()
    period = f"{now.year}Q{(now.month - 1) // 3 + 1}"
    html = await la.page(f"/audit/assurance?period={period}")
    page = text_of(html)
    assert f"Assurance report {period}" in page
    assert "<svg" in html
    assert '<title id="chart-title">' in html
    assert '<desc id="chart-desc">' in html
    assert "<?xml" not in html
    assert "The numbers in the chart" in page
    assert "Referrals made 1" in page
    assert "Releases 1" in page
    assert ("user-la", "assurance_report", period) in la.access_log()


async def test_assurance_report_period_errors_and_non_auditor_nodes(story: World) -> None:
    la = story.consoles[LA]
    page = text_of(await la.page("/audit/assurance?period=2026Q5", status=400))
    assert "the quarter must be Q1 to Q4" in page
    # Health's Caldicott Guardian may open the page, but health is no auditor node.
    health = story.consoles[HEALTH]
    refused = text_of(await health.page("/audit/assurance?period=2026"))
    assert "not one of the hub's auditor nodes" in refused
    # The register for a non-auditor node holds what it took part in.
    register = text_of(await health.page(f"/audit/disclosures?subject_ref={SUBJECT}"))
    assert "Release" in register
