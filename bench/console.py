"""Render time of the node console's pages with many messages in the node's store.

A demo federation is kept on disk and its hub served by a real ``hub serve`` process (the
inbox page asks it for the node's information requests; a message page for the state of
the request it belongs to). The police node's store is filled with ``--messages``
synthetic messages, built directly: each payload sealed to the node's encryption key, each
envelope signed with its sender's demo key and each receipt with the hub's, kept through
``NodeStore.keep_received`` as if fetched. Then the real console app (aiohttp, in this
process, signed in as a synthetic user) serves ``--requests`` requests per page, one at a
time, and the latencies are reported as percentiles:

* ``inbox``: the first page of the inbox;
* ``inbox_search``: the inbox filtered by a search for a case reference;
* ``inbox_kind``: the inbox filtered by kind, a page in the middle;
* ``message``: one message's page (a random kept message; its payload opened on view).

Synthetic data only. The target is p95 under 100 ms per page.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

# Run as a script, bench/ is on the path: the hub's readiness probe is exchange.py's.
from exchange import _wait_ready

from agency_adapters.node.console import ConsoleSettings, NodeServices, create_console_app
from agency_adapters.node.store import NodeStore
from agency_adapters.node.users import SignInSettings
from hub.client import ReceivedMessage, load_node_profile
from hub.client.ids import uuid7
from hub.crypto import KdfStrength, NodeKeys, read_key_file, seal_payload_bytes, sign_document
from hub.crypto.canonical import canonical_sha256
from hub.crypto.signing import SignatureContext
from hub.model import Envelope, Receipt, rfc3339
from hub.model.examples import synthetic_information_request, synthetic_referral_form

HUB = [sys.executable, "-m", "hub.cli.main"]
NODE, HEALTH, LA = "police.ctp-sw", "health.bsw-icb", "la.wiltshire"
OS_PERSONAL = {"tier": "OFFICIAL", "sensitive": True, "descriptors": ["PERSONAL_DATA"]}
LEGAL_BASIS = {
    "powers": ["CDA1998-s115"],
    "art6": "UKGDPR-A6-1e",
    "art9": "UKGDPR-A9-2g",
    "sch1": "DPA2018-S1P2p18",
    "confidentiality": ["CLDC-PUBINT"],
}
CONSENT = {"state": "NOT_SOUGHT", "reason_code": "WOULD_PREJUDICE_OUTCOME", "subject_age": "ADULT"}


def _payloads() -> dict[str, bytes]:
    """One synthetic payload per kind used (the referral form is the largest, ~5 KB)."""
    return {
        "referral": synthetic_referral_form(1).model_dump_json().encode(),
        "information_request": synthetic_information_request(
            1, categories=["mental_health_diagnoses"]
        )
        .model_dump_json()
        .encode(),
        "note": json.dumps({"text": "Synthetic benchmark note."}).encode(),
    }


def fill_store(root: Path, count: int, seed: int = 1) -> list[str]:
    """Keep ``count`` synthetic received messages in the police node's store; their ids."""
    node_dir = root / "nodes" / NODE
    profile = load_node_profile(node_dir)
    reader = profile.load_keys().public.encryption
    senders: dict[str, NodeKeys] = {
        node: read_key_file(root / "nodes" / node / "keys" / "node.key") for node in (HEALTH, LA)
    }
    hub_keys = read_key_file(root / "keys" / "hub.key")
    payloads = _payloads()
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    start = datetime.now(UTC) - timedelta(days=count // 24 + 1)
    ids: list[str] = []
    with NodeStore.open(node_dir / "state" / "node.sqlite3") as store:
        for i in range(count):
            moment = start + timedelta(hours=1) * i
            kind = rng.choice(("referral", "information_request", "note"))
            sender = HEALTH if kind != "note" or i % 2 else LA
            sealed = seal_payload_bytes(payloads[kind], {NODE: reader})
            document: dict[str, Any] = {
                "kind": kind,
                "author": {
                    "user_ref": "usr-bench-0001",
                    "role": "SAFEGUARDING_LEAD",
                    "vetting": "BPSS",
                },
                "recipients": [NODE],
                "marking": OS_PERSONAL,
                "subject_ref": f"subj-bench-{i % 500:04d}",
                "case_ref": f"case-bench-{i % 200:04d}",
                "purpose": "PREVENT_TRIAGE"
                if kind == "information_request"
                else "PREVENT_REFERRAL",
                "version": 1,
                "id": uuid7(moment),
                "sender": sender,
                "created_at": rfc3339(moment),
                "payload": {
                    "media_type": "application/json",
                    "cipher": "xchacha20poly1305-secretstream/64k",
                    "sha256": sealed.sha256,
                    "size": len(sealed.ciphertext),
                    "transport": "inline",
                    "inline": base64.b64encode(sealed.ciphertext).decode(),
                    "sealed_keys": sealed.sealed_keys,
                },
            }
            if kind != "note":
                document["legal_basis"] = LEGAL_BASIS
                document["consent"] = CONSENT
            if kind == "information_request":
                document["scope"] = [
                    {"category": "mental_health_diagnoses", "justification_present": True}
                ]
            document["signature"] = sign_document(
                document, senders[sender].signing, SignatureContext.ENVELOPE
            )
            receipt: dict[str, Any] = {
                "message_id": document["id"],
                "envelope_sha256": canonical_sha256(document),
                "sender": sender,
                "recipients": [NODE],
                "received_at": rfc3339(moment + timedelta(milliseconds=5)),
                "hub_id": profile.hub_id,
            }
            receipt["signature"] = sign_document(
                receipt, hub_keys.signing, SignatureContext.RECEIPT
            )
            message = ReceivedMessage(
                envelope=Envelope.model_validate_json(json.dumps(document)),
                envelope_document=document,
                receipt=Receipt.model_validate_json(json.dumps(receipt)),
            )
            store.keep_received(message, state="acknowledged")
            ids.append(document["id"])
    return ids


def _percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def at(fraction: float) -> float:
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
        return round(ordered[index] * 1000, 2)

    return {
        "requests": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


async def _measure(
    client: TestClient[Any, Any], paths: Callable[[int], str], requests: int
) -> dict[str, float]:
    latencies: list[float] = []
    for i in range(requests + 5):
        started = time.perf_counter()
        response = await client.get(paths(i), allow_redirects=False)
        body = await response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise SystemExit(f"{paths(i)}: {response.status} {body[:300]!r}")
        if i >= 5:  # the first few warm the caches (templates, the registry)
            latencies.append(elapsed)
    return _percentiles(latencies)


async def run_pages(root: Path, ids: list[str], requests: int) -> dict[str, Any]:
    node_dir = root / "nodes" / NODE
    profile = load_node_profile(node_dir)
    await _wait_ready(profile.hub_url)
    services = NodeServices.open(
        node_dir, sign_in=SignInSettings(password_strength=KdfStrength.insecure_minimum())
    )
    user = services.users.add_user(
        "bench", "Synthetic bench user", ("PREVENT_POLICE_OFFICER",), "BPSS", "bench-password-0001"
    )
    app = create_console_app(ConsoleSettings(node_dir=node_dir, sync_wait=0), services)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        ticket = services.users.start_session(user)
        client.session.cookie_jar.update_cookies({"seh_session": ticket.token})
        rng = random.Random(2)  # noqa: S311 - which page to ask for
        pages: dict[str, Callable[[int], str]] = {
            "inbox": lambda i: "/inbox",
            "inbox_search": lambda i: f"/inbox?q=case-bench-{i % 200:04d}",
            "inbox_kind": lambda i: "/inbox?kind=referral&page=40",
            "message": lambda i: f"/messages/{rng.choice(ids)}",
        }
        results: dict[str, Any] = {}
        for name, paths in pages.items():
            results[name] = await _measure(client, paths, requests)
        return results
    finally:
        await client.close()
        services.store.close()


def run(messages: int, requests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="seh-bench-console-") as tmp:
        root = Path(tmp) / "fed"
        subprocess.run(
            [*HUB, "demo", "--dir", str(root), "--keep"], check=True, capture_output=True
        )
        started = time.perf_counter()
        ids = fill_store(root, messages)
        fill_seconds = time.perf_counter() - started
        server = subprocess.Popen(
            [*HUB, "serve", "--config", str(root / "hub.toml")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            pages = asyncio.run(run_pages(root, ids, requests))
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {
        "messages": messages,
        "fill_seconds": round(fill_seconds, 1),
        "requests_per_page": requests,
        "pages": pages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    # The synthetic requests are unknown to the demo hub: the message page says so (a
    # warning per page), as it would for a request the hub no longer holds.
    logging.getLogger("seh.console").setLevel(logging.ERROR)
    print(json.dumps(run(args.messages, args.requests), indent=2))


if __name__ == "__main__":
    main()
