"""Throughput and latency of message submission against a real ``hub serve`` process."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hub.cli.node import client_for
from hub.client import PayloadSource, load_node_profile
from hub.model import Author, EnvelopeFields, Marking

HUB = [sys.executable, "-m", "hub.cli.main"]


def _port(config: Path) -> int:
    for line in config.read_text().splitlines():
        if line.startswith("port"):
            return int(line.split("=")[1])
    raise SystemExit("no port in config")


async def _wait_ready(url: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url + "/v1/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit("hub did not start")


async def _load(root: Path, messages: int, concurrency: int, payload_bytes: int) -> None:
    profile = load_node_profile(root / "nodes" / "health.bsw-icb")
    await _wait_ready(profile.hub_url)
    fields = EnvelopeFields(
        kind="note",
        author=Author(user_ref="usr-bench-0001", role="SAFEGUARDING_LEAD", vetting="BPSS"),
        recipients=("la.wiltshire", "police.ctp-sw"),
        marking=Marking(tier="OFFICIAL", sensitive=True),
        subject_ref="subj-bench-0001",
        purpose="PREVENT_REFERRAL",
    )
    payload = PayloadSource(media_type="application/json", data=b'"' + b"x" * payload_bytes + b'"')
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(messages):
        queue.put_nowait(i)
    async with client_for(profile) as client:
        await client.directory()

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                started = time.perf_counter()
                await client.send(fields, payload)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    result = {
        "messages": messages,
        "concurrency": concurrency,
        "payload_bytes": payload_bytes,
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="seh-bench-") as tmp:
        root = Path(tmp) / "fed"
        subprocess.run(
            [*HUB, "demo", "--dir", str(root), "--keep"], check=True, capture_output=True
        )
        server = subprocess.Popen(
            [*HUB, "serve", "--config", str(root / "hub.toml")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            asyncio.run(_load(root, args.messages, args.concurrency, args.payload_bytes))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
