"""The demo's story: a referral, a request answered in part, a release, a Channel case.

Every message goes through the real hub with real crypto; each step prints who did what,
the marking, the gateways and what the hub checked. All people and records are synthetic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from agency_adapters.health.disclosure_log import DisclosureLog
from agency_adapters.health.synthetic import synthetic_patient_bundle
from agency_adapters.node.checks import payload_violations
from agency_adapters.node.release import disclosure_record, plan_release
from hub.client import HubProblem, NodeClient, PayloadSource, ReceivedMessage
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

__all__ = ["run_story"]

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

Say = Callable[[str, str], None]


def _fields(document: Mapping[str, Any]) -> EnvelopeFields:
    return EnvelopeFields.model_validate_json(json.dumps(document))


def _json_payload(model: Any) -> PayloadSource:
    return PayloadSource(media_type="application/json", data=model.model_dump_json().encode())


def _gateways(document: Mapping[str, Any]) -> str:
    basis = document.get("legal_basis") or {}
    ids = [
        *basis.get("powers", []),
        *(basis[k] for k in ("art6", "art9", "sch1", "art10") if basis.get(k)),
    ]
    ids += basis.get("confidentiality", []) + basis.get("exemptions", [])
    return ", ".join(ids) or "none cited"


def _period(days: int, today: date) -> dict[str, str]:
    return {
        "period_from": (today - timedelta(days=days)).isoformat(),
        "period_to": (today - timedelta(days=1)).isoformat(),
    }


class Story:
    def __init__(self, clients: Mapping[str, NodeClient], say: Say, workdir: Path) -> None:
        self.clients = clients
        self.say = say
        self.workdir = workdir
        self.today = datetime.now(UTC).date()

    async def send(
        self, sender: str, document: dict[str, Any], payload: PayloadSource, what: str
    ) -> Receipt:
        fields = _fields(document)
        receipt = await self.clients[sender].send(fields, payload)
        self.say(
            sender,
            f"{what} -> {', '.join(fields.recipients)} [{fields.marking.render()}; purpose "
            f"{fields.purpose}; gateways {_gateways(document)}]",
        )
        self.say(
            "hub",
            "checked signature, marking, lawful basis, consent, scope and workflow: "
            f"accepted {receipt.message_id[:13]}…",
        )
        return receipt

    async def receive(self, node: str, receipt: Receipt) -> tuple[ReceivedMessage, bytes]:
        client = self.clients[node]
        message = await client.fetch(receipt.message_id)
        plaintext = await client.open_payload(message)
        assert plaintext is not None
        await client.acknowledge(message)
        return message, plaintext

    async def run(self) -> None:
        today = self.today
        # 1. Health refers a patient to the local authority and police together.
        form = synthetic_referral_form(1)
        referral_doc = {
            "kind": "referral",
            "author": {"user_ref": "usr-demo-0001", "role": "SAFEGUARDING_LEAD", "vetting": "BPSS"},
            "recipients": [LA, POLICE],
            "marking": OS_PERSONAL,
            "subject_ref": SUBJECT,
            "purpose": "PREVENT_REFERRAL",
            "legal_basis": {
                "powers": ["CDA1998-s115", "CTSA2015-s38"],
                "art6": "UKGDPR-A6-1e",
                "art9": "UKGDPR-A9-2g",
                "sch1": "DPA2018-S1P2p18",
                # Health refers without consent: the CLDC exception it relies on (GW-13).
                "confidentiality": ["CLDC-PUBINT"],
                "agreement": "DSA-WILTS-PREVENT-2026",
            },
            "consent": WITHOUT_CONSENT,
        }
        referral = await self.send(
            HEALTH,
            referral_doc,
            _json_payload(form),
            "Prevent referral (National Prevent Referral Form)",
        )
        for node in (LA, POLICE):
            _, plaintext = await self.receive(node, referral)
            individual = json.loads(plaintext)["individual"]
            self.say(
                node,
                f"verified and decrypted the referral about {individual['forenames']} "
                f"{individual['surname']}; acknowledged",
            )

        # 2. Police triage: ask health for specific information, without consent.
        careless = {
            "kind": "information_request",
            "author": {
                "user_ref": "usr-demo-0002",
                "role": "PREVENT_POLICE_OFFICER",
                "vetting": "BPSS",
            },
            "recipients": [HEALTH],
            "marking": OS_PERSONAL,
            "subject_ref": SUBJECT,
            "purpose": "PREVENT_TRIAGE",
            "legal_basis": {"exemptions": ["DPA2018-S2P1p2"]},
            "consent": {"state": "NOT_SOUGHT", "subject_age": "ADULT"},
            "scope": [{"category": "whole_record", "justification_present": True}],
        }
        self.say(
            POLICE,
            "first draft: the whole record, citing only the Sch 2 crime exemption "
            f"[{_gateways(careless)}]",
        )
        try:
            await self.clients[POLICE].send(
                _fields(careless), PayloadSource.json({"synthetic": True}), preflight=False
            )
        except HubProblem as refusal:
            rules = sorted({v.rule for v in refusal.problem.violations})
            self.say(
                "hub", f"refused with {refusal.problem.status}, nothing stored: {', '.join(rules)}"
            )
            for violation in refusal.problem.violations:
                self.say("hub", f"  {violation.rule} {violation.path}: {violation.message}")
        else:  # pragma: no cover - would be a hub bug
            raise RuntimeError("the hub accepted a whole-record request")
        scope = [
            {
                "category": "mental_health_diagnoses",
                **_period(365, today),
                "justification_present": True,
            },
            {"category": "medication", **_period(365, today), "justification_present": True},
            {"category": "ae_attendance", **_period(180, today), "justification_present": True},
        ]
        request_doc = {
            **careless,
            "legal_basis": {
                "powers": ["CDA1998-s115"],
                "art6": "UKGDPR-A6-1e",
                "art9": "UKGDPR-A9-2g",
                "sch1": "DPA2018-S1P2p10",
                # The public interest health's release relies on to set aside confidence
                # (GW-13; seed 004 Appendix 4a section 5).
                "confidentiality": ["CLDC-PUBINT"],
            },
            "consent": WITHOUT_CONSENT,
            "scope": scope,
        }
        payload = synthetic_information_request(
            1, categories=[str(item["category"]) for item in scope]
        )
        request = await self.send(
            POLICE,
            request_doc,
            _json_payload(payload),
            "corrected request: 3 named categories with periods and justifications",
        )

        # 3. Health approves part of it, with a rationale.
        await self.receive(HEALTH, request)
        approved = scope[:2]
        # The safeguarding lead decides an s115 request without consent in consultation
        # with the Caldicott Guardian (seed 004 para 69; ROLE-02, ROLE-05) and documents
        # it in the patient record (para 62; ROLE-06).
        decision_doc = {
            "kind": "decision",
            "author": {
                "user_ref": "usr-demo-0003",
                "role": "SAFEGUARDING_LEAD",
                "vetting": "BPSS",
            },
            "recipients": [POLICE],
            "marking": OS_PERSONAL,
            "subject_ref": SUBJECT,
            "purpose": "PREVENT_TRIAGE",
            "in_reply_to": request.message_id,
            "decision": {
                "outcome": "APPROVED_PARTIAL",
                "approved_scope": approved,
                "reason_code": "MINIMUM_NECESSARY",
                "consulted": ["CALDICOTT_GUARDIAN"],
                "recorded_in_subject_record": True,
            },
        }
        decision = await self.send(
            HEALTH,
            decision_doc,
            _json_payload(synthetic_decision(1, consulted=("CALDICOTT_GUARDIAN",))),
            "decision APPROVED_PARTIAL by the safeguarding lead after consulting the "
            "Caldicott Guardian: diagnoses and medication; A&E attendance not necessary "
            "(rationale in the payload; entered in the patient record)",
        )

        # 4. The release builder sends only the approved FHIR resources, with a manifest
        #    of exactly what it holds; the disclosure is logged once the hub accepts it.
        record = synthetic_patient_bundle(1, today=today)
        plan = await plan_release(self.clients[HEALTH], decision.message_id, record)
        manifest = plan.manifest
        self.say(
            HEALTH,
            f"release builder: {manifest.resource_count} of {len(record.get('entry', []))} "
            "FHIR resources ("
            + "; ".join(
                f"{c.category}: {', '.join(f'{n} {t}' for t, n in c.resources.items())}"
                for c in manifest.categories
            )
            + f"), each labelled with its marking; {plan.result.excluded_count} outside the "
            "approval left out",
        )
        for withheld in plan.result.withheld:
            self.say(HEALTH, f"  withheld {withheld.resource}: {withheld.reason}")
        problems = payload_violations(
            plan.fields, plan.bundle_json, plan.payload().media_type, today=today
        )
        assert not problems, problems
        released = await self.clients[HEALTH].send(plan.fields, plan.payload())
        self.say(
            HEALTH,
            f"release with its signed content manifest -> {', '.join(plan.fields.recipients)} "
            f"[{plan.fields.marking.render()}; purpose {plan.fields.purpose}; "
            f"manifest sha256 {manifest.content_sha256[:16]}…]",
        )
        self.say(
            "hub",
            "checked the manifest against the approval on record (MAN-01..03) and every "
            f"other rule: accepted {released.message_id[:13]}…",
        )
        log = DisclosureLog(self.workdir / "nodes" / HEALTH / "disclosure-log.jsonl")
        log.record(disclosure_record(plan, released, released.received_at))
        self.say(
            HEALTH,
            "wrote the disclosure to its local disclosure log "
            "(what, to whom, when, gateways, decided by)",
        )
        message, bundle = await self.receive(POLICE, released)
        problems = payload_violations(
            message.envelope, bundle, message.envelope.payload.media_type, today=today
        )
        assert not problems, problems
        self.say(
            POLICE,
            "decrypted the release and checked it against its manifest and envelope: "
            "hash, categories, resource counts, periods, subject and labels match",
        )

        # 5. Police decide on Channel and tell the referrer only what it may know.
        triage = synthetic_triage_outcome(1, outcome="CHANNEL")
        feedback = feedback_for_referrer(triage)
        triage_doc = {
            "kind": "referral_outcome",
            "author": {
                "user_ref": "usr-demo-0002",
                "role": "PREVENT_POLICE_OFFICER",
                "vetting": "BPSS",
            },
            "recipients": [HEALTH, LA],
            "marking": OS_PERSONAL,
            "subject_ref": SUBJECT,
            "purpose": "PREVENT_TRIAGE",
            "in_reply_to": referral.message_id,
            "triage_outcome": "CHANNEL",
        }
        await self.send(
            POLICE,
            triage_doc,
            _json_payload(feedback),
            f"triage outcome CHANNEL; the referrer is told only: {feedback.outcome}",
        )

        # 6. The local authority opens the Channel case, records consent, sends case packs.
        members = [{"node": POLICE, "role": "POLICE_PREVENT"}, {"node": HEALTH, "role": "HEALTH"}]
        case_doc = {
            "kind": "case_open",
            "author": {"user_ref": "usr-demo-0004", "role": "CHANNEL_CHAIR", "vetting": "BPSS"},
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
            "case": {"chair": LA, "members": members},
        }
        await self.send(
            LA,
            case_doc,
            _json_payload(synthetic_case_open(1)),
            "opened Channel case (chair: the local authority; panel: police, health)",
        )
        consent = {"state": "OBTAINED", "given_by": "SUBJECT", "subject_age": "ADULT"}
        consent_doc = {
            **{k: v for k, v in case_doc.items() if k != "case"},
            "kind": "consent_record",
            "purpose": "CHANNEL_SUPPORT",
            "consent": consent,
        }
        await self.send(
            LA,
            consent_doc,
            _json_payload(synthetic_consent_record(1)),
            "recorded the subject's consent to Channel support",
        )
        expires = datetime.now(UTC) + timedelta(days=14)
        pack_doc = {
            **consent_doc,
            "kind": "case_pack",
            "purpose": "CHANNEL_ASSESSMENT",
            "legal_basis": {
                "powers": ["LGA1972-s111"],
                "art6": "UKGDPR-A6-1e",
                "art9": "UKGDPR-A9-2g",
                "sch1": "DPA2018-S1P2p18",
            },
            "access_expires_at": rfc3339(expires),
        }
        # Each member gets the sections it needs, in a message of its own (DESIGN.md 6):
        # police the whole pack; health not the police triage summary.
        pack = synthetic_case_pack(1)
        needs: dict[str, set[str]] = {
            POLICE: {section.kind for section in pack.sections},
            HEALTH: {"REFERRAL_SUMMARY", "VULNERABILITY_ASSESSMENT", "PROPOSED_SUPPORT_PLAN"},
        }
        for member, kinds in needs.items():
            own = pack.model_copy(
                update={"sections": tuple(s for s in pack.sections if s.kind in kinds)}
            )
            await self.send(
                LA,
                {**pack_doc, "recipients": [member]},
                _json_payload(own),
                f"case pack for {member}: {', '.join(sorted(kinds)).lower()}; readable until "
                f"{expires:%Y-%m-%d}",
            )
        outcome_doc = {**consent_doc, "kind": "panel_outcome", "panel_outcome": "ADOPTED"}
        await self.send(
            LA,
            outcome_doc,
            _json_payload(synthetic_panel_outcome(1)),
            "panel outcome ADOPTED with a support plan",
        )
        case = await self.clients[POLICE].case_state(CASE)
        self.say(
            POLICE,
            f"case {CASE}: stage {case['stage']}, consent {case['consent']}, "
            f"{len(case['history'])} events",
        )
        state = await self.clients[POLICE].request_state(request.message_id)
        self.say(
            POLICE,
            f"request {request.message_id[:13]}…: {state['state']}, "
            f"{state['releases']} release(s), overdue: {state['overdue']}",
        )


async def run_story(clients: Mapping[str, NodeClient], say: Say, workdir: Path) -> None:
    await Story(clients, say, workdir).run()
