"""The transparency log at size: ``hub audit verify``'s rate and proof latency.

A minimal benchmark of its own (no ``bench/audit.py`` was on main when this was written;
when one lands, the harness should call it instead). The log is filled with what the hub
writes for that many accepted referrals: each entry is built by the hub's
``audit_entry`` from a real sealed referral under a fresh message id, hashed by
``entry_leaf_hash`` into a ``CompactTree``, with a head signed by ``AuditLog.sign_head``
(one per entry by default, as today's hub signs one per append), written with one
``executemany`` per table per 2,000 entries into the hub's own tables. Going through
``AuditLog.append`` one entry at a time would be the same rows at about 4 ms an entry on
a loaded two-core machine, over an hour for a million. How long the filling takes is
reported; it is not a benchmark.

Then the hub's ``audit verify --config ... --json`` command runs in a process of its own
(``python -m bench.auditlog``, which calls ``hub.cli.main.main`` as the ``hub`` script
does): its time from after its imports to its answer gives entries per second, and the
process's peak resident set is reported beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from hub.audit.entries import audit_entry
from hub.audit.log import AuditLog, entry_leaf_hash
from hub.audit.merkle import CompactTree, verify_consistency, verify_inclusion
from hub.client.ids import uuid7
from hub.config import load_hub_config
from hub.crypto import NodeKeys, canonical_json
from hub.model import Envelope
from hub.store.dialect import open_engine
from hub.store.tables import audit_heads, audit_log, audit_state

__all__ = ["VerifyRun", "check_proofs", "fill_log", "time_verify"]

_BATCH = 2000


async def _fill(
    url: str, hub_keys: NodeKeys, template: Envelope, entries: int, heads_every: int
) -> int:
    engine, _ = open_engine(url)
    log = AuditLog(hub_keys=hub_keys)
    try:
        async with engine.connect() as conn:
            state = (await conn.execute(select(audit_state).where(audit_state.c.id == 1))).one()
        tree = CompactTree(state.size, [bytes.fromhex(h) for h in json.loads(state.frontier_json)])
        target = tree.size + entries
        while tree.size < target:
            rows: list[dict[str, Any]] = []
            heads: list[dict[str, Any]] = []
            for _ in range(min(_BATCH, target - tree.size)):
                at = datetime.now(UTC)
                envelope = template.model_copy(update={"id": uuid7(at)})
                entry = audit_entry(envelope, secrets.token_hex(32), at, "submitted")
                entry_json = canonical_json(entry.model_dump(mode="json", exclude_none=True))
                leaf = entry_leaf_hash(entry_json.decode())
                # The columns _Audit.add_leaf writes (hub/store/sql.py), one row per entry.
                rows.append(
                    {
                        "idx": tree.size,
                        "entry_json": entry_json.decode(),
                        "leaf_hash": leaf,
                        "at": at,
                        "action": entry.action,
                        "actor": entry.actor,
                        "kind": entry.kind,
                        "message_id": entry.message_id,
                        "subject_ref": entry.subject_ref,
                        "case_ref": entry.case_ref,
                    }
                )
                tree.append(leaf)
                if tree.size % heads_every == 0 or tree.size == target:
                    head = log.sign_head(tree.size, tree.root(), at)
                    heads.append(
                        {
                            "size": head.size,
                            "root_hash": bytes.fromhex(head.root_hash),
                            "signed_at": at,
                            "signature": head.signature,
                        }
                    )
            async with engine.begin() as conn:
                await conn.execute(audit_log.insert(), rows)
                if heads:
                    await conn.execute(audit_heads.insert(), heads)
                await conn.execute(
                    update(audit_state)
                    .where(audit_state.c.id == 1)
                    .values(
                        size=tree.size,
                        frontier_json=json.dumps([h.hex() for h in tree.frontier()]),
                    )
                )
        return tree.size
    finally:
        await engine.dispose()


def fill_log(
    config_path: Path,
    hub_keys: NodeKeys,
    template_body: bytes,
    entries: int,
    *,
    heads_every: int = 1,
) -> tuple[int, float]:
    """Append ``entries`` entries, a signed tree head every ``heads_every`` of them;
    return the log's size after and the seconds it took."""
    template = Envelope.model_validate_json(template_body)
    url = load_hub_config(config_path).database_url
    started = time.perf_counter()
    size = asyncio.run(_fill(url, hub_keys, template, entries, heads_every))
    return size, time.perf_counter() - started


async def _leaf_hashes(url: str, size: int) -> list[bytes]:
    engine, _ = open_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(audit_log.c.leaf_hash)
                .where(audit_log.c.idx < size)
                .order_by(audit_log.c.idx)
            )
            return [bytes(row[0]) for row in rows]
    finally:
        await engine.dispose()


def check_proofs(
    config_path: Path,
    size: int,
    inclusion: Sequence[tuple[Any, int, bytes]],
    consistency: Sequence[tuple[Any, int, bytes]],
) -> tuple[int, list[str]]:
    """After the clock: every proof the hub gave must verify (RFC 9162) against the roots
    recomputed here from the stored leaf hashes. Returns how many did and what did not."""
    leaves = asyncio.run(_leaf_hashes(load_hub_config(config_path).database_url, size))
    wanted = sorted({int(tag) for tag, _, _ in consistency} | {size})
    roots: dict[int, bytes] = {}
    tree = CompactTree()
    for leaf in leaves:
        tree.append(leaf)
        if tree.size in wanted:
            roots[tree.size] = tree.root()
    good, bad = 0, []
    for kind, answers in (("inclusion", inclusion), ("consistency", consistency)):
        for tag, status, body in answers:
            point = int(tag)
            try:
                proof = [bytes.fromhex(node) for node in json.loads(body)["proof"]]
            except (ValueError, KeyError, TypeError):
                bad.append(f"{kind} {point}: HTTP {status}, not a proof")
                continue
            if kind == "inclusion":
                ok = verify_inclusion(leaves[point], point, size, proof, roots[size])
            else:
                ok = verify_consistency(point, size, roots[point], roots[size], proof)
            if ok:
                good += 1
            else:
                bad.append(f"{kind} proof at {point} does not verify")
    return good, bad


@dataclass(frozen=True, slots=True)
class VerifyRun:
    ok: bool
    entries: int
    heads: int
    # The command's own work, from after its imports to its answer; and the whole process.
    seconds: float
    wall_seconds: float
    peak_rss: int
    output: str

    @property
    def rate(self) -> float:
        return self.entries / max(self.seconds, 1e-9)


def time_verify(config_path: Path) -> VerifyRun:
    """``hub audit verify --config ... --json`` in a process of its own (``main`` below),
    timed from after its imports, with that process's peak RSS."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "bench.auditlog", "--config", str(config_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
        timeout=7200,
    )
    wall = time.perf_counter() - started
    try:
        timing = json.loads(result.stdout.strip().splitlines()[-1])
        report = json.loads(timing["output"])
    except (ValueError, IndexError, KeyError):
        return VerifyRun(False, 0, 0, wall, wall, 0, (result.stdout + result.stderr)[-2000:])
    return VerifyRun(
        ok=timing["exit"] == 0 and bool(report.get("ok")),
        entries=int(report.get("entries", 0)),
        heads=int(report.get("signed_tree_heads", 0)),
        seconds=float(timing["seconds"]),
        wall_seconds=wall,
        peak_rss=int(timing["peak_rss"]),
        output=timing["output"][-2000:],
    )


def main(argv: list[str] | None = None) -> None:
    """Run the hub's own ``audit verify`` command, as ``hub audit verify`` does, timing it
    from after the imports ``hub`` makes for it."""
    parser = argparse.ArgumentParser(description=time_verify.__doc__)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    import hub.cli.audit  # noqa: F401 - imported before the clock, as the command imports it
    from hub.cli.main import main as hub_main

    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = hub_main(["audit", "verify", "--config", args.config, "--json"])
    seconds = time.perf_counter() - started
    from bench.document import peak_rss_bytes

    peak = peak_rss_bytes()
    print(
        json.dumps({"exit": code, "seconds": seconds, "peak_rss": peak, "output": out.getvalue()})
    )


if __name__ == "__main__":
    main()
