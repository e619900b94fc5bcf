"""The console's security, through the real app and the real hub test fixture.

No page or download without a session; a user of one role cannot reach another's pages;
posts without the CSRF token are refused; sessions expire; accounts lock; pages with case
data are never cached and the logs hold none of it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agency_adapters.node.console import ConsoleSettings, NodeServices, create_console_app
from agency_adapters.node.console.app import ConsoleAccessLogger
from agency_adapters.node.console.routes import ROUTES
from agency_adapters.node.users import SignInSettings
from hub.client import PayloadSource, write_node_profile
from hub.crypto import KdfStrength, write_key_file
from hub.model.examples import synthetic_referral_form
from tests.conftest import (
    INSECURE_TEST_HUB_KEYS,
    INSECURE_TEST_NODE_KEYS,
    HubFixture,
    referral_fields,
)

POLICE = "police.ctp-sw"
INSECURE_TEST_PASSWORD = "insecure-console-test-password"
MESSAGE_ID = "0190d6a4-0000-7000-8000-000000000001"


@dataclass
class Console:
    client: TestClient[Any, Any]
    services: NodeServices

    async def sign_in(self, username: str, password: str = INSECURE_TEST_PASSWORD) -> str:
        page = await (await self.client.get("/sign-in")).text()
        token = _csrf(page)
        answer = await self.client.post(
            "/sign-in",
            data={"username": username, "password": password, "csrf_token": token},
            allow_redirects=False,
        )
        return str(answer.status)

    async def csrf(self) -> str:
        return _csrf(await (await self.client.get("/inbox")).text())


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


@pytest.fixture
async def console(hub: HubFixture, tmp_path: Path, aiohttp_client: Any) -> Console:
    node_dir = tmp_path / POLICE
    write_key_file(node_dir / "keys" / "node.key", INSECURE_TEST_NODE_KEYS[POLICE])
    write_node_profile(
        node_dir,
        node_id=POLICE,
        agency_type="police",
        hub_url=hub.url,
        hub_id="hub.test",
        hub_signing_key=INSECURE_TEST_HUB_KEYS.public.signing,
    )
    services = NodeServices.open(
        node_dir,
        clock=hub.clock,
        sign_in=SignInSettings(password_strength=KdfStrength.insecure_minimum()),
        client=hub.client(POLICE),
    )
    add = services.users.add_user
    add("officer", "PC Test Officer", {"PREVENT_POLICE_OFFICER"}, "SC", INSECURE_TEST_PASSWORD)
    add("admin", "Node Admin", {"NODE_ADMIN"}, "SC", INSECURE_TEST_PASSWORD)
    add("member", "Panel Member", {"PANEL_MEMBER"}, "SC", INSECURE_TEST_PASSWORD)
    app = create_console_app(ConsoleSettings(node_dir=node_dir, sync_wait=0), services)
    # The access logger `hub node console` runs with (method, path, status; no query).
    server = TestServer(app)
    await server.start_server(access_log_class=ConsoleAccessLogger)
    return Console(client=await aiohttp_client(server), services=services)


def _concrete(path: str) -> str:
    path = re.sub(r"\{message_id[^}]*\}", MESSAGE_ID, path)
    return re.sub(r"\{[a-z_]+[^}]*\}", "case-test-0001", path)


OPEN = {"/sign-in", "/healthz"}


async def test_no_page_or_download_without_a_session(console: Console) -> None:
    checked = 0
    for route in ROUTES:
        path = _concrete(route.path)
        if path in OPEN:
            continue
        if route.method == "GET":
            answer = await console.client.get(path, allow_redirects=False)
            assert answer.status == 303, path
            assert answer.headers["Location"].startswith("/sign-in"), path
        else:
            answer = await console.client.post(path, data={"x": "1"}, allow_redirects=False)
            assert answer.status == 401, path
        checked += 1
    assert checked >= 10
    # A case pack's PDF is a route like any other: no session, no file.
    pdf = await console.client.get(f"/case-packs/{MESSAGE_ID}.pdf", allow_redirects=False)
    assert pdf.status == 303


async def test_a_user_of_one_role_cannot_reach_another_roles_pages(console: Console) -> None:
    assert await console.sign_in("member") == "303"
    guarded = [
        route
        for route in ROUTES
        if getattr(route.handler, "required_roles", None) and route.method == "GET"
    ]
    assert guarded, "no route declares the roles it needs"
    refused = 0
    for route in guarded:
        if "PANEL_MEMBER" in route.handler.required_roles:  # type: ignore[attr-defined]
            continue
        answer = await console.client.get(_concrete(route.path), allow_redirects=False)
        assert answer.status == 403, route.path
        text = await answer.text()
        assert "You cannot do that here" in text
        refused += 1
    assert refused >= 3
    # Posting to a guarded form is refused too (with a valid CSRF token).
    token = await console.csrf()
    answer = await console.client.post(
        "/cases/new", data={"csrf_token": token}, allow_redirects=False
    )
    assert answer.status == 403


async def test_posts_without_the_csrf_token_are_refused(console: Console) -> None:
    assert await console.sign_in("officer") == "303"
    answer = await console.client.post("/sign-out", data={}, allow_redirects=False)
    assert answer.status == 403
    answer = await console.client.post(
        "/sign-out", data={"csrf_token": "forged"}, allow_redirects=False
    )
    assert answer.status == 403
    # Still signed in: the refused posts changed nothing.
    assert (await console.client.get("/inbox", allow_redirects=False)).status == 200
    answer = await console.client.post(
        "/sign-out", data={"csrf_token": await console.csrf()}, allow_redirects=False
    )
    assert answer.status == 303
    assert (await console.client.get("/inbox", allow_redirects=False)).status == 303
    # The sign-in form itself needs its own token (login CSRF).
    answer = await console.client.post(
        "/sign-in",
        data={"username": "officer", "password": INSECURE_TEST_PASSWORD},
        allow_redirects=False,
    )
    assert answer.status == 403


async def test_sessions_end_after_the_idle_timeout(console: Console, hub: HubFixture) -> None:
    assert await console.sign_in("officer") == "303"
    assert (await console.client.get("/inbox", allow_redirects=False)).status == 200
    hub.clock.advance(14 * 60)
    assert (await console.client.get("/inbox", allow_redirects=False)).status == 200
    hub.clock.advance(16 * 60)
    answer = await console.client.get("/inbox", allow_redirects=False)
    assert answer.status == 303
    assert answer.headers["Location"].startswith("/sign-in")


async def test_repeated_failures_lock_the_account(console: Console) -> None:
    for _ in range(5):
        assert await console.sign_in("officer", "wrong password here") == "401"
    # Now even the right password is refused, with the same words as a wrong one.
    assert await console.sign_in("officer") == "401"
    page = await (await console.client.get("/sign-in")).text()
    token = _csrf(page)
    answer = await console.client.post(
        "/sign-in",
        data={"username": "officer", "password": INSECURE_TEST_PASSWORD, "csrf_token": token},
    )
    assert "The username or password is not right" in await answer.text()


async def test_case_data_is_never_cached_and_never_logged(
    console: Console, nodes: Any, caplog: pytest.LogCaptureFixture
) -> None:
    form = synthetic_referral_form(3)
    surname = form.individual.surname
    assert surname
    await nodes["health.bsw-icb"].send(
        referral_fields(), PayloadSource.json(form.model_dump(mode="json"))
    )
    caplog.set_level(logging.DEBUG)
    assert await console.sign_in("officer") == "303"
    answer = await console.client.post(
        "/inbox/sync", data={"csrf_token": await console.csrf()}, allow_redirects=False
    )
    assert answer.status == 303
    (stored,) = console.services.store.list_messages("in")
    page = await console.client.get(f"/messages/{stored.id}?q={surname}")
    text = await page.text()
    assert surname in text
    assert page.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert surname not in caplog.text
    # Nothing decrypted at rest: the node's database never holds the name.
    database = console.services.profile.root / "state" / "node.sqlite3"
    assert surname.encode() not in database.read_bytes()
    # The view was written to the access log, without content.
    entries = console.services.store.access_entries(limit=10, offset=0)
    assert any(entry.object_id == stored.id for entry in entries)
    assert all(surname not in repr(entry) for entry in entries)
    static = await console.client.get("/static/console.css")
    assert static.headers["Cache-Control"].startswith("public")
