"""``hub demo``: a demo federation on SQLite, a hub on loopback, a referral end to end.

Everything is synthetic: the people, the keys (generated for the demo and kept only in the
demo folder) and the organisations' nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from agency_adapters.health.synthetic import synthetic_patient_bundle
from hub.audit.log import AuditLog
from hub.cli.admin import hub_public_signing_key, open_hub_store
from hub.cli.audit import verify_hub_log
from hub.cli.common import EXIT_ERROR, EXIT_OK, CommandError
from hub.cli.demo_email import create_demo_bridge, run_email_episode
from hub.cli.node import client_for
from hub.cli.story import run_story
from hub.client import (
    ClientError,
    HubProblem,
    NodeClient,
    PayloadSource,
    load_node_profile,
    write_node_profile,
)
from hub.config import load_hub_config, render_hub_config
from hub.crypto import NodeKeys, write_key_file
from hub.model import Author, EnvelopeFields, Marking
from hub.model.examples import synthetic_referral_form
from hub.registry import enrol_node
from hub.server import create_app
from hub.store import SqlStore

__all__ = ["add_demo_command"]

DEMO_NODES = (
    ("health.bsw-icb", "health", "BSW Integrated Care Board safeguarding team"),
    ("police.ctp-sw", "police", "Counter Terrorism Policing South West, Prevent team"),
    ("la.wiltshire", "local_authority", "Wiltshire Council Prevent lead"),
)

# A synthetic referral, shaped like the National Prevent Referral Form. No real person.
DEMO_REFERRAL_DRAFT: dict[str, Any] = {
    "envelope": {
        "kind": "referral",
        "author": {"user_ref": "usr-demo-0001", "role": "SAFEGUARDING_LEAD", "vetting": "BPSS"},
        "recipients": ["la.wiltshire", "police.ctp-sw"],
        "marking": {"tier": "OFFICIAL", "sensitive": True, "descriptors": ["PERSONAL_DATA"]},
        "subject_ref": "subj-demo-0001",
        "purpose": "PREVENT_REFERRAL",
        "urgency": "routine",
        # The lawful basis (REFERENCE.md 2.1): a power to share, public task, and for the
        # special category data a referral holds, Art 9(2)(g) with DPA 2018 Sch 1 para 18;
        # without consent health names its exception to confidentiality (GW-13).
        "legal_basis": {
            "powers": ["CDA1998-s115", "CTSA2015-s38"],
            "art6": "UKGDPR-A6-1e",
            "art9": "UKGDPR-A9-2g",
            "sch1": "DPA2018-S1P2p18",
            "confidentiality": ["CLDC-PUBINT"],
            "agreement": "DSA-WILTS-PREVENT-2026",
        },
        # Not told: the referrer judged that telling them could increase the risk.
        "consent": {
            "state": "NOT_SOUGHT",
            "reason_code": "WOULD_PREJUDICE_OUTCOME",
            "subject_age": "ADULT",
        },
    },
    "payload": {
        "media_type": "application/json",
        # A complete, synthetic National Prevent Referral Form (hub/model/examples.py).
        "content": json.loads(synthetic_referral_form(0).model_dump_json()),
    },
}


def _say(step: str, text: str) -> None:
    print(f"[{step}] {text}", flush=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _create_federation(root: Path) -> Path:
    port = _free_port()
    hub_keys = NodeKeys.generate()
    write_key_file(root / "keys" / "hub.key", hub_keys)
    (root / "keys" / "hub.pub.json").write_text(json.dumps(hub_keys.public.to_json(), indent=2))
    config_path = root / "hub.toml"
    config_path.write_text(
        render_hub_config(
            hub_id="hub.demo",
            database="hub.sqlite3",
            blob_dir="blobs",
            signing_key="keys/hub.key",
            host="127.0.0.1",
            port=port,
        )
    )
    config = load_hub_config(config_path)
    store = await open_hub_store(config)
    try:
        for node_id, agency, name in DEMO_NODES:
            node_dir = root / "nodes" / node_id
            keys = NodeKeys.generate()
            write_key_file(node_dir / "keys" / "node.key", keys)
            write_node_profile(
                node_dir,
                node_id=node_id,
                agency_type=agency,
                hub_url=f"http://127.0.0.1:{port}",
                hub_id=config.hub_id,
                hub_signing_key=hub_keys.public.signing,
            )
            await enrol_node(
                store,
                node_id=node_id,
                agency_type=agency,
                display_name=name,
                public_keys=keys.public,
                accreditation="OFFICIAL-SENSITIVE",
                now=datetime.now(UTC),
                audit=AuditLog(hub_keys=hub_keys),
            )
            _say("enrol", f"{node_id:16} {agency:16} {name}")
        # Partners on email: nodes whose keys the local authority's bridge holds.
        for partner in create_demo_bridge(
            root,
            hub_url=f"http://127.0.0.1:{port}",
            hub_id=config.hub_id,
            hub_signing_key=hub_keys.public.signing,
            say=_say,
        ):
            await enrol_node(
                store,
                node_id=partner.node_id,
                agency_type=partner.agency,
                display_name=partner.organisation,
                public_keys=partner.public_keys,
                accreditation="OFFICIAL-SENSITIVE",
                now=datetime.now(UTC),
                audit=AuditLog(hub_keys=hub_keys),
            )
            _say("enrol", f"{partner.node_id:16} {partner.agency:16} {partner.organisation}")
    finally:
        await store.close()
    drafts = root / "drafts"
    drafts.mkdir(exist_ok=True)
    # The kept draft names its sender, so 'hub policy check' can judge it offline too.
    kept = {
        **DEMO_REFERRAL_DRAFT,
        "envelope": {"sender": "health.bsw-icb", **DEMO_REFERRAL_DRAFT["envelope"]},
    }
    (drafts / "referral.json").write_text(json.dumps(kept, indent=2) + "\n")
    return config_path


def _keep_health_record(root: Path) -> None:
    """Health's synthetic patient record where the console's release builder reads it.

    A real node's record system puts the record it is asked about into the node's
    ``records/`` folder (docs/console.md); the demo keeps the synthetic one it released
    from, so that the console can decide and release a new request about the same person.
    """
    folder = root / "nodes" / "health.bsw-icb" / "records"
    folder.mkdir(mode=0o700, exist_ok=True)
    record = synthetic_patient_bundle(1, today=datetime.now(UTC).date())
    (folder / "subj-demo-0001.json").write_text(json.dumps(record, indent=2) + "\n")
    _say("health.bsw-icb", "kept the synthetic patient record in records/ for the console")


async def _scenario(root: Path, config_path: Path) -> None:
    config = load_hub_config(config_path)
    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    _say("hub", f"{config.hub_id} listening on http://{config.host}:{config.port} (SQLite, WAL)")
    try:
        profiles = {n: load_node_profile(root / "nodes" / n) for n, _, _ in DEMO_NODES}
        clients: dict[str, NodeClient] = {n: client_for(p) for n, p in profiles.items()}
        try:
            health = clients["health.bsw-icb"]
            try:
                await run_story(clients, _say, root)
            except (HubProblem, ClientError) as failure:
                raise CommandError(f"the demo stopped: {failure}", EXIT_ERROR) from failure
            try:
                await run_email_episode(root, clients, _say)
            except (HubProblem, ClientError) as failure:
                raise CommandError(f"the demo stopped: {failure}", EXIT_ERROR) from failure
            _keep_health_record(root)
            payload = PayloadSource.json({"synthetic": True})
            _say(
                "health.bsw-icb",
                "trying to send SECRET material (pre-flight off, to show the hub's own check)",
            )
            secret = EnvelopeFields(
                kind="note",
                author=Author(user_ref="usr-demo-0001", role="SAFEGUARDING_LEAD", vetting="BPSS"),
                recipients=("police.ctp-sw",),
                marking=Marking(tier="SECRET"),
                purpose="PREVENT_TRIAGE",
            )
            try:
                await health.send(secret, payload, preflight=False)
            except HubProblem as refused:
                rules = ", ".join(f"{v.rule} ({v.message})" for v in refused.problem.violations)
                _say("hub", f"refused with {refused.problem.status}: {rules}")
            else:  # pragma: no cover - would be a hub bug
                raise CommandError("the hub accepted SECRET material; this is a bug")
        finally:
            for client in clients.values():
                await client.close()
    finally:
        await runner.cleanup()
        _say("hub", "stopped")
    # The demo ends as an auditor would: recompute the whole log and show its signed head.
    result = await verify_hub_log(config, hub_public_signing_key(config))
    if not result.ok:
        raise CommandError(f"the transparency log does not verify: {result.problem}", EXIT_ERROR)
    store = SqlStore.open(config.database_url)
    try:
        async with store.read() as view:
            head = await view.audit.latest_head()
    finally:
        await store.close()
    assert head is not None
    _say(
        "audit",
        f"log verified: {result.entries} entries, {result.heads} signed tree heads; current head "
        f"size {head.size}, root {head.root_hash.hex()[:16]}…, "
        f"signed {head.signed_at:%Y-%m-%d %H:%M:%S}Z ({head.signature[:16]}…)",
    )


# Health's referral route (node-local console.toml; the hub directory has no areas): a
# referral about someone in Wiltshire goes to its council's Prevent lead and the police.
DEMO_REFERRAL_ROUTES = {"Wiltshire": ["la.wiltshire", "police.ctp-sw"]}


def _write_referral_routes(root: Path) -> None:
    # Imported here, as hub/cli/console.py does: the demo needs none of the web console.
    from agency_adapters.node.console.settings import CONSOLE_TOML, render_referral_routes

    path = root / "nodes" / "health.bsw-icb" / CONSOLE_TOML
    path.write_text(render_referral_routes(DEMO_REFERRAL_ROUTES))
    _say("routes", f"health's referral route for Wiltshire in {path}")


def cmd_demo(args: argparse.Namespace) -> int:
    if args.dir is None:
        root = Path(tempfile.mkdtemp(prefix="seh-demo-"))
    else:
        root = args.dir
        if root.exists() and any(root.iterdir()):
            raise CommandError(f"{root} is not empty; give a new or empty folder for the demo")
        root.mkdir(parents=True, exist_ok=True)
    try:
        _say("setup", f"creating a demo federation in {root}")
        config_path = asyncio.run(_create_federation(root))
        asyncio.run(_scenario(root, config_path))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if args.keep:
        _write_referral_routes(root)
        # The command as it was run (.venv/bin/hub), so the lines can be pasted as they are.
        hub = sys.argv[0] if Path(sys.argv[0]).name == "hub" else "hub"
        print(
            "\nThe federation is kept. Try:\n"
            f"  {hub} policy check {root / 'drafts' / 'referral.json'}\n"
            f"  {hub} serve --config {root / 'hub.toml'}\n"
            f"  {hub} node submit --node {root / 'nodes' / 'health.bsw-icb'} "
            f"{root / 'drafts' / 'referral.json'}\n"
            f"  {hub} node inbox --node {root / 'nodes' / 'police.ctp-sw'}",
            flush=True,
        )
    _say("done", "demo finished")
    return EXIT_OK


def add_demo_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser(
        "demo",
        help="run a demo federation end to end",
        description=(
            "Create a hub and the nodes health.bsw-icb, police.ctp-sw and la.wiltshire on "
            "SQLite, start the hub on loopback and send a synthetic Prevent referral."
        ),
    )
    demo.add_argument("--dir", type=Path, help="folder for the federation (default: temporary)")
    demo.add_argument(
        "--keep", action="store_true", help="keep the folder for 'hub serve' and 'hub node'"
    )
    demo.set_defaults(func=cmd_demo)
