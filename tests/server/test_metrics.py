"""GET /metrics: Prometheus text whose values follow what the hub really did.

Every value is read back from the exposition a scrape returns (parsed with
prometheus-client's own parser), before and after real signed requests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub.config import HubConfig, MetricsConfig
from hub.model import Violation
from hub.policy.registry import DEFAULT_REGISTRY_DIR, load_registry
from hub.registry import set_node_status
from hub.server.metrics import HubMetrics
from hub.server.notify import InboxNotifier
from hub.store import GroupCommitter, SqlStore, UnitOfWork, database_url_for_path
from tests.conftest import HubFixture, running_hub
from tests.server.conftest import SMALL_CHUNK
from tests.server.helpers import (
    LA,
    POLICE,
    SignedRequest,
    send,
    sha256_hex,
    signed_envelope,
    signed_request,
    submit,
)

ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape_text(http: aiohttp.ClientSession, hub: HubFixture) -> str:
    async with http.get(hub.url + "/metrics") as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return await response.text()


async def scrape(http: aiohttp.ClientSession, hub: HubFixture) -> Samples:
    text = await scrape_text(http, hub)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def _labels_of(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(labels)[label] for sample, labels in samples if sample == name}


# -- the exposition and its documentation -------------------------------------------------


async def test_every_hub_metric_is_documented_and_every_documented_one_is_served(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    text = await scrape_text(http, hub)
    families = {family.name for family in text_string_to_metric_families(text)}
    served = {name for name in families if name.startswith("seh_hub")}
    doc = (ROOT / "deploy" / "monitoring.md").read_text(encoding="utf-8")
    # Documented names are written in backticks; counters are documented with _total.
    documented = {
        re.sub(r"_total$", "", name)
        for name in re.findall(r"`(seh_hub_[a-z_]+)(?:\{[^`]*\})?`", doc)
        if not name.endswith(("_bucket", "_count", "_sum"))
    }
    assert served == documented
    assert {"process_resident_memory_bytes", "process_open_fds"} <= {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


async def test_every_refusal_rule_label_comes_from_the_registry(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    samples = await scrape(http, hub)
    rules = _labels_of(samples, "seh_hub_submit_refusals_total", "rule")
    registry = load_registry(DEFAULT_REGISTRY_DIR)
    assert rules == set(registry.rule_ids()) | {"other"}
    assert all(value(samples, "seh_hub_submit_refusals_total", rule=r) == 0 for r in rules)


# -- submits ------------------------------------------------------------------------------


async def test_accepted_resubmitted_and_refused_submits_are_counted_by_rule(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    before = await scrape(http, hub)
    assert value(before, "seh_hub_submits_total", outcome="accepted") == 0

    good = signed_envelope(hub)
    assert (await submit(http, hub, good)).status == 201
    assert (await submit(http, hub, good)).status == 200  # the same bytes: the old receipt
    secret = signed_envelope(hub, marking={"tier": "SECRET", "sensitive": False})
    refused = await submit(http, hub, secret)
    refused.problem(422, "message-refused")
    misrouted = await submit(http, hub, signed_envelope(hub, recipients=["health.nowhere", LA]))
    misrouted.problem(422, "message-refused")

    after = await scrape(http, hub)
    assert value(after, "seh_hub_submits_total", outcome="accepted") == 1
    assert value(after, "seh_hub_submits_total", outcome="resubmitted") == 1
    assert value(after, "seh_hub_submits_total", outcome="refused") == 2
    assert value(after, "seh_hub_submits_total", outcome="conflict") == 0
    fired = [{rule for rule, _ in reply.rules()} for reply in (refused, misrouted)]
    assert "MK-09" in fired[0]
    assert "ROUTE-01" in fired[1]
    for rule in _labels_of(after, "seh_hub_submit_refusals_total", "rule"):
        grown = value(after, "seh_hub_submit_refusals_total", rule=rule) - value(
            before, "seh_hub_submit_refusals_total", rule=rule
        )
        # Once per refused submit that broke it, however many paths it was broken at.
        assert grown == sum(rule in rules for rules in fired), rule


async def test_a_reused_id_with_other_content_counts_as_a_conflict(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    envelope = signed_envelope(hub)
    assert (await submit(http, hub, envelope)).status == 201
    other = signed_envelope(hub, message_id=envelope["id"], recipients=[LA])
    (await submit(http, hub, other)).problem(409, "conflict")
    samples = await scrape(http, hub)
    assert value(samples, "seh_hub_submits_total", outcome="conflict") == 1
    assert value(samples, "seh_hub_submits_total", outcome="refused") == 0


async def test_a_refusal_for_a_rule_outside_the_registry_counts_as_other() -> None:
    metrics = HubMetrics(hub_id="hub.test", rule_ids={"MK-09"})
    metrics.refused(
        [
            Violation(rule="MK-09", path="$.marking", message="x"),
            Violation(rule="MK-09", path="$.marking.tier", message="x"),
            Violation(rule="NOT-A-RULE", path="$", message="x"),
        ]
    )
    text = metrics.exposition().decode()
    assert 'seh_hub_submit_refusals_total{rule="MK-09"} 1.0' in text
    assert 'seh_hub_submit_refusals_total{rule="other"} 1.0' in text
    assert "NOT-A-RULE" not in text


# -- requests -----------------------------------------------------------------------------


async def test_request_latency_is_labelled_by_the_route_pattern(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    envelope = signed_envelope(hub)
    assert (await submit(http, hub, envelope)).status == 201
    path = f"/v1/messages/{envelope['id']}"
    for _ in range(3):
        fetched = await send(http, hub, signed_request(hub, "GET", path, node=LA))
        assert fetched.status == 200
    stranger = await send(http, hub, SignedRequest("GET", "/v1/nothing/here", "", b"", {}))
    assert stranger.status == 404

    samples = await scrape(http, hub)
    route = "/v1/messages/{message_id}"
    count = value(samples, "seh_hub_http_request_duration_seconds_count", method="GET", route=route)
    assert count == 3
    seconds = value(samples, "seh_hub_http_request_duration_seconds_sum", method="GET", route=route)
    assert seconds > 0
    inf = value(
        samples,
        "seh_hub_http_request_duration_seconds_bucket",
        method="GET",
        route=route,
        le="+Inf",
    )
    assert inf == 3
    assert (
        value(samples, "seh_hub_http_responses_total", method="GET", route=route, status="200") == 3
    )
    posted = value(
        samples, "seh_hub_http_responses_total", method="POST", route="/v1/messages", status="201"
    )
    assert posted == 1
    unmatched = value(
        samples, "seh_hub_http_responses_total", method="GET", route="unmatched", status="404"
    )
    assert unmatched == 1
    routes = _labels_of(samples, "seh_hub_http_responses_total", "route")
    assert envelope["id"] not in " ".join(routes)
    assert "/v1/nothing/here" not in routes


# -- the writer and the inbox -------------------------------------------------------------


async def test_every_write_is_observed_in_a_group_commit_batch(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    before = await scrape(http, hub)
    envelopes = [signed_envelope(hub) for _ in range(12)]
    replies = await asyncio.gather(*(submit(http, hub, e) for e in envelopes))
    assert [r.status for r in replies] == [201] * 12
    after = await scrape(http, hub)

    def grown(name: str) -> float:
        return value(after, name) - value(before, name)

    # Each submit writes twice: its request's nonce, then the message with its log entry.
    assert grown("seh_hub_write_batch_size_sum") == 24
    batches = grown("seh_hub_write_batch_size_count")
    assert 1 <= batches <= 24
    assert grown("seh_hub_write_batch_duration_seconds_count") == batches
    assert grown("seh_hub_write_batch_duration_seconds_sum") > 0


class _HeldStore:
    """A store whose write transaction waits until the test lets it go."""

    def __init__(self, inner: SqlStore) -> None:
        self.inner = inner
        self.release = asyncio.Event()

    def transaction(self) -> Any:
        store = self

        class _Held:
            async def __aenter__(self) -> UnitOfWork:
                await store.release.wait()
                self._tx = store.inner.transaction()
                return await self._tx.__aenter__()

            async def __aexit__(self, *exc: Any) -> Any:
                return await self._tx.__aexit__(*exc)

        return _Held()

    def read(self) -> Any:
        return self.inner.read()


async def test_the_write_queue_depth_is_the_writes_waiting_for_a_batch(tmp_path: Path) -> None:
    store = SqlStore.open(database_url_for_path(tmp_path / "q.sqlite3"))
    await store.create_schema()
    held = _HeldStore(store)
    metrics = HubMetrics(hub_id="hub.test", rule_ids=())
    writes = GroupCommitter(held, on_batch=metrics.write_batch)  # type: ignore[arg-type]
    metrics.watch(store=store, writes=writes, notifier=InboxNotifier(), blob_dir=tmp_path)

    async def noop(tx: UnitOfWork) -> int:
        return 1

    first = asyncio.create_task(writes.run(noop))
    await asyncio.sleep(0.01)  # the first operation is taken into a batch, which waits
    rest = [asyncio.create_task(writes.run(noop)) for _ in range(5)]
    await asyncio.sleep(0.01)
    assert "seh_hub_write_queue_depth 5.0" in metrics.exposition().decode()
    held.release.set()
    assert await asyncio.gather(first, *rest) == [1] * 6
    text = metrics.exposition().decode()
    assert "seh_hub_write_queue_depth 0.0" in text
    # One batch of the first operation, then one of the five that queued behind it.
    assert "seh_hub_write_batch_size_count 2.0" in text
    assert "seh_hub_write_batch_size_sum 6.0" in text
    await store.close()


async def test_inbox_long_polls_are_counted_while_they_wait(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    assert value(await scrape(http, hub), "seh_hub_inbox_waiters") == 0
    poll = asyncio.create_task(
        send(http, hub, signed_request(hub, "GET", "/v1/inbox", node=LA, query="wait=10"))
    )
    for _ in range(100):
        await asyncio.sleep(0.02)
        if value(await scrape(http, hub), "seh_hub_inbox_waiters") == 1:
            break
    assert value(await scrape(http, hub), "seh_hub_inbox_waiters") == 1
    assert (await submit(http, hub, signed_envelope(hub, recipients=[LA]))).status == 201
    page = (await poll).json()
    assert len(page["entries"]) == 1
    assert value(await scrape(http, hub), "seh_hub_inbox_waiters") == 0


# -- what the database holds --------------------------------------------------------------


async def test_blob_bytes_audit_size_and_nodes_by_status_follow_the_database(
    small_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    hub = small_hub
    samples = await scrape(http, hub)
    assert value(samples, "seh_hub_store_up") == 1
    assert value(samples, "seh_hub_blob_stored_bytes", state="uploading") == 0
    assert value(samples, "seh_hub_nodes", status="active") == 4
    assert value(samples, "seh_hub_audit_log_entries") == 0
    assert value(samples, "seh_hub_blob_dir_free_bytes") > 0

    blob = bytes(range(256)) + bytes(100)  # 356 bytes: four chunks of 100
    body = json.dumps({"sha256": sha256_hex(blob), "size": len(blob)}).encode()
    announced = await send(http, hub, signed_request(hub, "POST", "/v1/blobs", body=body))
    upload = announced.json()
    for index in range(2):  # half of it
        chunk = blob[index * SMALL_CHUNK : (index + 1) * SMALL_CHUNK]
        put = signed_request(
            hub,
            "PUT",
            f"/v1/blobs/{upload['upload_id']}/{index}",
            body=chunk,
            content_type="application/octet-stream",
        )
        assert (await send(http, hub, put)).status == 200
    samples = await scrape(http, hub)
    assert value(samples, "seh_hub_blob_uploads", state="uploading") == 1
    assert value(samples, "seh_hub_blob_stored_bytes", state="uploading") == 200
    assert value(samples, "seh_hub_blob_declared_bytes", state="uploading") == len(blob)
    assert value(samples, "seh_hub_blob_uploads", state="complete") == 0

    for index in range(2, 4):
        chunk = blob[index * SMALL_CHUNK : (index + 1) * SMALL_CHUNK]
        put = signed_request(
            hub,
            "PUT",
            f"/v1/blobs/{upload['upload_id']}/{index}",
            body=chunk,
            content_type="application/octet-stream",
        )
        assert (await send(http, hub, put)).status == 200
    await set_node_status(hub.store, POLICE, "suspended", now=hub.clock())
    accepted = await submit(http, hub, signed_envelope(hub, recipients=[LA]))
    assert accepted.status == 201

    samples = await scrape(http, hub)
    assert value(samples, "seh_hub_blob_uploads", state="uploading") == 0
    assert value(samples, "seh_hub_blob_uploads", state="complete") == 1
    assert value(samples, "seh_hub_blob_stored_bytes", state="complete") == len(blob)
    assert value(samples, "seh_hub_nodes", status="suspended") == 1
    assert value(samples, "seh_hub_nodes", status="active") == 3
    async with hub.store.read() as view:
        head = await view.audit.latest_head()
    assert head is not None
    assert value(samples, "seh_hub_audit_log_entries") == head.size >= 1


class _BrokenStore:
    def read(self) -> Any:
        raise ConnectionRefusedError("the database is down")


async def test_a_scrape_that_cannot_read_the_database_says_store_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = HubMetrics(hub_id="hub.test", rule_ids=())
    writes = GroupCommitter(_BrokenStore())  # type: ignore[arg-type]
    metrics.watch(store=_BrokenStore(), writes=writes, notifier=InboxNotifier(), blob_dir=tmp_path)  # type: ignore[arg-type]
    await metrics.refresh()
    assert "seh_hub_store_up 0.0" in metrics.exposition().decode()
    assert "metrics could not read the database: ConnectionRefusedError" in caplog.text
    assert "the database is down" not in caplog.text


# -- per app, and who may scrape ----------------------------------------------------------


@pytest.fixture
async def second_hub(
    make_config: Callable[..., HubConfig], tmp_path: Path
) -> AsyncIterator[HubFixture]:
    other = tmp_path / "other"
    other.mkdir()
    config = replace(
        make_config(),
        database_url=database_url_for_path(other / "hub.sqlite3"),
        blob_dir=other / "blobs",
    )
    async with running_hub(config) as fixture:
        yield fixture


async def test_two_hubs_in_one_process_count_separately(
    hub: HubFixture, second_hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    assert (await submit(http, hub, signed_envelope(hub))).status == 201
    assert value(await scrape(http, hub), "seh_hub_submits_total", outcome="accepted") == 1
    assert value(await scrape(http, second_hub), "seh_hub_submits_total", outcome="accepted") == 0


def _hub_with(make_config: Callable[..., HubConfig], metrics: MetricsConfig) -> Any:
    return running_hub(replace(make_config(), metrics=metrics))


async def test_metrics_turned_off_is_a_plain_404(
    make_config: Callable[..., HubConfig], http: aiohttp.ClientSession
) -> None:
    async with _hub_with(make_config, MetricsConfig(enabled=False)) as hub:
        async with http.get(hub.url + "/metrics") as response:
            assert response.status == 404
            assert (await response.json(content_type=None))["type"] == "urn:seh:problem:http-404"
        # Still counted (the access log and the hooks run), only not served.
        assert (await submit(http, hub, signed_envelope(hub))).status == 201


async def test_a_peer_outside_the_allow_list_is_refused_and_one_inside_is_served(
    make_config: Callable[..., HubConfig],
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    elsewhere = MetricsConfig(allow=(ip_network("10.0.0.0/8"), ip_network("fd00::/8")))
    async with _hub_with(make_config, elsewhere) as hub:
        async with http.get(hub.url + "/metrics") as response:
            assert response.status == 403
            problem = await response.json(content_type=None)
        assert problem["type"] == "urn:seh:problem:forbidden"
        assert "127.0.0.1" in caplog.text  # the refused peer is logged for the operator
        # A forwarded header does not make a stranger local.
        headers = {"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3"}
        async with http.get(hub.url + "/metrics", headers=headers) as response:
            assert response.status == 403
    exact = MetricsConfig(allow=(ip_network("127.0.0.1/32"),))
    config = replace(make_config(), metrics=exact)
    fresh = config.blob_dir.parent / "exact.sqlite3"
    async with running_hub(replace(config, database_url=database_url_for_path(fresh))) as hub:
        assert "seh_hub_submits_total" in await scrape_text(http, hub)
