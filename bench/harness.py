"""``python -m bench``: every benchmark in one run, with same-run anchors, as one table.

Order of work (each step's figures go into one row of the table and of ``--json``):

1. A bench federation on SQLite (``bench.federation``) and its ``hub serve``; every
   message of every submit run sealed and signed now, before any clock.
2. For each concurrency (1, 16, 64): the trivial aiohttp server, MESH's sandbox and the
   hub, one after another, so the anchors and the hub see the same machine at the same
   moment (``bench.anchors``). Every receipt the hub gives is verified afterwards.
3. The load generator's own CPU per message, against the trivial server.
4. The inbox: pages listed, then each message fetched and acknowledged (acks signed before
   the clock).
5. One large document end to end (``bench.document``), peak RSS of sender, receiver and hub.
6. The log at size (``bench.auditlog``): ``hub audit verify`` and proof latency.
7. PostgreSQL: one hub process, then two, on one database made for the run.

Servers are subprocesses on loopback; the generator is this process. Rows that cannot run
here say why (``skipped``); rows that fail say how (``failed``), and the run exits 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from bench import anchors, auditlog, report
from bench.federation import (
    SENDER,
    SENDERS,
    Federation,
    create_federation,
    postgres_database,
    serve_supports_workers,
)
from bench.loadgen import (
    Lane,
    MeshToken,
    RequestSigner,
    Run,
    WorkItem,
    loop_name,
    percentile,
    prepare,
    run_load,
    run_loop,
)
from bench.processes import ServerProcess, free_port
from bench.sealed import (
    SealedMessage,
    Senders,
    ack_items,
    check_receipts,
    seal_messages,
)
from hub.client import NodeProfile

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
PAYLOAD_BYTES = 1024
POSTGRES_URL_VARIABLE = "HUB_TEST_POSTGRES_URL"


@dataclass(frozen=True)
class Profile:
    """How much work each benchmark does (``--quick`` or the full run)."""

    name: str
    submit: dict[int, int]
    seconds: float
    inbox: int
    document_bytes: int
    audit_entries: int
    proofs: int
    postgres: int


FULL = Profile(
    name="full",
    submit={1: 1000, 16: 4000, 64: 10000},
    seconds=30.0,
    inbox=2000,
    document_bytes=1024 * MIB,
    audit_entries=50_000,
    proofs=200,
    postgres=5000,
)
QUICK = Profile(
    name="quick",
    submit={1: 150, 16: 600, 64: 1500},
    seconds=8.0,
    inbox=300,
    document_bytes=64 * MIB,
    audit_entries=5000,
    proofs=50,
    postgres=1200,
)


# --------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------


@dataclass
class Row:
    id: str
    benchmark: str
    target: str
    status: str = "ok"
    reason: str | None = None
    concurrency: int | None = None
    count: int | None = None
    seconds: float | None = None
    rate: float | None = None
    unit: str = "msg/s"
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int | None = None
    server_cpu_us: float | None = None
    generator_cpu_us: float | None = None
    other_load_cores: float | None = None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Skip(Exception):
    """This benchmark cannot run here; the message says why."""


def _busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (every core), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(value) for value in fields]
    # user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    busy = sum(ticks[:8]) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


@dataclass
class _Measured:
    run: Run
    server_cpu: float
    others: float


def _measure(servers: Sequence[ServerProcess], load: Callable[[], Run]) -> _Measured:
    """Run ``load``, and take what the servers and the rest of the machine spent meanwhile."""
    server_before = sum(server.cpu_seconds() for server in servers)
    busy_before = _busy_seconds()
    run = load()
    busy = _busy_seconds() - busy_before
    server_cpu = sum(server.cpu_seconds() for server in servers) - server_before
    others = max(0.0, busy - server_cpu - run.cpu_seconds)
    return _Measured(run, server_cpu, others)


def _fill_row(row: Row, measured: _Measured) -> Row:
    run = measured.run
    row.concurrency = run.concurrency
    row.count = run.completed
    row.seconds = round(run.elapsed, 3)
    row.rate = run.rate
    row.p50_ms = percentile(run.latencies, 0.50) * 1000
    row.p99_ms = percentile(run.latencies, 0.99) * 1000
    row.errors = run.errors
    if run.completed:
        row.server_cpu_us = measured.server_cpu / run.completed * 1e6
        row.generator_cpu_us = run.cpu_seconds / run.completed * 1e6
    if run.elapsed > 0:
        # Clock ticks are 10 ms: a run of a few ticks can over-count; a machine has its cores.
        row.other_load_cores = min(measured.others / run.elapsed, float(os.cpu_count() or 1))
        row.extra["generator_cpu_share"] = run.cpu_seconds / run.elapsed
    if run.errors:
        row.notes.append(f"{run.errors} errors, e.g. {run.error_samples[0]}")
    return row


def _per_core(row: Row) -> Row:
    """Note what the server's CPU per operation would allow on one whole core."""
    if row.server_cpu_us:
        row.notes.append(
            f"server CPU {row.server_cpu_us:,.0f} us/op: ~{1e6 / row.server_cpu_us:,.0f} "
            f"{row.unit} per core it is given"
        )
    return row


# --------------------------------------------------------------------------------------
# The harness
# --------------------------------------------------------------------------------------


def _say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


class Harness:
    def __init__(self, args: argparse.Namespace, profile: Profile, workdir: Path) -> None:
        self.args = args
        self.profile = profile
        self.workdir = workdir
        self.rows: list[Row] = []
        self.meta: dict[str, Any] = {}
        self.only: set[str] | None = set(args.only.split(",")) if args.only else None

    def wanted(self, group: str) -> bool:
        return self.only is None or group in self.only

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        _say(report.progress_line(row))
        return row

    @contextmanager
    def attempt(self, group: str, row_ids: Sequence[tuple[str, str, str]]) -> Iterator[None]:
        """Run a block that fills some rows; a skip or failure becomes those rows."""
        started = time.perf_counter()
        try:
            yield
        except _Skip as skip:
            for row_id, benchmark, target in row_ids:
                if not any(row.id == row_id for row in self.rows):
                    self.add(Row(row_id, benchmark, target, status="skipped", reason=str(skip)))
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            _say(f"failed: {detail}\n{traceback.format_exc()}")
            for row_id, benchmark, target in row_ids:
                if not any(row.id == row_id for row in self.rows):
                    self.add(Row(row_id, benchmark, target, status="failed", reason=detail[:500]))
        finally:
            phases = self.meta.setdefault("phase_seconds", {})
            phases[group] = round(time.perf_counter() - started, 1)

    # -- submits ------------------------------------------------------------------------

    def warmup_count(self, concurrency: int) -> int:
        """Untimed messages before each measured run: two per connection, 10 to 128 (no
        more than --messages, when that is given)."""
        count = min(max(2 * concurrency, 10), 128)
        return min(count, self.args.messages) if self.args.messages else count

    def submit_counts(self) -> dict[int, int]:
        counts = dict(self.profile.submit)
        if self.args.concurrency:
            levels = [int(c) for c in self.args.concurrency.split(",")]
            counts = {c: counts.get(c, max(counts.values())) for c in levels}
        if self.args.messages:
            counts = dict.fromkeys(counts, self.args.messages)
        return counts

    def load(
        self,
        row: Row,
        servers: Sequence[ServerProcess],
        port: int,
        lanes: Sequence[Lane],
        *,
        concurrency: int,
        warmup: Sequence[Lane] = (),
        keep_answers: bool = False,
        ports: Sequence[int] | None = None,
    ) -> tuple[Row, Run]:
        """Warm up (untimed; its answers kept in ``warm_answers``), then measure one load
        run into ``row``. Each lane is a node's work items and its request signer."""

        def go(work: Sequence[Lane], seconds: float | None, keep: bool) -> Run:
            return cast(
                Run,
                run_loop(
                    run_load(
                        "127.0.0.1",
                        port,
                        lanes=work,
                        concurrency=concurrency,
                        seconds=seconds,
                        keep_answers=keep,
                        ports=ports,
                    )
                ),
            )

        if warmup:
            warm = go(warmup, None, keep_answers)
            self.warm_answers.extend(warm.answers)
        measured = _measure(servers, lambda: go(lanes, self.profile.seconds, keep_answers))
        return _fill_row(row, measured), measured.run

    def run_submits(self, federation: Federation, hub: ServerProcess) -> None:
        counts = self.submit_counts()
        senders = run_loop(Senders.open([federation.profile(node) for node in SENDERS]))
        started = time.perf_counter()
        sealed = {c: senders.seal(n, PAYLOAD_BYTES) for c, n in counts.items()}
        warm = {c: senders.seal(self.warmup_count(c), PAYLOAD_BYTES) for c in counts}
        total = sum(counts.values()) + sum(self.warmup_count(c) for c in counts)
        prepare_seconds = time.perf_counter() - started
        self.meta["sealing"] = {
            "messages": total,
            "seconds": round(prepare_seconds, 3),
            "per_message_us": round(prepare_seconds / max(total, 1) * 1e6, 1),
            "body_bytes": len(next(iter(sealed[next(iter(sealed))].values()))[0].body),
            "payload_bytes": PAYLOAD_BYTES,
            "senders": list(SENDERS),
        }
        _say(f"sealed and signed {total} messages in {prepare_seconds:.1f} s, before any clock")

        def token() -> MeshToken:
            return MeshToken(anchors.MESH_SHARED_KEY, anchors.MESH_SENDER, anchors.MESH_PASSWORD)

        def mesh_lane(batches: dict[str, list[SealedMessage]], port: int) -> list[Lane]:
            messages = [message for batch in batches.values() for message in batch]
            return [(anchors.mesh_items(messages, host=f"127.0.0.1:{port}"), token)]

        mesh_reason = anchors.mesh_available()
        mesh: ServerProcess | None = None
        mesh_port, mesh_sent = 0, 0
        trivial, trivial_port = anchors.start_trivial(self.workdir)
        try:
            if mesh_reason is None:
                try:
                    mesh, mesh_port = anchors.start_mesh(self.workdir)
                    anchors.mesh_send_one(mesh_port, b"x" * PAYLOAD_BYTES)
                    mesh_sent = 1
                except Exception as exc:
                    mesh_reason = f"mesh-sandbox did not start here: {type(exc).__name__}: {exc}"
                    if mesh is not None:
                        mesh.close()
                        mesh = None
            if mesh_reason is not None:
                _say(f"MESH anchor MISSING: {mesh_reason}")
                self.meta["mesh"] = {"available": False, "reason": mesh_reason}
            for c, batches in sealed.items():
                row, _ = self.load(
                    Row(f"submit.trivial.c{c}", "submit 1 KiB", "trivial aiohttp"),
                    [trivial],
                    trivial_port,
                    senders.lanes(batches, port=trivial_port),
                    warmup=senders.lanes(warm[c], port=trivial_port),
                    concurrency=c,
                )
                self.add(row)
                if mesh is not None:
                    row, _ = self.load(
                        Row(f"submit.mesh.c{c}", "submit 1 KiB", "MESH sandbox"),
                        [mesh],
                        mesh_port,
                        mesh_lane(batches, mesh_port),
                        warmup=mesh_lane(warm[c], mesh_port),
                        concurrency=c,
                    )
                    mesh_sent += self.warmup_count(c) + (row.count or 0) - (row.errors or 0)
                    self.add(row)
                else:
                    self.add(
                        Row(
                            f"submit.mesh.c{c}",
                            "submit 1 KiB",
                            "MESH sandbox",
                            status="skipped",
                            reason=f"MESH anchor missing: {mesh_reason}",
                            concurrency=c,
                        )
                    )
                self.warm_answers = []
                row, run = self.load(
                    Row(f"submit.hub.c{c}", "submit 1 KiB", f"hub ({federation.engine})"),
                    [hub],
                    federation.port,
                    senders.lanes(batches, port=federation.port),
                    warmup=senders.lanes(warm[c], port=federation.port),
                    concurrency=c,
                    keep_answers=True,
                )
                answers = [*self.warm_answers, *run.answers]
                self.add(_per_core(self._receipts_checked(row, federation, answers)))
            if mesh is not None:
                self.meta["mesh"] = {
                    "available": True,
                    "mesh_sandbox": _version("mesh-sandbox"),
                    "mesh_client": _version("mesh-client"),
                    "accepted": mesh_sent,
                    "recipient_inbox": anchors.mesh_inbox_count(mesh_port),
                    "store_mode": "file",
                    "auth_mode": "full",
                    "workers": 1,
                }
        finally:
            trivial.close()
            if mesh is not None:
                mesh.close()
        self.generator_row()

    def _receipts_checked(
        self, row: Row, federation: Federation, answers: Sequence[tuple[Any, int, bytes]]
    ) -> Row:
        """Every answer of the run (and its warm-up) that accepted a message must be a
        receipt signed by the hub for that message; the accepted go to the inbox run."""
        good, bad = check_receipts(answers, federation.hub_keys.public.signing)
        row.extra["receipts_verified"] = good
        self.accepted.extend(tag for tag, status, _ in answers if status in (200, 201))
        if bad:
            row.status = "failed"
            row.reason = f"{len(bad)} receipts did not verify, e.g. {bad[0]}"
        return row

    accepted: list[SealedMessage]
    warm_answers: list[tuple[Any, int, bytes]]

    def generator_row(self) -> None:
        """The generator's own cost, from its busiest run against the trivial server."""
        trivial = [row for row in self.rows if row.id.startswith("submit.trivial.") and row.rate]
        if not trivial:
            return
        busiest = max(trivial, key=lambda row: row.concurrency or 0)
        assert busiest.generator_cpu_us is not None
        hub_rows = [row for row in self.rows if row.id.startswith("submit.hub.") and row.rate]
        hub_best = max((row.rate or 0.0 for row in hub_rows), default=0.0)
        capacity = 1e6 / busiest.generator_cpu_us
        row = Row(
            "generator",
            "load generator",
            "its own CPU per message",
            concurrency=busiest.concurrency,
            count=busiest.count,
            rate=capacity,
            unit="msg/s ceiling",
            generator_cpu_us=busiest.generator_cpu_us,
        )
        share = busiest.extra.get("generator_cpu_share", 0.0)
        row.extra = {
            "cpu_share_against_trivial": share,
            "hub_best_rate": hub_best,
            "headroom_over_hub": capacity / hub_best if hub_best else None,
            "loop": loop_name(),
        }
        row.notes.append(
            f"{busiest.generator_cpu_us:.0f} us CPU per message against the trivial server "
            f"(one core: ~{capacity:,.0f} msg/s); {share * 100:.0f} % of a core while it ran"
        )
        if hub_best:
            row.notes.append(f"{capacity / hub_best:.0f}x the hub's best rate in this run")
        self.add(row)

    # -- inbox --------------------------------------------------------------------------

    def run_inbox(self, federation: Federation, hub: ServerProcess) -> None:
        reader = federation.profile("la.wiltshire")
        wanted = self.args.messages or self.profile.inbox
        host = f"127.0.0.1:{federation.port}"
        if len(self.accepted) < wanted:
            # Without the submit runs (--only inbox): the messages are put there first.
            senders = run_loop(Senders.open([federation.profile(node) for node in SENDERS]))
            missing = senders.seal(wanted - len(self.accepted), PAYLOAD_BYTES)
            self.warm_answers = []
            self.load(
                Row("inbox.setup", "", ""),
                [hub],
                federation.port,
                (),
                warmup=senders.lanes(missing, port=federation.port),
                concurrency=16,
                keep_answers=True,
            )
            self.accepted += [tag for tag, status, _ in self.warm_answers if status in (200, 201)]
        messages = self.accepted[:wanted]
        cursors = run_loop(_inbox_cursors(reader, 100))
        key = reader.load_keys().signing

        def signer() -> RequestSigner:
            return RequestSigner(key, reader.node_id)

        pages = [
            WorkItem((prepare("GET", "/v1/inbox", host=host, query=f"after={c}&limit=100&wait=0"),))
            for c in cursors
        ]
        row, _ = self.load(
            Row("inbox.list", "inbox page of 100", f"hub ({federation.engine})", unit="pages/s"),
            [hub],
            federation.port,
            [(pages, signer)],
            warmup=[(pages[:2], signer)],
            concurrency=1,
        )
        self.add(row)
        items = ack_items(reader, messages, host=host)
        warm = min(32, len(items) // 5)
        row, _ = self.load(
            Row("inbox.fetch_ack", "fetch + ack", f"hub ({federation.engine})"),
            [hub],
            federation.port,
            [(items[warm:], signer)],
            warmup=[(items[:warm], signer)],
            concurrency=16,
        )
        row.notes.append("each: GET the message, then POST its acknowledgement (signed before)")
        self.add(row)

    # -- one large document -------------------------------------------------------------

    def run_document(self, federation: Federation, hub: ServerProcess) -> None:
        size = self.args.size or self.profile.document_bytes
        folder = self.workdir / "document"
        folder.mkdir(exist_ok=True)
        source, received = folder / "document.bin", folder / "received.bin"
        digest = hashlib.sha256()
        with source.open("wb") as out:
            block = os.urandom(MIB)
            written = 0
            while written < size:
                piece = block[: min(MIB, size - written)]
                # Every MiB differs, so nothing downstream can deduplicate or compress it.
                piece = hashlib.sha256(written.to_bytes(8, "big")).digest() + piece[32:]
                digest.update(piece)
                out.write(piece)
                written += len(piece)
        reset = hub.reset_peak_rss()
        hub_rss_before = hub.rss_bytes()
        send = _document_side(
            "send", "--node", str(federation.node_dir(SENDER)), "--file", str(source)
        )
        receive = _document_side(
            "receive",
            "--node",
            str(federation.node_dir("la.wiltshire")),
            "--message-id",
            str(send["message_id"]),
            "--out",
            str(received),
        )
        hub_peak = hub.peak_rss_bytes()
        with received.open("rb") as back:
            check = hashlib.sha256()
            while chunk := back.read(MIB):
                check.update(chunk)
        seconds = float(send["seconds"]) + float(receive["seconds"])
        row = Row(
            "document",
            f"document {_size_text(size)} end to end",
            f"hub ({federation.engine})",
            count=1,
            seconds=round(seconds, 3),
            rate=size / seconds / 1e6,
            unit="MB/s",
        )
        row.extra = {
            "bytes": size,
            "send_seconds": send["seconds"],
            "receive_seconds": receive["seconds"],
            "send_mb_s": size / float(send["seconds"]) / 1e6,
            "receive_mb_s": size / float(receive["seconds"]) / 1e6,
            "sender_peak_rss": send["peak_rss"],
            "sender_rss_before": send["rss_before"],
            "receiver_peak_rss": receive["peak_rss"],
            "receiver_rss_before": receive["rss_before"],
            "hub_peak_rss": hub_peak,
            "hub_rss_before": hub_rss_before,
            "hub_peak_reset": reset,
            "intact": check.digest() == digest.digest(),
        }
        row.notes.append(
            f"send {row.extra['send_mb_s']:.0f} MB/s, receive {row.extra['receive_mb_s']:.0f} MB/s"
        )
        row.notes.append(
            f"peak RSS sender {_mib(send['peak_rss'])} ({_mib(send['rss_before'])} before the "
            f"transfer), receiver {_mib(receive['peak_rss'])} ({_mib(receive['rss_before'])} "
            f"before), hub {_mib(hub_peak)} ({_mib(hub_rss_before)} before"
            + (")" if reset else "; its peak since it started)")
        )
        if not row.extra["intact"]:
            row.status, row.reason = "failed", "the received document differs from the one sent"
        self.add(row)
        source.unlink()
        received.unlink()

    # -- the log at size ----------------------------------------------------------------

    def run_audit(self, sample: SealedMessage | None) -> None:
        entries = self.args.audit_entries or self.profile.audit_entries
        federation = create_federation(self.workdir / "audit")
        if sample is None:
            with federation.serve("hub-audit-sample"):
                sender = federation.profile(SENDER)
                sample = run_loop(seal_messages(sender, 1, PAYLOAD_BYTES))[0]
        size, fill_seconds = auditlog.fill_log(
            federation.config_path,
            federation.hub_keys,
            sample.body,
            entries,
            heads_every=self.args.audit_heads_every,
        )
        _say(f"filled the log to {size:,} entries in {fill_seconds:.1f} s (not a benchmark)")
        verify = auditlog.time_verify(federation.config_path)
        row = Row(
            "audit.verify",
            f"hub audit verify, {size:,} entries",
            f"hub ({federation.engine})",
            count=verify.entries,
            seconds=round(verify.seconds, 3),
            rate=verify.rate,
            unit="entries/s",
        )
        row.extra = {
            "entries": verify.entries,
            "signed_tree_heads": verify.heads,
            "wall_seconds": verify.wall_seconds,
            "peak_rss": verify.peak_rss,
            "fill_seconds": fill_seconds,
        }
        row.notes.append(
            f"{verify.heads:,} signed heads; peak RSS {_mib(verify.peak_rss)}; "
            f"{verify.seconds:.2f} s after start-up ({verify.wall_seconds:.2f} s with it)"
        )
        if not verify.ok or verify.entries != size:
            row.status = "failed"
            row.reason = f"hub audit verify did not pass: {verify.output[-300:]}"
        self.add(row)

        proofs = self.args.proofs or self.profile.proofs
        with federation.serve("hub-audit") as hub:
            reader = federation.profile(SENDER)
            key = reader.load_keys().signing
            host = f"127.0.0.1:{federation.port}"
            rng = _Lcg(size)
            inclusion = [
                WorkItem(
                    (prepare("GET", "/v1/audit/proof/inclusion", host=host,
                             query=f"index={index}&size={size}"),),
                    tag=index,
                )
                for index in (rng.below(size) for _ in range(proofs))
            ]  # fmt: skip
            consistency = [
                WorkItem(
                    (prepare("GET", "/v1/audit/proof/consistency", host=host,
                             query=f"first={first}&second={size}"),),
                    tag=first,
                )
                for first in (1 + rng.below(size - 1) for _ in range(proofs))
            ]  # fmt: skip
            answers: dict[str, list[tuple[Any, int, bytes]]] = {}
            rows: list[Row] = []

            def signer() -> RequestSigner:
                return RequestSigner(key, SENDER)

            for name, items in (("inclusion", inclusion), ("consistency", consistency)):
                row, run = self.load(
                    Row(
                        f"audit.{name}_proof",
                        f"{name} proof at {size:,}",
                        f"hub ({federation.engine})",
                        unit="proofs/s",
                    ),
                    [hub],
                    federation.port,
                    [(items[2:], signer)],
                    warmup=[(items[:2], signer)],
                    concurrency=1,
                    keep_answers=True,
                )
                row.notes.append("over HTTP: a signed GET, one at a time, random positions")
                answers[name] = run.answers
                rows.append(row)
        good, bad = auditlog.check_proofs(
            federation.config_path, size, answers["inclusion"], answers["consistency"]
        )
        for row in rows:
            row.extra["proofs_verified"] = good
            row.extra["log_size"] = size
            if bad:
                row.status, row.reason = "failed", f"{len(bad)} proofs did not verify: {bad[0]}"
            self.add(row)

    # -- PostgreSQL, one process and two ------------------------------------------------

    def run_postgres(self) -> None:
        url = self.args.postgres_url or os.environ.get(POSTGRES_URL_VARIABLE)
        if not url:
            raise _Skip(f"{POSTGRES_URL_VARIABLE} is not set (or give --postgres-url)")
        count = self.args.messages or self.profile.postgres
        workers = serve_supports_workers()
        with postgres_database(url) as database_url:
            federation = create_federation(self.workdir / "postgres", database_url=database_url)
            with federation.serve("hub-pg-1") as hub:
                senders = run_loop(Senders.open([federation.profile(node) for node in SENDERS]))
                runs = {
                    which: (
                        senders.seal(count, PAYLOAD_BYTES),
                        senders.seal(self.warmup_count(64), PAYLOAD_BYTES),
                    )
                    for which in ("one", "two")
                }
                one = self._pg_run(
                    Row("postgres.one_process", "submit 1 KiB", "hub (PostgreSQL), 1 process"),
                    federation, [hub], senders, *runs["one"], [federation.port],
                )  # fmt: skip
            self.add(_per_core(one))
            if workers:
                how = "hub serve --workers 2 (one port)"
                servers = [federation.serve("hub-pg-2", workers=2)]
                ports = [federation.port]
            else:
                how = "two hub serve processes on two ports, the connections split between them"
                other = free_port()
                first = federation.serve("hub-pg-2a")
                try:
                    servers = [first, federation.serve("hub-pg-2b", port=other)]
                except BaseException:
                    first.close()
                    raise
                ports = [federation.port, other]
            try:
                two = self._pg_run(
                    Row("postgres.two_processes", "submit 1 KiB", "hub (PostgreSQL), 2 processes"),
                    federation, servers, senders, *runs["two"], ports,
                )  # fmt: skip
            finally:
                for server in servers:
                    server.close()
            two.notes.append(how)
            verify = auditlog.time_verify(federation.config_path)
            two.extra["log_verifies"] = verify.ok
            two.extra["log_entries"] = verify.entries
            if one.rate and two.rate:
                two.extra["ratio_to_one"] = two.rate / one.rate
                two.notes.append(f"{two.rate / one.rate:.2f}x one process")
            verdict = "verifies" if verify.ok else "DOES NOT VERIFY"
            two.notes.append(f"afterwards the log of {verify.entries:,} entries {verdict}")
            if not verify.ok:
                two.status, two.reason = "failed", "hub audit verify failed after the run"
            self.add(_per_core(two))

    def _pg_run(
        self,
        row: Row,
        federation: Federation,
        servers: list[ServerProcess],
        senders: Senders,
        messages: dict[str, list[SealedMessage]],
        warm: dict[str, list[SealedMessage]],
        ports: list[int],
    ) -> Row:
        self.warm_answers = []
        row, run = self.load(
            row,
            servers,
            ports[0],
            senders.lanes(messages, port=federation.port),
            warmup=senders.lanes(warm, port=federation.port),
            concurrency=64,
            keep_answers=True,
            ports=ports,
        )
        good, bad = check_receipts(
            [*self.warm_answers, *run.answers], federation.hub_keys.public.signing
        )
        row.extra["receipts_verified"] = good
        if bad:
            row.status, row.reason = "failed", f"{len(bad)} receipts did not verify, e.g. {bad[0]}"
        return row

    # -- everything ---------------------------------------------------------------------

    def run(self) -> None:
        self.accepted, self.warm_answers = [], []
        self.meta.update(_machine())
        self.meta["profile"] = self.profile.name
        started = time.perf_counter()
        concurrencies = list(self.submit_counts())
        sample: SealedMessage | None = None
        engine = "hub (SQLite)"
        submit_rows = [
            (f"submit.{target}.c{c}", "submit 1 KiB", name)
            for c in concurrencies
            for target, name in (
                ("trivial", "trivial aiohttp"), ("mesh", "MESH sandbox"), ("hub", engine),
            )
        ] + [("generator", "load generator", "its own CPU per message")]  # fmt: skip
        if any(self.wanted(group) for group in ("submit", "inbox", "document")):
            federation = create_federation(self.workdir / "sqlite")
            with federation.serve("hub-sqlite") as hub:
                if self.wanted("submit"):
                    with self.attempt("submit", submit_rows):
                        self.run_submits(federation, hub)
                if self.wanted("inbox"):
                    with self.attempt("inbox", [
                        ("inbox.list", "inbox page of 100", engine),
                        ("inbox.fetch_ack", "fetch + ack", engine),
                    ]):  # fmt: skip
                        self.run_inbox(federation, hub)
                if self.wanted("document"):
                    with self.attempt("document", [("document", "document end to end", engine)]):
                        self.run_document(federation, hub)
                if self.accepted:
                    sample = self.accepted[0]
        if self.wanted("audit"):
            with self.attempt("audit", [
                ("audit.verify", "hub audit verify", engine),
                ("audit.inclusion_proof", "inclusion proof", engine),
                ("audit.consistency_proof", "consistency proof", engine),
            ]):  # fmt: skip
                self.run_audit(sample)
        if self.wanted("postgres"):
            with self.attempt("postgres", [
                ("postgres.one_process", "submit 1 KiB", "hub (PostgreSQL), 1 process"),
                ("postgres.two_processes", "submit 1 KiB", "hub (PostgreSQL), 2 processes"),
            ]):  # fmt: skip
                self.run_postgres()
        self.meta["seconds"] = round(time.perf_counter() - started, 1)
        self.meta["load_average_end"] = os.getloadavg()


class _Lcg:
    """Reproducible indexes for the proofs (not a secret; no ``random`` seeding state)."""

    def __init__(self, seed: int) -> None:
        self._state = seed or 1

    def below(self, bound: int) -> int:
        self._state = (self._state * 6364136223846793005 + 1442695040888963407) % 2**64
        return (self._state >> 11) % max(bound, 1)


async def _inbox_cursors(profile: NodeProfile, limit: int) -> list[int]:
    """The ``after`` cursor of every page of the node's inbox (found before the clock)."""
    from hub.cli.node import client_for

    cursors = [0]
    async with client_for(profile) as client:
        while True:
            page = await client.inbox(after=cursors[-1], limit=limit)
            if not page.entries:
                cursors.pop()
                break
            cursors.append(page.next_after)
    return cursors or [0]


def _document_side(*args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.document", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=3600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench.document {args[0]} failed: {result.stderr[-1500:]}")
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def _version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _mib(value: Any) -> str:
    return f"{int(value) / MIB:.0f} MiB"


def _size_text(size: int) -> str:
    if size % (1024 * MIB) == 0:
        return f"{size // (1024 * MIB)} GiB"
    if size % MIB == 0:
        return f"{size // MIB} MiB"
    return f"{size:,} B"


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except OSError:
        return None
    return result.stdout.strip() or None


def _machine() -> dict[str, Any]:
    sqlite_version = __import__("sqlite3").sqlite_version
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git_commit(),
        "python": platform.python_version(),
        "sqlite": sqlite_version,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "load_average_start": os.getloadavg(),
        "generator_loop": loop_name(),
    }


def parse_size(text: str) -> int:
    """``1GiB``, ``64MiB``, ``512KiB`` or a number of bytes."""
    units = {"gib": 1024**3, "mib": 1024**2, "kib": 1024, "b": 1}
    lowered = text.strip().lower()
    suffix = next((unit for unit in units if lowered.endswith(unit)), "")
    factor = units.get(suffix, 1)
    number = lowered[: len(lowered) - len(suffix)].strip()
    try:
        value = float(number) * factor
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--size: {text!r} is not a size (give e.g. 1GiB, 64MiB or 1048576)"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--size: {text!r} must be at least 1 byte")
    return int(value)


def _positive(name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.replace(",", "").replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: {text!r} is not a whole number") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name}: must be at least 1, got {value}")
        return value

    return parse


GROUPS = ("submit", "inbox", "document", "audit", "postgres")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run every benchmark of the hub with same-run anchors and print one table.",
    )
    parser.add_argument("--quick", action="store_true", help="a run of a minute or two")
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument(
        "--write-docs", action="store_true", help="write docs/performance.md and its chart"
    )
    parser.add_argument(
        "--size", type=parse_size, help="the large document (default 1GiB; quick 64MiB)"
    )
    parser.add_argument(
        "--audit-entries",
        type=_positive("--audit-entries"),
        help="entries in the log for hub audit verify and proofs (default 50000; quick 5000; "
        "the issue's figure is 1000000)",
    )
    parser.add_argument(
        "--audit-heads-every",
        type=_positive("--audit-heads-every"),
        default=1,
        help="a signed tree head every N entries in the filled log (default 1, as the hub "
        "signs one per append today)",
    )
    parser.add_argument(
        "--messages",
        type=_positive("--messages"),
        help="messages in every submit, inbox and PostgreSQL run (overrides the profile)",
    )
    parser.add_argument("--proofs", type=_positive("--proofs"), help="proofs of each kind asked")
    parser.add_argument(
        "--concurrency", help="comma-separated concurrency levels for the submits (default 1,16,64)"
    )
    parser.add_argument(
        "--only", help=f"comma-separated subset of: {', '.join(GROUPS)} (default: all)"
    )
    parser.add_argument(
        "--postgres-url",
        help=f"PostgreSQL server for the 1-vs-2 run (default ${POSTGRES_URL_VARIABLE})",
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep the run's files here (default: a temporary folder)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.only:
        unknown = sorted(set(args.only.split(",")) - set(GROUPS))
        if unknown:
            choices = ", ".join(GROUPS)
            parser.error(
                f"--only: unknown benchmark(s) {', '.join(unknown)}; choose from {choices}"
            )
    if args.concurrency:
        try:
            levels = [int(c) for c in args.concurrency.split(",")]
        except ValueError:
            parser.error(f"--concurrency: {args.concurrency!r} is not a list of whole numbers")
        if any(level < 1 for level in levels):
            parser.error("--concurrency: every level must be at least 1")
    if not Path("/proc/self/stat").exists():
        parser.error("the harness reads CPU and memory from /proc: it runs on Linux only")
    profile = QUICK if args.quick else FULL
    keep = args.workdir is not None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="seh-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    harness = Harness(args, profile, workdir)
    try:
        harness.run()
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results = report.results(harness.meta, harness.rows)
    print(report.table(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.write_docs:
        written = report.write_docs(results, ROOT / "docs")
        _say("wrote " + ", ".join(str(path.relative_to(ROOT)) for path in written))
    return 1 if any(row.status == "failed" for row in harness.rows) else 0
