"""Constant-shape answers: another node's record and a missing one cost and look the same.

A node that is not a party to a message, information request, Channel case or blob must
not be able to tell it from one that does not exist: not from the answer (status, headers
but ``Date``, body; the body names the caller's own path, so the two paths are swapped
before comparing) and not from the time the hub takes. Case references are chosen by
people, so a node that could time the 404 could enumerate them.

Two kinds of test:

* deterministic: the SQL statements the hub runs for each request, captured with
  SQLAlchemy's ``before_cursor_execute`` event, are the same statements in the same order
  for a foreign record as for a missing one;
* timing: many interleaved samples of the service call behind each endpoint (what differs
  between the two cases; the HTTP and authentication work in front of it is the same code
  on the same input), compared by the median of the paired differences, with a tolerance
  that the ~250 microseconds an extra query costs would break.
"""

from __future__ import annotations

import gc
import json
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event

from hub.client import PayloadSource
from hub.client.ids import uuid7
from hub.crypto import SignatureContext, sign_document
from hub.errors import NotFound
from hub.server.state import BLOBS, CLOCK_FN, EXCHANGE, WORKFLOWS
from hub.store import NodeRecord
from tests.conftest import (
    INSECURE_TEST_NODE_KEYS,
    SYNTHETIC_REFERRAL,
    HubFixture,
    referral_fields,
)
from tests.server.helpers import HEALTH, LA, POLICE, STRANGER, Reply, send, signed_request
from tests.workflows.helpers import fields as workflow_fields
from tests.workflows.helpers import request_doc
from tests.workflows.test_referral_and_case import CASE, case_doc

# A case reference of the same length as CASE that nobody opened.
MISSING_CASE = "case-wilts-0999"
assert len(MISSING_CASE) == len(CASE)
MISSING_SHA = "5" * 64
MISSING_UPLOAD = "6" * 32


@dataclass(frozen=True)
class World:
    """Records of other nodes' that the stranger probes, and ids of the same shape that
    name nothing."""

    message_id: str
    missing_message_id: str
    request_id: str
    missing_request_id: str
    blob_sha256: str
    upload_id: str


async def _world(hub: HubFixture) -> World:
    async with hub.client(HEALTH) as health, hub.client(POLICE) as police, hub.client(LA) as la:
        referral = await health.send(referral_fields(), PayloadSource.json(SYNTHETIC_REFERRAL))
        request = await police.send(
            workflow_fields(request_doc()), PayloadSource.json({"synthetic": True})
        )
        await la.send(workflow_fields(case_doc("case_open")), PayloadSource.json({"x": 1}))
        # Larger than an inline payload: uploaded as a blob, then referenced.
        big = json.dumps({"synthetic": "x" * (70 * 1024)}).encode()
        blob_message, _ = await health.send_with_envelope(
            referral_fields(), PayloadSource(media_type="application/json", data=big)
        )
    assert blob_message["payload"]["transport"] == "blob"
    async with hub.store.read() as view:
        upload = await view.blobs.complete_by_sha256(blob_message["payload"]["sha256"])
    assert upload is not None
    return World(
        message_id=referral.message_id,
        missing_message_id=uuid7(hub.clock()),
        request_id=request.message_id,
        missing_request_id=uuid7(hub.clock()),
        blob_sha256=blob_message["payload"]["sha256"],
        upload_id=upload.upload_id,
    )


def _ack_body(hub: HubFixture, message_id: str, *, rejection: bool = False) -> bytes:
    """The stranger's own signed answer to ``message_id`` (it holds no envelope hash: any)."""
    document: dict[str, Any] = {
        "message_id": message_id,
        "node": STRANGER,
        "envelope_sha256": "ab" * 32,
    }
    keys = INSECURE_TEST_NODE_KEYS[STRANGER]
    if rejection:
        document.update(rejected_at=hub.clock().isoformat().replace("+00:00", "Z"))
        document.update(rules=["MAN-01"], reasons=[])
        context = SignatureContext.REJECTION
    else:
        document["acknowledged_at"] = hub.clock().isoformat().replace("+00:00", "Z")
        context = SignatureContext.ACK
    document["signature"] = sign_document(document, keys.signing, context)
    return json.dumps(document).encode()


@dataclass(frozen=True)
class Probe:
    """One endpoint, asked about a foreign record (``foreign``) and a missing one."""

    method: str
    path: str  # with {ref}
    foreign: str
    missing: str
    body: Callable[[str], bytes] | None = None


def _probes(hub: HubFixture, world: World) -> dict[str, Probe]:
    message = (world.message_id, world.missing_message_id)
    return {
        "message": Probe("GET", "/v1/messages/{ref}", *message),
        "status": Probe("GET", "/v1/messages/{ref}/status", *message),
        "ack": Probe(
            "POST", "/v1/messages/{ref}/ack", *message, body=lambda ref: _ack_body(hub, ref)
        ),
        "reject": Probe(
            "POST",
            "/v1/messages/{ref}/reject",
            *message,
            body=lambda ref: _ack_body(hub, ref, rejection=True),
        ),
        "request": Probe("GET", "/v1/requests/{ref}", world.request_id, world.missing_request_id),
        "case": Probe("GET", "/v1/cases/{ref}", CASE, MISSING_CASE),
        "blob": Probe("GET", "/v1/blobs/{ref}", world.blob_sha256, MISSING_SHA),
        "chunk": Probe(
            "PUT", "/v1/blobs/{ref}/0", world.upload_id, MISSING_UPLOAD, body=lambda _: b"x" * 64
        ),
    }


ENDPOINTS = ("message", "status", "ack", "reject", "request", "case", "blob", "chunk")


@contextmanager
def _statements(hub: HubFixture) -> Iterator[list[str]]:
    """Every SQL statement the hub's engine sends while the block runs (tests reach under
    the repositories on purpose)."""
    seen: list[str] = []
    engine = hub.store._engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _ask(
    hub: HubFixture, http: aiohttp.ClientSession, probe: Probe, ref: str
) -> tuple[Reply, list[str]]:
    body = probe.body(ref) if probe.body is not None else b""
    request = signed_request(
        hub, probe.method, probe.path.format(ref=ref), node=STRANGER, body=body
    )
    with _statements(hub) as statements:
        reply = await send(http, hub, request)
    return reply, statements


def _comparable(reply: Reply) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted((k, v) for k, v in reply.headers.items() if k.lower() != "date")
    return reply.status, headers, reply.body


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_foreign_record_runs_the_same_sql_and_answers_the_same_bytes(
    hub: HubFixture, http: aiohttp.ClientSession, endpoint: str
) -> None:
    world = await _world(hub)
    probe = _probes(hub, world)[endpoint]
    # Once each beforehand, so that neither side pays for a first statement's compilation.
    await _ask(hub, http, probe, probe.foreign)
    await _ask(hub, http, probe, probe.missing)

    foreign, foreign_sql = await _ask(hub, http, probe, probe.foreign)
    missing, missing_sql = await _ask(hub, http, probe, probe.missing)

    assert foreign.status == 404, foreign.body[:300]
    assert foreign_sql == missing_sql
    # The body names the caller's own path; with the paths swapped it is the same bytes.
    as_missing = foreign.body.replace(probe.foreign.encode(), probe.missing.encode())
    assert _comparable(missing) == _comparable(
        Reply(status=foreign.status, headers=foreign.headers, body=as_missing)
    )


async def test_the_parties_still_read_what_strangers_cannot(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    """The joined access checks still let each party through (and only the parties)."""
    world = await _world(hub)

    async def status_of(path: str, node: str) -> int:
        return (await send(http, hub, signed_request(hub, "GET", path, node=node))).status

    message = f"/v1/messages/{world.message_id}"
    assert [await status_of(message, n) for n in (HEALTH, LA, POLICE, STRANGER)] == [
        200,
        200,
        200,
        404,
    ]
    assert [await status_of(f"{message}/status", n) for n in (HEALTH, LA)] == [200, 404]
    request = f"/v1/requests/{world.request_id}"
    assert [await status_of(request, n) for n in (POLICE, HEALTH, LA)] == [200, 200, 404]
    case = f"/v1/cases/{CASE}"
    assert [await status_of(case, n) for n in (LA, POLICE, HEALTH, STRANGER)] == [
        200,
        200,
        200,
        404,
    ]
    blob = f"/v1/blobs/{world.blob_sha256}"
    assert [await status_of(blob, n) for n in (HEALTH, LA, POLICE, STRANGER)] == [
        200,
        200,
        200,
        404,
    ]


# -- timing -------------------------------------------------------------------------------

# An extra query through aiosqlite costs about 250 microseconds on the project's machines;
# the same work on both sides differs by noise only.
TOLERANCE_MICROSECONDS = 60.0
PAIRS = 2000
WARM_UP = 200

Call = Callable[[], Awaitable[None]]


async def _stranger(hub: HubFixture) -> NodeRecord:
    async with hub.store.read() as view:
        node = await view.nodes.get(STRANGER)
    assert node is not None
    return node


def _not_found(call: Callable[[], Awaitable[Any]]) -> Call:
    async def probe() -> None:
        try:
            await call()
        except NotFound:
            return
        raise AssertionError("expected 404")

    return probe


def _service_calls(hub: HubFixture, world: World, node: NodeRecord) -> dict[str, tuple[Call, Call]]:
    """What each handler calls after authentication, for the foreign and the missing id."""
    app = hub.server.app
    exchange, workflows, blobs = app[EXCHANGE], app[WORKFLOWS], app[BLOBS]
    now = app[CLOCK_FN]

    async def blob_download(sha256: str) -> None:
        await blobs.readable_path(node, sha256)
        await exchange.refuse_expired_payload(node, sha256)

    def pair(
        make: Callable[[str], Callable[[], Awaitable[Any]]], foreign: str, missing: str
    ) -> tuple[Call, Call]:
        return _not_found(make(foreign)), _not_found(make(missing))

    message = (world.message_id, world.missing_message_id)
    acks = {ref: _ack_body(hub, ref) for ref in message}
    rejections = {ref: _ack_body(hub, ref, rejection=True) for ref in message}
    return {
        "message": pair(lambda ref: lambda: exchange.fetch(node, ref), *message),
        "status": pair(lambda ref: lambda: exchange.status(node, ref), *message),
        "ack": pair(lambda ref: lambda: exchange.acknowledge(node, ref, acks[ref]), *message),
        "reject": pair(lambda ref: lambda: exchange.reject(node, ref, rejections[ref]), *message),
        "request": pair(
            lambda ref: lambda: workflows.request_view(node, ref, now()),
            world.request_id,
            world.missing_request_id,
        ),
        "case": pair(lambda ref: lambda: workflows.case_view(node, ref), CASE, MISSING_CASE),
        "blob": pair(lambda ref: lambda: blob_download(ref), world.blob_sha256, MISSING_SHA),
        "chunk": pair(
            lambda ref: lambda: blobs.upload_state(node, ref), world.upload_id, MISSING_UPLOAD
        ),
    }


@dataclass(frozen=True)
class Timing:
    foreign_median_us: float
    missing_median_us: float
    paired_median_us: float  # median of (foreign - missing) over interleaved pairs

    def __str__(self) -> str:
        return (
            f"foreign {self.foreign_median_us:.1f} us, missing {self.missing_median_us:.1f} us, "
            f"median paired difference {self.paired_median_us:+.1f} us"
        )


async def _measure(foreign: Call, missing: Call, *, pairs: int, seed: int) -> Timing:
    order = random.Random(seed)
    for _ in range(WARM_UP):
        await foreign()
        await missing()
    foreign_ns: list[int] = []
    missing_ns: list[int] = []
    gc.collect()
    gc.disable()  # a collection in one sample would be noise on one side only
    try:
        for _ in range(pairs):
            # Interleaved, in a random order per pair, so drift and ordering hit both sides.
            sides = [(foreign, foreign_ns), (missing, missing_ns)]
            order.shuffle(sides)
            for call, samples in sides:
                start = time.perf_counter_ns()
                await call()
                samples.append(time.perf_counter_ns() - start)
    finally:
        gc.enable()
    paired = [f - m for f, m in zip(foreign_ns, missing_ns, strict=True)]
    return Timing(
        foreign_median_us=statistics.median(foreign_ns) / 1000,
        missing_median_us=statistics.median(missing_ns) / 1000,
        paired_median_us=statistics.median(paired) / 1000,
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_foreign_record_takes_as_long_as_a_missing_one(
    hub: HubFixture, endpoint: str
) -> None:
    world = await _world(hub)
    foreign, missing = _service_calls(hub, world, await _stranger(hub))[endpoint]
    timing = await _measure(foreign, missing, pairs=PAIRS, seed=1)
    if abs(timing.paired_median_us) >= TOLERANCE_MICROSECONDS:
        # One retry: a burst of load from elsewhere on a shared two-core machine.
        timing = await _measure(foreign, missing, pairs=PAIRS, seed=2)
    print(f"{endpoint}: {timing}")
    assert abs(timing.paired_median_us) < TOLERANCE_MICROSECONDS, f"{endpoint}: {timing}"
