"""One large document end to end, each side in a process of its own.

``python -m bench.document send --node DIR --file F`` seals ``F`` to la.wiltshire and
sends it as the node client does (encrypted to a spool, uploaded in chunks, the envelope
submitted, the receipt verified); ``receive --node DIR --message-id ID --out F`` fetches
it, verifies the envelope and receipt, and decrypts the download into ``F``. Each prints
one JSON line: the seconds its work took (from after start-up to the end), its resident
set before the work began and its peak (``VmHWM``) over the whole process.

Kept apart so that each side's peak memory is its own, not the harness's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from hub.cli.node import client_for
from hub.client import PayloadSource, load_node_profile
from hub.model import Author, EnvelopeFields, Marking

__all__ = ["document_fields", "peak_rss_bytes"]


def document_fields(recipient: str) -> EnvelopeFields:
    return EnvelopeFields(
        kind="note",
        author=Author(user_ref="usr-bench-0001", role="SAFEGUARDING_LEAD", vetting="BPSS"),
        recipients=(recipient,),
        marking=Marking(tier="OFFICIAL", sensitive=True),
        subject_ref="subj-bench-0001",
        purpose="PREVENT_REFERRAL",
    )


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _rss_bytes() -> int:
    return _status_bytes("VmRSS")


def peak_rss_bytes() -> int:
    """This process's own peak resident set (VmHWM). Not ``ru_maxrss``: Linux carries that
    across ``execve``, so a child started from a large parent reports the parent's peak."""
    return _status_bytes("VmHWM")


async def _send(node: Path, source: Path, recipient: str) -> dict[str, object]:
    async with client_for(load_node_profile(node)) as client:
        await client.directory()
        rss_before = _rss_bytes()
        started = time.perf_counter()
        receipt = await client.send(
            document_fields(recipient), PayloadSource.file(source, "application/octet-stream")
        )
        seconds = time.perf_counter() - started
    return {"message_id": receipt.message_id, "seconds": seconds, "rss_before": rss_before}


async def _receive(node: Path, message_id: str, out: Path) -> dict[str, object]:
    async with client_for(load_node_profile(node)) as client:
        await client.directory()
        rss_before = _rss_bytes()
        started = time.perf_counter()
        message = await client.fetch(message_id)
        with out.open("wb") as sink:
            await client.open_payload(message, sink)
            written = sink.tell()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "bytes": written, "rss_before": rss_before}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="side", required=True)
    send = sub.add_parser("send")
    send.add_argument("--node", type=Path, required=True)
    send.add_argument("--file", type=Path, required=True)
    send.add_argument("--recipient", default="la.wiltshire")
    receive = sub.add_parser("receive")
    receive.add_argument("--node", type=Path, required=True)
    receive.add_argument("--message-id", required=True)
    receive.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.side == "send":
        result = asyncio.run(_send(args.node, args.file, args.recipient))
    else:
        result = asyncio.run(_receive(args.node, args.message_id, args.out))
    result["peak_rss"] = peak_rss_bytes()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
