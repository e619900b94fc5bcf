"""``hub audit verify`` rate and proof latency on a large transparency log (SQLite).

Builds a hub with ``hub demo``, replaces its audit log with ``--entries`` synthetic entries
written straight into the database with ``executemany`` (each entry valid, its leaf hash
the RFC 9162 hash of its canonical JSON, one tree head signed by the hub's key per batch of
``--batch`` entries, as the group-commit writer signs one head per batch), then:

* runs ``hub audit verify --config ... --json`` in a child process, ``--verify-runs``
  times, and reports entries per second (wall clock of the whole command, start-up
  included) and the child's peak RSS;
* builds inclusion and consistency proofs through the hub's own ``AuditService`` (what
  ``GET /v1/audit/proof/...`` calls) for random indexes and sizes, checks each one against
  the root, and reports the first proof's time (which pays for any index the service
  builds) and p50/p99 of the rest.

    .venv/bin/python bench/audit.py --entries 1000000

Speed targets (issue 12): verify >= 200,000 entries/s at 1M entries in bounded memory;
proofs <= 1 ms at 1M entries.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import random
import resource
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hub.audit.log import AuditLog
from hub.audit.merkle import CompactTree, verify_consistency, verify_inclusion
from hub.config import load_hub_config
from hub.crypto import read_key_file
from hub.model import AuditEntry, rfc3339
from hub.server.audit import AuditService
from hub.store import SqlStore

HUB = [sys.executable, "-m", "hub.cli.main"]
# Entries carry "keys" from the hub that records key rotations on (an older hub, measured
# for "before", rejects it).
_KEYS_FIELD = "keys" in AuditEntry.model_fields
NODES = ("health.bsw-icb", "la.wiltshire", "police.ctp-sw", "education.wilts-sch")
GATEWAYS = ["CDA1998-s115", "CTSA2015-s38", "UKGDPR-A6-1e", "UKGDPR-A9-2g", "DPA2018-S1P2p18"]


def _entries(start: datetime) -> Iterator[tuple[datetime, dict[str, Any]]]:
    """Log entries as the hub writes them for a stream of referrals.

    Each message is a submission and, for each of its two recipients, a delivery and an
    acknowledgement (five entries, as the demo's log has them); one in twenty is refused
    (one entry).
    """
    for message in itertools.count():
        sender = NODES[message % len(NODES)]
        recipients = [node for node in NODES if node != sender][:2]
        at = start + timedelta(milliseconds=180 * message)
        common: dict[str, Any] = {
            "envelope_sha256": hashlib.sha256(message.to_bytes(8, "big")).hexdigest(),
            "gateways": [],
            "kind": "referral",
            "message_id": (
                f"{0x01A24D5F + message // 65536:08x}-{message % 65536:04x}-"
                f"7{message % 4096:03x}-8{message % 4096:03x}-{message:012x}"
            ),
            "recipients": [],
            "rules": [],
            "scope": [],
            "subject_ref": f"subj-bench-{message % 50_000:06d}",
        }
        if _KEYS_FIELD:  # the hub writes every field, empty ones too
            common["keys"] = []
        refused = message % 20 == 19
        yield (
            at,
            {
                **common,
                "action": "refused" if refused else "submitted",
                "actor": sender,
                "at": rfc3339(at),
                "consent_state": "NOT_SOUGHT",
                "gateways": GATEWAYS,
                "marking": "OFFICIAL-SENSITIVE - PERSONAL DATA",
                "purpose": "PREVENT_REFERRAL",
                "recipients": recipients,
                "role": "SAFEGUARDING_LEAD",
                "rules": ["WF-01"] if refused else [],
            },
        )
        if refused:
            continue
        for step, action in enumerate(("delivered", "acknowledged"), 1):
            for offset, recipient in enumerate(recipients):
                moment = at + timedelta(milliseconds=40 * step + 7 * offset)
                yield (
                    moment,
                    {**common, "action": action, "actor": recipient, "at": rfc3339(moment)},
                )


def _canonical(entry: dict[str, Any]) -> str:
    # JCS of a document of plain strings and lists is json.dumps with sorted keys
    # (hub/crypto/canonical.py takes the same fast path).
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sqlite_time(moment: datetime) -> str:
    # How SQLAlchemy stores UTCDateTime on SQLite (naive UTC, microseconds).
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def build_log(database: Path, log: AuditLog, entries: int, batch: int) -> float:
    """Replace the database's audit log with ``entries`` synthetic ones; seconds taken."""
    started = time.perf_counter()
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=OFF")
    with connection:
        for table in ("audit_log", "audit_heads", "audit_state"):
            connection.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed table names)
    tree = CompactTree()
    stream = _entries(datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC))
    for first in range(0, entries, batch):
        rows = []
        for i in range(first, min(first + batch, entries)):
            at, entry = next(stream)
            entry_json = _canonical(entry)
            leaf = hashlib.sha256(b"\x00" + entry_json.encode()).digest()
            tree.append(leaf)
            rows.append(
                (
                    i,
                    entry_json,
                    leaf,
                    _sqlite_time(at),
                    entry["action"],
                    entry["actor"],
                    entry["kind"],
                    entry["message_id"],
                    entry["subject_ref"],
                    None,
                )
            )
        head = log.sign_head(tree.size, tree.root(), at)
        connection.executemany("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        connection.execute(
            "INSERT INTO audit_heads VALUES (?,?,?,?)",
            (head.size, tree.root(), _sqlite_time(at), head.signature),
        )
        if first % (batch * 512) == 0:
            connection.commit()
    connection.execute(
        "INSERT INTO audit_state VALUES (1, ?, ?)",
        (tree.size, json.dumps([node.hex() for node in tree.frontier()])),
    )
    connection.commit()
    # Check a sample is what the hub would accept (verify would say so, but later).
    for (entry_json,) in connection.execute(
        "SELECT entry_json FROM audit_log WHERE idx % 99991 = 0 OR idx < 4"
    ):
        AuditEntry.model_validate_json(entry_json)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return time.perf_counter() - started


def _descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                queue += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def time_verify(config: Path, extra: list[str]) -> tuple[float, float, int, int, dict[str, Any]]:
    """One ``hub audit verify``: wall and CPU seconds, peak RSS (KiB) of the command and of
    its largest worker, and its JSON answer.

    CPU is what the kernel counts for this process's children so far (the command and the
    workers it waited for); the caller takes the difference.
    Peak RSS is each process's own VmHWM, read every 20 ms while it runs (ru_maxrss would
    carry this benchmark's own peak across the exec).
    """
    peaks: dict[int, int] = {}
    started = time.perf_counter()
    child = subprocess.Popen(
        [*HUB, "audit", "verify", "--config", str(config), "--json", *extra],
        cwd=config.parent,  # not this checkout: -m would import hub from the working folder
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    running = threading.Event()
    running.set()

    def watch() -> None:
        while running.is_set():
            for pid in _descendants(child.pid):
                peaks[pid] = max(peaks.get(pid, 0), _status_kib(pid, "VmHWM"))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = child.communicate()
    running.clear()
    watcher.join()
    elapsed = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"hub audit verify failed ({child.returncode}): {out!r} {err!r}")
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = peaks.pop(child.pid, 0)
    return (
        elapsed,
        cpu.ru_utime + cpu.ru_stime,
        command,
        max(peaks.values(), default=0),
        json.loads(out),
    )


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def time_proofs(
    config_path: Path, log: AuditLog, entries: int, count: int, seed: int
) -> dict[str, Any]:
    config = load_hub_config(config_path)
    store = SqlStore.open(config.database_url)
    service = AuditService(store=store, log=log, auditors=(), clock=lambda: datetime.now(UTC))
    rng = random.Random(seed)  # noqa: S311 (which proofs to time, not a secret)
    results: dict[str, Any] = {}
    try:
        prepare = getattr(service, "prepare_proofs", None)
        if prepare is not None:  # the hub builds its proof index at start
            rss_before = _status_kib(os.getpid(), "VmRSS")
            started = time.perf_counter()
            await prepare()
            results["index_build_s"] = round(time.perf_counter() - started, 2)
            grown = _status_kib(os.getpid(), "VmRSS") - rss_before
            results["index_rss_mib"] = round(grown / 1024, 1)
        async with store.read() as view:
            heads = {head.size: head.root_hash for head in await view.audit.heads()}
        sizes = sorted(heads)
        for kind in ("inclusion", "consistency"):
            timings: list[float] = []
            for _ in range(count + 1):
                # Half the sizes are those of signed heads (whose roots check the proof),
                # half any size at all (not on a batch boundary).
                signed = rng.random() < 0.5
                if kind == "inclusion":
                    size = rng.choice(sizes) if signed else rng.randrange(1, entries + 1)
                    index = rng.randrange(size)
                    started = time.perf_counter()
                    answer = await service.inclusion(index, size)
                    timings.append(time.perf_counter() - started)
                    if signed:
                        proof = [bytes.fromhex(node) for node in answer["proof"]]
                        async with store.read() as view:
                            leaf = (await view.audit.rows(index, index + 1))[0].leaf_hash
                        assert verify_inclusion(leaf, index, size, proof, heads[size])
                else:
                    if signed:
                        second = rng.choice(sizes)
                        first = rng.choice(sizes[: sizes.index(second) + 1])
                    else:
                        second = rng.randrange(1, entries + 1)
                        first = rng.randrange(0, second + 1)
                    started = time.perf_counter()
                    answer = await service.consistency(first, second)
                    timings.append(time.perf_counter() - started)
                    if signed:
                        proof = [bytes.fromhex(node) for node in answer["proof"]]
                        assert verify_consistency(first, second, heads[first], heads[second], proof)
            rest = timings[1:]
            results[kind] = {
                "first_ms": round(timings[0] * 1000, 3),
                "p50_ms": round(_percentile(rest, 0.50) * 1000, 3),
                "p99_ms": round(_percentile(rest, 0.99) * 1000, 3),
                "max_ms": round(max(rest) * 1000, 3),
                "count": len(rest),
            }
    finally:
        await store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=256, help="entries per signed tree head")
    parser.add_argument("--verify-runs", type=int, default=3)
    parser.add_argument(
        "--verify-args",
        default="",
        help="more arguments for hub audit verify, in one string (--verify-args='--workers 0')",
    )
    parser.add_argument("--proofs", type=int, default=2000, help="proofs of each kind")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--dir", type=Path, help="keep the hub here (built if it has no log)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-audit-") as scratch:
        root = args.dir or Path(scratch)
        config = root / "hub.toml"
        if not config.exists():
            subprocess.run(
                [*HUB, "demo", "--dir", str(root), "--keep"],
                cwd=root.parent,  # not this checkout (see time_verify)
                check=True,
                capture_output=True,
            )
        # A hub kept from an older run may be behind the code's schema.
        subprocess.run(
            [*HUB, "admin", "migrate", "--config", str(config)],
            cwd=root,
            check=True,
            capture_output=True,
        )
        hub_config = load_hub_config(config)
        log = AuditLog(hub_keys=read_key_file(hub_config.signing_key_path))
        database = root / "hub.sqlite3"
        with sqlite3.connect(database) as probe:
            (have,) = probe.execute("SELECT count(*) FROM audit_log").fetchone()
        if have != args.entries:
            built = build_log(database, log, args.entries, args.batch)
            print(f"built {args.entries:,} entries in {built:.1f} s", file=sys.stderr)

        report: dict[str, Any] = {"entries": args.entries, "batch": args.batch}
        runs = []
        for _ in range(args.verify_runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            elapsed, cpu_total, peak_kib, worker_kib, answer = time_verify(
                config, shlex.split(args.verify_args)
            )
            cpu = cpu_total - (before.ru_utime + before.ru_stime)
            if not answer["ok"] or answer["entries"] != args.entries:
                raise SystemExit(f"verify did not pass: {answer}")
            runs.append((elapsed, cpu, peak_kib, worker_kib))
        if runs:
            report["verify"] = {
                "seconds": [round(run[0], 2) for run in runs],
                "cpu_seconds": [round(run[1], 2) for run in runs],
                "entries_per_s_best": round(args.entries / min(run[0] for run in runs)),
                "entries_per_s_median": round(
                    args.entries / statistics.median(run[0] for run in runs)
                ),
                "entries_per_cpu_s": round(args.entries / min(run[1] for run in runs)),
                "peak_rss_mib": round(max(run[2] for run in runs) / 1024, 1),
                "worker_peak_rss_mib": round(max(run[3] for run in runs) / 1024, 1),
            }
        print(json.dumps(report), file=sys.stderr)
        if args.proofs:
            report["proofs"] = asyncio.run(
                time_proofs(config, log, args.entries, args.proofs, args.seed)
            )
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
