"""Throughput and latency of message submission against real ``hub serve`` processes.

One process on the demo's SQLite database by default. ``--database-url`` runs the hub on
an empty PostgreSQL database instead (the bench creates the schema and enrols the demo's
nodes there; give a fresh database each run). ``--workers N`` runs ``hub serve --workers
N`` (N processes on one port, PostgreSQL only); ``--processes N`` runs N separate ``hub
serve`` processes on N ports of one database, and the load generator spreads its
requests over them.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from hub.audit.log import AuditLog
from hub.cli.node import client_for
from hub.client import NodeClient, PayloadSource, load_node_profile
from hub.config import load_hub_config, toml_string
from hub.crypto import read_key_file
from hub.model import Author, EnvelopeFields, Marking
from hub.registry import enrol_node
from hub.store import SqlStore
from hub.store.migrate import prepare_database

HUB = [sys.executable, "-m", "hub.cli.main"]
DEMO_NODES = ("health.bsw-icb", "la.wiltshire", "police.ctp-sw")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _wait_ready(url: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            try:
                async with session.get(url + "/v1/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit(f"hub at {url} did not start")


async def _use_postgres(root: Path, url: str) -> None:
    """Point the demo's hub.toml at ``url`` and enrol the demo's nodes there."""
    config_path = root / "hub.toml"
    text = config_path.read_text().replace('database = "hub.sqlite3"', f"url = {toml_string(url)}")
    config_path.write_text(text)
    config = load_hub_config(config_path)
    hub_keys = read_key_file(config.signing_key_path)
    await prepare_database(url)  # the schema at the code's head revision
    store = SqlStore.open(url)
    try:
        for node_id in DEMO_NODES:
            profile = load_node_profile(root / "nodes" / node_id)
            await enrol_node(
                store,
                node_id=node_id,
                agency_type=profile.agency_type,
                display_name=node_id,
                public_keys=profile.load_keys().public,
                accreditation="OFFICIAL-SENSITIVE",
                now=datetime.now(UTC),
                audit=AuditLog(hub_keys=hub_keys),
            )
    finally:
        await store.close()


def _set_port(root: Path, port: int) -> Path:
    """A copy of hub.toml that listens on ``port``."""
    config = root / f"hub-{port}.toml"
    lines = [
        f"port = {port}" if line.startswith("port") else line
        for line in (root / "hub.toml").read_text().splitlines()
    ]
    config.write_text("\n".join(lines) + "\n")
    return config


async def _load(urls: list[str], root: Path, messages: int, concurrency: int, size: int) -> None:
    profile = load_node_profile(root / "nodes" / "health.bsw-icb")
    for url in urls:
        await _wait_ready(url)
    fields = EnvelopeFields(
        kind="note",
        author=Author(user_ref="usr-bench-0001", role="SAFEGUARDING_LEAD", vetting="BPSS"),
        recipients=("la.wiltshire", "police.ctp-sw"),
        marking=Marking(tier="OFFICIAL", sensitive=True),
        subject_ref="subj-bench-0001",
        purpose="PREVENT_REFERRAL",
    )
    payload = PayloadSource(media_type="application/json", data=b'"' + b"x" * size + b'"')
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(messages):
        queue.put_nowait(i)
    clients: list[NodeClient] = [
        client_for(dataclasses.replace(profile, hub_url=url)) for url in urls
    ]
    try:
        for client in clients:
            await client.directory()

        async def worker(client: NodeClient) -> None:
            while not queue.empty():
                queue.get_nowait()
                started = time.perf_counter()
                await client.send(fields, payload)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker(clients[n % len(clients)]) for n in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        for client in clients:
            await client.close()
    latencies.sort()
    result = {
        "messages": messages,
        "concurrency": concurrency,
        "payload_bytes": size,
        "processes": len(urls),
        "seconds": round(elapsed, 3),
        "messages_per_second": round(messages / elapsed, 1),
        "latency_ms_p50": round(statistics.median(latencies) * 1000, 2),
        "latency_ms_p99": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
    }
    print(json.dumps(result, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--payload-bytes", type=int, default=2048)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default SQLite)")
    parser.add_argument("--workers", type=int, default=1, help="hub serve --workers N")
    parser.add_argument("--processes", type=int, default=1, help="separate hub serve processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="seh-bench-") as tmp:
        root = Path(tmp) / "fed"
        subprocess.run(
            [*HUB, "demo", "--dir", str(root), "--keep"], check=True, capture_output=True
        )
        if args.database_url:
            asyncio.run(_use_postgres(root, args.database_url))
        extra = ["--workers", str(args.workers)] if args.workers > 1 else []
        ports = [_free_port() for _ in range(args.processes)]
        servers = [
            subprocess.Popen(
                [*HUB, "serve", "--config", str(_set_port(root, port)), *extra],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for port in ports
        ]
        try:
            urls = [f"http://127.0.0.1:{port}" for port in ports]
            asyncio.run(_load(urls, root, args.messages, args.concurrency, args.payload_bytes))
        finally:
            for server in servers:
                server.terminate()
            for server in servers:
                server.wait(timeout=60)


if __name__ == "__main__":
    main()
