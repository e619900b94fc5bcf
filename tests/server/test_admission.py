"""Admission limits at the hub's front (hub/server/admission.py, deploy/limits.md).

The memory bound and the connection gate are measured on a real ``hub serve`` process
(its own event loop, listening socket and memory, read from /proc/PID/status) with raw
sockets, as an attacker would connect. The per-node limit is tested in-process.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from hub.config import HubConfig
from hub.server.admission import ADMISSION
from tests.conftest import HubFixture, running_hub
from tests.server.helpers import HEALTH, POLICE, send, signed_request
from tests.server.live import LiveHub, live_hub, rss_bytes, signed_headers

MIB = 1024 * 1024
STALLERS = 1000
ANNOUNCED = 262_000
SENT = 261_000
BODY_READ_SECONDS = 2.0
MARGIN_SECONDS = 10.0
_STALLED_HEAD = (
    "POST /v1/messages HTTP/1.1\r\nHost: hub.test\r\nContent-Type: application/json\r\n"
    f"Content-Length: {ANNOUNCED}\r\n\r\n"
).encode()


@contextmanager
def _file_descriptors(needed: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} file descriptors; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _address(hub: LiveHub) -> tuple[str, int]:
    parts = urlsplit(hub.url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


async def _until_closed(reader: asyncio.StreamReader, within: float) -> bool:
    """Read (and drop) what the hub answers until it closes the connection."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(64 * 1024):
                pass
    except TimeoutError:
        return False
    except OSError:
        pass  # reset: the hub closed with our unread bytes in its buffer
    return True


async def _stall(hub: LiveHub, started: float) -> float | None:
    """Announce 262,000 bytes, send 261,000, stall; when the hub closed it (None: never)."""
    reader, writer = await asyncio.open_connection(*_address(hub))
    try:
        writer.write(_STALLED_HEAD + b"a" * SENT)
        try:
            async with asyncio.timeout(BODY_READ_SECONDS + MARGIN_SECONDS):
                await writer.drain()
        except (OSError, TimeoutError):
            pass  # the hub stopped reading or closed: what happens next is the measure
        closed = await _until_closed(reader, BODY_READ_SECONDS + MARGIN_SECONDS)
        return time.monotonic() - started if closed else None
    finally:
        writer.close()


async def _warm_up(hub: LiveHub) -> None:
    """Exercise the paths the attack takes once, so lazy imports and caches are counted
    in the baseline rather than as growth."""
    for _ in range(3):
        reader, writer = await asyncio.open_connection(*_address(hub))
        writer.write(_STALLED_HEAD + b"a" * 1000)
        await _until_closed(reader, 10)
        writer.close()


@pytest.mark.slow
async def test_a_thousand_stalled_unauthenticated_bodies_cost_under_32_mib_and_are_closed(
    tmp_path: Path,
) -> None:
    with (
        _file_descriptors(STALLERS + 256),
        live_hub(tmp_path / "hub", body_read_seconds=BODY_READ_SECONDS) as hub,
    ):
        await _warm_up(hub)
        await asyncio.sleep(0.3)
        before, peak_before = rss_bytes(hub.pid), rss_bytes(hub.pid, "VmHWM")
        started = time.monotonic()
        closed_after = await asyncio.gather(*(_stall(hub, started) for _ in range(STALLERS)))
        await asyncio.sleep(0.3)
        after, peak_after = rss_bytes(hub.pid), rss_bytes(hub.pid, "VmHWM")
        log = hub.log()
    never = sum(1 for moment in closed_after if moment is None)
    assert never == 0, f"{never} of {STALLERS} connections were never closed by the hub"
    latest = max(moment for moment in closed_after if moment is not None)
    assert latest <= BODY_READ_SECONDS + MARGIN_SECONDS, latest
    growth, peak_growth = after - before, peak_after - max(before, peak_before)
    report = (
        f"RSS {before / MIB:.1f} -> {after / MIB:.1f} MiB, peak +{peak_growth / MIB:.1f} MiB, "
        f"last closed after {latest:.2f}s"
    )
    print(report)  # the figures, for the record (pytest -s)
    assert growth <= 32 * MIB, report
    assert peak_growth <= 32 * MIB, report
    assert "unhandled error" not in log


async def _idle_connection(
    hub: LiveHub,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*_address(hub))


async def _ask(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    path: str,
    headers: dict[str, str] | None = None,
) -> None:
    lines = [f"GET {path} HTTP/1.1", "Host: hub.test"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()


async def _status(reader: asyncio.StreamReader, within: float) -> int | None:
    """The status of the next response with its body read, or None if none came in time."""
    try:
        async with asyncio.timeout(within):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
    except TimeoutError:
        return None
    return int(head.split(b" ", 2)[1])


@asynccontextmanager
async def _connections(
    hub: LiveHub, count: int
) -> AsyncIterator[list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]:
    opened = [await _idle_connection(hub) for _ in range(count)]
    try:
        yield opened
    finally:
        for _, writer in opened:
            writer.close()


async def test_at_the_cap_new_connections_wait_unread_until_a_stranger_times_out(
    tmp_path: Path,
) -> None:
    with live_hub(
        tmp_path / "hub", max_unauthenticated_connections=3, unauthenticated_connection_seconds=1.5
    ) as hub:
        async with _connections(hub, 3) as strangers:  # connected, silent
            await asyncio.sleep(0.3)
            started = time.monotonic()
            async with _connections(hub, 1) as [(reader, writer)]:
                await _ask(reader, writer, "/v1/health")
                # Not accepted yet: the kernel queued it, the hub has not read it.
                assert await _status(reader, within=0.7) is None
                # The silent ones are closed at their deadline, and then it is served.
                for stranger, _ in strangers:
                    assert await _until_closed(stranger, within=5)
                closed = time.monotonic() - started
                assert await _status(reader, within=5) == 200
        assert 0.5 <= closed <= 5, closed
        assert "did not authenticate within 1.5s" in hub.log()


async def test_an_authenticated_connection_leaves_the_count(tmp_path: Path) -> None:
    with live_hub(
        tmp_path / "hub", max_unauthenticated_connections=2, unauthenticated_connection_seconds=30
    ) as hub:
        async with _connections(hub, 2) as nodes:
            for reader, writer in nodes:  # each signs a request and stays connected
                await _ask(
                    reader,
                    writer,
                    "/v1/directory",
                    signed_headers("GET", "/v1/directory", node=HEALTH),
                )
                assert await _status(reader, within=5) == 200
            async with _connections(hub, 1) as [(reader, writer)]:
                await _ask(reader, writer, "/v1/health")
                assert await _status(reader, within=3) == 200  # served at once
        async with _connections(hub, 2) as strangers:
            for reader, writer in strangers:  # unsigned calls do not authenticate
                await _ask(reader, writer, "/v1/health")
                assert await _status(reader, within=5) == 200
            async with _connections(hub, 1) as [(reader, writer)]:
                await _ask(reader, writer, "/v1/health")
                assert await _status(reader, within=0.7) is None  # waits for a place


@pytest.fixture
async def two_per_node(make_config: Callable[..., HubConfig]) -> AsyncIterator[HubFixture]:
    config = make_config(per_node_concurrent_requests=2, inbox_wait_max_seconds=2.0)
    async with running_hub(config) as fixture:
        yield fixture


async def test_a_node_beyond_its_concurrent_requests_gets_429_with_retry_after(
    two_per_node: HubFixture,
) -> None:
    hub = two_per_node
    admission = hub.server.app[ADMISSION]
    async with aiohttp.ClientSession() as http:

        def inbox_poll(node: str) -> asyncio.Task[object]:
            request = signed_request(hub, "GET", "/v1/inbox", node=node, query="wait=2")
            return asyncio.create_task(send(http, hub, request))

        polls = [inbox_poll(HEALTH), inbox_poll(HEALTH)]
        for _ in range(100):
            if admission.in_flight(HEALTH) == 2:
                break
            await asyncio.sleep(0.02)
        assert admission.in_flight(HEALTH) == 2

        third = await send(http, hub, signed_request(hub, "GET", "/v1/directory", node=HEALTH))
        problem = third.problem(429, "too-many-requests")
        assert "limits.per_node_concurrent_requests" in problem["detail"]
        assert third.headers["Retry-After"] == "1"
        # Another node is not held up by this one.
        other = await send(http, hub, signed_request(hub, "GET", "/v1/directory", node=POLICE))
        assert other.status == 200

        await asyncio.gather(*polls)
        assert admission.in_flight(HEALTH) == 0
        again = await send(http, hub, signed_request(hub, "GET", "/v1/directory", node=HEALTH))
        assert again.status == 200


async def test_a_refused_request_gives_its_slot_back(two_per_node: HubFixture) -> None:
    hub = two_per_node
    missing = "/v1/messages/01890000-0000-7000-8000-000000000000/status"
    async with aiohttp.ClientSession() as http:
        for _ in range(5):  # more than the limit, one after another: all 404, none 429
            reply = await send(http, hub, signed_request(hub, "GET", missing, node=HEALTH))
            reply.problem(404, "not-found")
    assert hub.server.app[ADMISSION].in_flight(HEALTH) == 0


async def test_a_connection_can_put_only_a_few_receive_buffers_into_the_hub(
    tmp_path: Path,
) -> None:
    """What a client can push at the hub that its handler does not read: the kernel buffer
    (limits.receive_buffer_bytes, doubled by Linux) plus the read-ahead (twice it). A
    signed long-poll with a body nobody reads holds its connection long enough to fill
    both; with aiohttp's and the kernel's defaults that is megabytes."""
    with live_hub(tmp_path / "hub", inbox_wait_max_seconds=5.0) as hub:
        headers = signed_headers("GET", "/v1/inbox", node=HEALTH, query="wait=4")
        head = ["GET /v1/inbox?wait=4 HTTP/1.1", "Host: hub.test", "Content-Length: 8000000"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # ours holds little
        client.connect(_address(hub))
        try:
            client.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            client.setblocking(False)
            pushed, quiet_since = 0, time.monotonic()
            while time.monotonic() - quiet_since < 1.0:  # until the hub takes no more
                try:
                    pushed += client.send(b"x" * 65536)
                    quiet_since = time.monotonic()
                except BlockingIOError:
                    await asyncio.sleep(0.05)
        finally:
            client.close()
    # 16 KiB: ~32 KiB in the kernel, 32 KiB read ahead, plus our own small send buffer.
    assert pushed < 160 * 1024, pushed
