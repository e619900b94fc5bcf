"""Consoles for three test nodes on the real hub fixture, and a story to fill them.

Written here because tests/console/conftest.py (the lead's shared console fixture) was not
there yet: each console is the real app (``create_console_app``) over real node services
(store, users, the node's own hub client with the INSECURE fixed-seed test keys), with
one signed-in user per node whose roles the test chooses. Messages go through the real
hub with real crypto, as in hub/cli/story.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel

from agency_adapters.health.synthetic import synthetic_patient_bundle
from agency_adapters.node.console import ConsoleSettings, NodeServices, create_console_app
from agency_adapters.node.release import plan_release
from agency_adapters.node.store import NodeStore, node_database_path
from agency_adapters.node.users import SignInSettings, User, UserStore
from hub.client import PayloadSource
from hub.crypto import KdfStrength
from hub.model import EnvelopeFields, Receipt, rfc3339
from hub.model.examples import (
    synthetic_case_open,
    synthetic_case_pack,
    synthetic_consent_record,
    synthetic_decision,
    synthetic_information_request,
    synthetic_panel_outcome,
    synthetic_referral_form,
    synthetic_triage_outcome,
)
from hub.model.payloads import feedback_for_referrer
from hub.policy.registry import load_registry
from tests.conftest import INSECURE_TEST_NODE_KEYS, HubFixture

HEALTH, POLICE, LA = "health.bsw-icb", "police.ctp-sw", "la.wiltshire"
OS_PERSONAL: dict[str, Any] = {
    "tier": "OFFICIAL",
    "sensitive": True,
    "descriptors": ["PERSONAL_DATA"],
}
SUBJECT = "subj-demo-0001"
CASE = "case-wilts-demo-0001"
WITHOUT_CONSENT = {
    "state": "NOT_SOUGHT",
    "reason_code": "WOULD_PREJUDICE_OUTCOME",
    "subject_age": "ADULT",
}
FAST = SignInSettings(password_strength=KdfStrength.insecure_minimum())
ROLES = {
    HEALTH: ("SAFEGUARDING_LEAD",),
    POLICE: ("PREVENT_POLICE_OFFICER",),
    LA: ("CHANNEL_CHAIR",),
}


@dataclass
class Console:
    node_id: str
    services: NodeServices
    client: TestClient[Any, Any]
    user: User
    csrf_token: str

    async def page(self, path: str, status: int = 200) -> str:
        response = await self.client.get(path, allow_redirects=False)
        text = await response.text()
        assert response.status == status, (path, response.status, text[:2000])
        return text

    async def post(self, path: str, data: dict[str, str] | None = None) -> Any:
        return await self.client.post(
            path, data={"csrf_token": self.csrf_token, **(data or {})}, allow_redirects=False
        )

    async def sync(self) -> str:
        response = await self.post("/inbox/sync")
        assert response.status == 303, await response.text()
        return str(response.headers["Location"])

    def renew(self) -> None:
        """A fresh session (after a test moves the clock past the idle timeout)."""
        users = self.services.users
        ticket = users.start_session(self.user)
        self.client.session.cookie_jar.update_cookies({"seh_session": ticket.token})
        session = users.session(ticket.token)
        assert session is not None
        self.csrf_token = session.csrf_token

    def access_log(self) -> list[tuple[str, str, str]]:
        return [
            (e.username, e.object_kind, e.object_id)
            for e in self.services.store.access_entries(limit=1000, offset=0)
        ]


@dataclass
class World:
    hub: HubFixture
    consoles: dict[str, Console] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    async def close(self) -> None:
        for console in self.consoles.values():
            await console.client.close()

    async def send(
        self, sender: str, document: dict[str, Any], payload: BaseModel | PayloadSource
    ) -> Receipt:
        fields = EnvelopeFields.model_validate_json(json.dumps(document))
        source = (
            payload
            if isinstance(payload, PayloadSource)
            else PayloadSource(
                media_type="application/json", data=payload.model_dump_json().encode()
            )
        )
        return await self.consoles[sender].services.send(fields, source)


async def open_world(
    hub: HubFixture, root: Path, roles: dict[str, Iterable[str]] | None = None
) -> World:
    world = World(hub)
    registry = load_registry()
    for node_id in (HEALTH, POLICE, LA):
        profile = hub.profile(root, node_id)
        database = node_database_path(profile)
        database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        store = NodeStore.open(database)
        users = UserStore.open(database, clock=hub.clock, settings=FAST)
        services = NodeServices(
            profile=profile,
            keys=INSECURE_TEST_NODE_KEYS[node_id],
            store=store,
            users=users,
            client=hub.client(node_id),
            registry=registry,
            clock=hub.clock,
        )
        node_roles = tuple((roles or {}).get(node_id, ROLES[node_id]))
        user = users.add_user(
            f"user-{node_id.split('.')[0]}",
            f"Synthetic {node_id} user",
            node_roles,
            "BPSS",
            "insecure-test-password-0001",
        )
        app = create_console_app(ConsoleSettings(node_dir=profile.root, sync_wait=0), services)
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        ticket = users.start_session(user)
        client.session.cookie_jar.update_cookies({"seh_session": ticket.token})
        session = users.session(ticket.token)
        assert session is not None
        world.consoles[node_id] = Console(node_id, services, client, user, session.csrf_token)
    return world


def _period(days: int, today: Any) -> dict[str, str]:
    return {
        "period_from": (today - timedelta(days=days)).isoformat(),
        "period_to": (today - timedelta(days=1)).isoformat(),
    }


async def referral(world: World) -> str:
    form = synthetic_referral_form(1)
    document = {
        "kind": "referral",
        "author": {
            "user_ref": world.consoles[HEALTH].user.user_ref,
            "role": "SAFEGUARDING_LEAD",
            "vetting": "BPSS",
        },
        "recipients": [LA, POLICE],
        "marking": OS_PERSONAL,
        "subject_ref": SUBJECT,
        "purpose": "PREVENT_REFERRAL",
        "legal_basis": {
            "powers": ["CDA1998-s115", "CTSA2015-s38"],
            "art6": "UKGDPR-A6-1e",
            "art9": "UKGDPR-A9-2g",
            "sch1": "DPA2018-S1P2p18",
            "confidentiality": ["CLDC-PUBINT"],
        },
        "consent": WITHOUT_CONSENT,
    }
    receipt = await world.send(HEALTH, document, form)
    world.ids["referral"] = receipt.message_id
    return receipt.message_id


REQUEST_SCOPE_DAYS = {"mental_health_diagnoses": 365, "medication": 365, "ae_attendance": 180}


def request_document(world: World, *, urgency: str = "routine") -> dict[str, Any]:
    today = world.hub.clock().date()
    return {
        "kind": "information_request",
        "author": {
            "user_ref": world.consoles[POLICE].user.user_ref,
            "role": "PREVENT_POLICE_OFFICER",
            "vetting": "BPSS",
        },
        "recipients": [HEALTH],
        "marking": OS_PERSONAL,
        "subject_ref": SUBJECT,
        "purpose": "PREVENT_TRIAGE",
        "legal_basis": {
            "powers": ["CDA1998-s115"],
            "art6": "UKGDPR-A6-1e",
            "art9": "UKGDPR-A9-2g",
            "sch1": "DPA2018-S1P2p10",
            "confidentiality": ["CLDC-PUBINT"],
        },
        "consent": WITHOUT_CONSENT,
        "urgency": urgency,
        "scope": [
            {"category": c, **_period(d, today), "justification_present": True}
            for c, d in REQUEST_SCOPE_DAYS.items()
        ],
    }


async def information_request(world: World) -> str:
    document = request_document(world)
    payload = synthetic_information_request(1, categories=list(REQUEST_SCOPE_DAYS))
    receipt = await world.send(POLICE, document, payload)
    world.ids["request"] = receipt.message_id
    return receipt.message_id


async def decision(world: World) -> str:
    request = world.consoles[HEALTH].services.store.get(world.ids["request"])
    assert request is not None, "health must have synced the request first"
    approved = [item.model_dump(mode="json") for item in request.envelope.scope[:2]]
    document = {
        "kind": "decision",
        "author": {
            "user_ref": world.consoles[HEALTH].user.user_ref,
            "role": "SAFEGUARDING_LEAD",
            "vetting": "BPSS",
        },
        "recipients": [POLICE],
        "marking": OS_PERSONAL,
        "subject_ref": SUBJECT,
        "purpose": "PREVENT_TRIAGE",
        "in_reply_to": world.ids["request"],
        "decision": {
            "outcome": "APPROVED_PARTIAL",
            "approved_scope": approved,
            "reason_code": "MINIMUM_NECESSARY",
            "consulted": ["CALDICOTT_GUARDIAN"],
            "recorded_in_subject_record": True,
        },
    }
    receipt = await world.send(
        HEALTH, document, synthetic_decision(1, consulted=("CALDICOTT_GUARDIAN",))
    )
    world.ids["decision"] = receipt.message_id
    return receipt.message_id


async def release(world: World) -> str:
    health = world.consoles[HEALTH].services
    record = synthetic_patient_bundle(1, today=world.hub.clock().date())
    plan = await plan_release(health.client, world.ids["decision"], record)
    receipt = await health.send(plan.fields, plan.payload())
    world.ids["release"] = receipt.message_id
    return receipt.message_id


async def referral_outcome(world: World) -> str:
    feedback = feedback_for_referrer(synthetic_triage_outcome(1, outcome="CHANNEL"))
    document = {
        "kind": "referral_outcome",
        "author": {
            "user_ref": world.consoles[POLICE].user.user_ref,
            "role": "PREVENT_POLICE_OFFICER",
            "vetting": "BPSS",
        },
        "recipients": [HEALTH, LA],
        "marking": OS_PERSONAL,
        "subject_ref": SUBJECT,
        "purpose": "PREVENT_TRIAGE",
        "in_reply_to": world.ids["referral"],
        "triage_outcome": "CHANNEL",
    }
    receipt = await world.send(POLICE, document, feedback)
    world.ids["referral_outcome"] = receipt.message_id
    return receipt.message_id


def _case_document(world: World) -> dict[str, Any]:
    return {
        "kind": "case_open",
        "author": {
            "user_ref": world.consoles[LA].user.user_ref,
            "role": "CHANNEL_CHAIR",
            "vetting": "BPSS",
        },
        "recipients": [POLICE, HEALTH],
        "marking": OS_PERSONAL,
        "subject_ref": SUBJECT,
        "case_ref": CASE,
        "purpose": "CHANNEL_ASSESSMENT",
        "consent": {
            "state": "NOT_SOUGHT",
            "reason_code": "DECONFLICTION_STAGE",
            "subject_age": "ADULT",
        },
        "case": {
            "chair": LA,
            "members": [
                {"node": POLICE, "role": "POLICE_PREVENT"},
                {"node": HEALTH, "role": "HEALTH"},
            ],
        },
    }


async def channel_case(world: World, *, pack_days: float = 14) -> None:
    case_doc = _case_document(world)
    world.ids["case_open"] = (await world.send(LA, case_doc, synthetic_case_open(1))).message_id
    consent_doc = {
        **{k: v for k, v in case_doc.items() if k != "case"},
        "kind": "consent_record",
        "purpose": "CHANNEL_SUPPORT",
        "consent": {"state": "OBTAINED", "given_by": "SUBJECT", "subject_age": "ADULT"},
    }
    world.ids["consent_record"] = (
        await world.send(LA, consent_doc, synthetic_consent_record(1))
    ).message_id
    expires = world.hub.clock() + timedelta(days=pack_days)
    pack_doc = {
        **consent_doc,
        "kind": "case_pack",
        "purpose": "CHANNEL_ASSESSMENT",
        "recipients": [POLICE],
        "legal_basis": {
            "powers": ["LGA1972-s111"],
            "art6": "UKGDPR-A6-1e",
            "art9": "UKGDPR-A9-2g",
            "sch1": "DPA2018-S1P2p18",
        },
        "access_expires_at": rfc3339(expires.astimezone(UTC).replace(microsecond=0)),
    }
    world.ids["case_pack"] = (await world.send(LA, pack_doc, synthetic_case_pack(1))).message_id
    outcome_doc = {**consent_doc, "kind": "panel_outcome", "panel_outcome": "ADOPTED"}
    world.ids["panel_outcome"] = (
        await world.send(LA, outcome_doc, synthetic_panel_outcome(1))
    ).message_id


async def note(world: World) -> str:
    document = {
        **{k: v for k, v in _case_document(world).items() if k not in ("case", "consent")},
        "kind": "note",
        "purpose": "CHANNEL_ASSESSMENT",
    }
    payload = PayloadSource.json({"text": "Synthetic note: the panel meets on Tuesday."})
    receipt = await world.send(LA, document, payload)
    world.ids["note"] = receipt.message_id
    return receipt.message_id


async def whole_story(world: World) -> None:
    """Referral, request, decision, release, triage outcome, Channel case; every
    recipient syncs through its console's 'Check for new messages' button."""
    await referral(world)
    await information_request(world)
    await world.consoles[HEALTH].sync()
    await decision(world)
    await release(world)
    await referral_outcome(world)
    await channel_case(world)
    await note(world)
    for node in (HEALTH, POLICE, LA):
        await world.consoles[node].sync()


def text_of(html: str) -> str:
    """The page's text with tags and runs of white space collapsed (for assertions)."""
    without_tags = re.sub(r"<[^>]+>", " ", html)
    return re.sub(r"\s+", " ", without_tags.replace("&#39;", "'").replace("&amp;", "&")).strip()


__all__ = ["Console", "World", "datetime", "open_world", "text_of", "whole_story"]
