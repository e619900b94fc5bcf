"""Prometheus metrics: every definition in one place, one registry per app, ``GET /metrics``.

Each application gets its own :class:`~prometheus_client.CollectorRegistry` (tests build
many apps in one process; a module-level registry would mix their counts). The rest of the
hub reports through small hooks — one call at each site — so this module is the only one
that knows metric names. ``deploy/monitoring.md`` lists every metric with what to alert on.

Three kinds of value:

* counted where they happen: submits by outcome and refused rule, HTTP requests by route
  pattern, group-commit batches (counters and histograms);
* read from live objects at scrape time: the write queue's depth and the inbox long-poll
  waiters (gauges with a function);
* read from the database at scrape time: blob bytes and uploads by state, the audit log's
  size and nodes by status. These are the same whichever hub process answers the scrape.

``/metrics`` needs no signature (Prometheus cannot sign); it is served only when
``[metrics] enabled`` and only to peers in ``[metrics] allow`` (loopback by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import shutil
from collections import Counter as Tally
from collections.abc import Awaitable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TypeVar

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from hub.config import MetricsConfig
from hub.errors import Conflict, HubError, Unprocessable
from hub.model import Violation
from hub.server.exchange import SubmitOutcome
from hub.server.notify import InboxNotifier
from hub.store import BlobUsage, GroupCommitter, Store

__all__ = [
    "METRICS",
    "SUBMIT_OUTCOMES",
    "HubMetrics",
    "MetricsForbidden",
    "count_submit",
    "install_metrics",
]

log = logging.getLogger("hub.metrics")

# Without this, the text format carries a `<name>_created` gauge beside every counter and
# histogram series (the time it was made), doubling the series for nothing an alert uses.
# The switch is the library's, for the whole process.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus-client 0.26

# One label value for a refusal whose rule id is not in the registry, so the label set
# stays bounded by the registry whatever a violation carries.
OTHER_RULE = "other"
SUBMIT_OUTCOMES = ("accepted", "resubmitted", "refused", "conflict")
# Route label of a request that matched no route (404, 405): never the raw path, which a
# scanner chooses.
UNMATCHED_ROUTE = "unmatched"
NODE_STATUSES = ("active", "suspended", "revoked")
# A scrape that cannot read the database within this long reports seh_hub_store_up 0.
_STORE_READ_SECONDS = 5.0

# Seconds. The inbox long-poll waits up to limits.inbox_wait_max_seconds (30 s by default),
# so the buckets reach past it.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
# Operations per group-commit batch; GroupCommitter's max_batch is 512.
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
BATCH_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

T = TypeVar("T")


class MetricsForbidden(HubError):
    """``/metrics`` from an address outside ``[metrics] allow``."""

    status, slug, title = 403, "forbidden", "Not served to this address"


@dataclass(frozen=True, slots=True)
class _StoreReading:
    blobs: Sequence[BlobUsage]
    audit_entries: int
    nodes: dict[str, int]


class _StoreGauges(Collector):
    """What the database holds, as read by the last scrape (see :meth:`HubMetrics.refresh`)."""

    def __init__(self) -> None:
        self.reading: _StoreReading | None = None
        self.up = False
        self.blob_dir: Path | None = None

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        return list(self._families(self.reading))

    def _families(self, reading: _StoreReading | None = None) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "seh_hub_store_up",
            "1 if the last scrape read the database, 0 if it failed or timed out.",
        )
        uploads = GaugeMetricFamily(
            "seh_hub_blob_uploads", "Blob uploads by state (uploading, complete).", labels=["state"]
        )
        stored = GaugeMetricFamily(
            "seh_hub_blob_stored_bytes",
            "Ciphertext bytes received into the blob directory, by upload state.",
            labels=["state"],
        )
        declared = GaugeMetricFamily(
            "seh_hub_blob_declared_bytes",
            "Bytes the uploads announced (their declared sizes), by upload state.",
            labels=["state"],
        )
        free = GaugeMetricFamily(
            "seh_hub_blob_dir_free_bytes", "Free bytes on the filesystem holding the blobs."
        )
        entries = GaugeMetricFamily(
            "seh_hub_audit_log_entries", "Entries in the transparency log (its signed size)."
        )
        nodes = GaugeMetricFamily("seh_hub_nodes", "Enrolled nodes by status.", labels=["status"])
        if reading is not None:
            up.add_metric([], 1.0 if self.up else 0.0)
            by_state = {b.state: b for b in reading.blobs}
            for state in sorted({"uploading", "complete", *by_state}):
                usage = by_state.get(state)
                uploads.add_metric([state], usage.uploads if usage else 0)
                stored.add_metric([state], usage.received_bytes if usage else 0)
                declared.add_metric([state], usage.declared_bytes if usage else 0)
            entries.add_metric([], reading.audit_entries)
            for status in sorted({*NODE_STATUSES, *reading.nodes}):
                nodes.add_metric([status], reading.nodes.get(status, 0))
            if self.blob_dir is not None:
                # A missing directory leaves seh_hub_blob_dir_free_bytes absent.
                with contextlib.suppress(OSError):
                    free.add_metric([], shutil.disk_usage(self.blob_dir).free)
        yield from (up, uploads, stored, declared, free, entries, nodes)


class HubMetrics:
    """The hub's metric definitions, on a registry of their own."""

    def __init__(self, *, hub_id: str, rule_ids: Iterable[str]) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self._rules = frozenset(rule_ids)
        self.submits = Counter(
            "seh_hub_submits",
            "Submitted messages (POST /v1/messages, after authentication) by outcome: "
            "accepted (201), resubmitted (200, the original receipt), refused (422), "
            "conflict (409, an id reused with other content).",
            ["outcome"],
            registry=registry,
        )
        self.refusals = Counter(
            "seh_hub_submit_refusals",
            "Refused submits by violated rule id (registry rules.yaml); a submit that breaks "
            "three rules counts once under each.",
            ["rule"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "seh_hub_http_request_duration_seconds",
            "Time from the request reaching the app to the last byte of its answer being "
            "written, by method and route pattern. /v1/inbox includes its long-poll wait.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.responses = Counter(
            "seh_hub_http_responses",
            "Answered requests by method, route pattern and status (499: the client went "
            "away first).",
            ["method", "route", "status"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "seh_hub_write_batch_size",
            "Write operations committed per group-commit batch (nonces, messages, acks, "
            "audit entries, blob chunks).",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "seh_hub_write_batch_duration_seconds",
            "Time to run and commit one group-commit batch (including a fall-back to "
            "one transaction per operation when the batch failed).",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=registry,
        )
        self.write_queue = Gauge(
            "seh_hub_write_queue_depth",
            "Write operations waiting for a group-commit batch (not yet being committed).",
            registry=registry,
        )
        self.inbox_waiters = Gauge(
            "seh_hub_inbox_waiters",
            "Inbox long-polls waiting in this process for a delivery.",
            registry=registry,
        )
        self.store = _StoreGauges()
        registry.register(self.store)
        registry.register(_Info(hub_id))
        # process_* (memory, CPU, open file descriptors) and python_* (GC, version).
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        # Every label value exists from the start, so a rate() over a rule that has never
        # fired is 0, not absent.
        for outcome in SUBMIT_OUTCOMES:
            self.submits.labels(outcome)
        for rule in (*sorted(self._rules), OTHER_RULE):
            self.refusals.labels(rule)
        self._request_children: dict[tuple[str, str, int], tuple[Histogram, Counter]] = {}
        self._store_source: Store | None = None

    # -- hooks (one call at each site) --------------------------------------------------

    def watch(
        self, *, store: Store, writes: GroupCommitter, notifier: InboxNotifier, blob_dir: Path
    ) -> None:
        """Read the live objects of a started app at scrape time."""
        self._store_source = store
        self.store.blob_dir = blob_dir
        self.write_queue.set_function(lambda: writes.pending)
        self.inbox_waiters.set_function(lambda: notifier.waiting)

    def write_batch(self, size: int, seconds: float) -> None:
        """GroupCommitter's hook: one batch of ``size`` operations took ``seconds``."""
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """The access middleware's hook: one answered request."""
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.request_seconds.labels(method, route),
                self.responses.labels(method, route, str(status)),
            )
            self._request_children[key] = children
        children[0].observe(seconds)
        children[1].inc()

    def submitted(self, outcome: str) -> None:
        self.submits.labels(outcome).inc()

    def refused(self, violations: Sequence[Violation]) -> None:
        self.submits.labels("refused").inc()
        for rule in sorted({v.rule for v in violations}):
            self.refusals.labels(rule if rule in self._rules else OTHER_RULE).inc()

    # -- scraping -----------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read what the database holds for the store gauges; mark the store down on failure."""
        store = self._store_source
        if store is None:
            return
        try:
            async with asyncio.timeout(_STORE_READ_SECONDS), store.read() as view:
                blobs = await view.blobs.usage()
                head = await view.audit.latest_head()
                nodes = await view.nodes.list_all()
        except Exception as exc:
            # The type only: a driver's message can quote SQL parameters.
            log.warning("metrics could not read the database: %s", type(exc).__name__)
            self.store.up = False
            if self.store.reading is None:
                self.store.reading = _StoreReading(blobs=(), audit_entries=0, nodes={})
            return
        self.store.up = True
        self.store.reading = _StoreReading(
            blobs=tuple(blobs),
            audit_entries=0 if head is None else head.size,
            nodes=dict(Tally(n.status for n in nodes)),
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Info(Collector):
    def __init__(self, hub_id: str) -> None:
        try:
            version = metadata.version("safeguarding-exchange-hub")
        except metadata.PackageNotFoundError:
            version = "unknown"
        self._labels = {"hub_id": hub_id, "version": version}

    def collect(self) -> Iterable[Metric]:
        info = InfoMetricFamily("seh_hub", "The hub's id and software version.")
        info.add_metric([], self._labels)
        return [info]


METRICS = web.AppKey("metrics", HubMetrics)


async def count_submit(metrics: HubMetrics, submission: Awaitable[SubmitOutcome]) -> SubmitOutcome:
    """Await a submit and count its outcome (the submit handler's one-line hook)."""
    try:
        outcome = await submission
    except Unprocessable as refused:
        metrics.refused(refused.violations)
        raise
    except Conflict:
        metrics.submitted("conflict")
        raise
    metrics.submitted("accepted" if outcome.created else "resubmitted")
    return outcome


def _allowed(remote: str | None, config: MetricsConfig) -> bool:
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in config.allow)


def install_metrics(
    app: web.Application, config: MetricsConfig, *, hub_id: str, rule_ids: Iterable[str]
) -> HubMetrics:
    """Give ``app`` its metrics and, when enabled, the ``GET /metrics`` route."""
    metrics = HubMetrics(hub_id=hub_id, rule_ids=rule_ids)
    app[METRICS] = metrics

    async def scrape(request: web.Request) -> web.Response:
        # The direct peer (the proxy, when there is one), never a forwarded header.
        if not _allowed(request.remote, config):
            raise MetricsForbidden(
                "Metrics are served only to the addresses in [metrics] allow.",
                debug={"remote": request.remote},
            )
        await metrics.refresh()
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4}
        )

    if config.enabled:
        app.router.add_get("/metrics", scrape, allow_head=False)
    return metrics
