"""Request bodies: authenticated from the headers before any byte of the body is read,
read within a time limit, and a client that goes away mid-body is not an error.

Raw sockets, so that a test can send headers and then stall or hang up, as an attacker
or a dropped connection would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from hub.config import HubConfig
from hub.server.problems import ClientGone, problem_middleware
from tests.conftest import HubFixture, running_hub
from tests.server.helpers import signed_request

BODY = b'{"x": "' + b"a" * 200_000 + b'"}'


@pytest.fixture
async def quick_hub(make_config: Callable[..., HubConfig]) -> AsyncIterator[HubFixture]:
    async with running_hub(make_config(body_read_seconds=0.5)) as fixture:
        yield fixture


async def _connect(hub: HubFixture) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(hub.url)
    assert parts.hostname is not None
    return await asyncio.open_connection(parts.hostname, parts.port)


def _head(path: str, headers: dict[str, str], length: int) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: hub.test", f"Content-Length: {length}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The status and body of the response (read by its Content-Length)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return status, await asyncio.wait_for(reader.readexactly(length), timeout=10)


async def _closed(reader: asyncio.StreamReader) -> bool:
    """Whether the hub closes the connection (rather than waiting for the rest)."""
    try:
        return await asyncio.wait_for(reader.read(), timeout=3) == b""
    except TimeoutError:
        return False


async def test_an_unauthenticated_body_is_refused_from_its_headers(quick_hub: HubFixture) -> None:
    reader, writer = await _connect(quick_hub)
    try:
        # Headers announcing 262,000 bytes, and not one byte of body: the hub answers 401
        # at once and closes, rather than waiting for (and holding) the body.
        writer.write(_head("/v1/messages", {"Content-Type": "application/json"}, 262_000))
        await writer.drain()
        status, raw = await _answer(reader)
        closed = await _closed(reader)
    finally:
        writer.close()
    assert status == 401
    assert b"urn:seh:problem:unauthenticated" in raw
    assert closed, "the hub kept the connection open for a body it will never read"


async def test_a_stalled_body_gets_408_after_the_time_limit(quick_hub: HubFixture) -> None:
    signed = signed_request(quick_hub, "POST", "/v1/messages", body=BODY)
    reader, writer = await _connect(quick_hub)
    try:
        writer.write(_head("/v1/messages", dict(signed.headers), len(BODY)))
        writer.write(BODY[:1000])  # then nothing more
        await writer.drain()
        started = asyncio.get_running_loop().time()
        status, raw = await _answer(reader)
        waited = asyncio.get_running_loop().time() - started
        closed = await _closed(reader)
    finally:
        writer.close()
    assert closed
    assert status == 408
    assert b"urn:seh:problem:request-timeout" in raw
    assert 0.4 <= waited < 5, waited  # closed after the limit, not held open


async def test_a_client_that_hangs_up_mid_body_is_an_info_line_not_an_error(
    quick_hub: HubFixture, caplog: pytest.LogCaptureFixture
) -> None:
    signed = signed_request(quick_hub, "POST", "/v1/messages", body=BODY)
    caplog.set_level(logging.INFO, logger="hub.server")
    _reader, writer = await _connect(quick_hub)
    writer.write(_head("/v1/messages", dict(signed.headers), len(BODY)))
    writer.write(BODY[:1000])
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()
    await writer.wait_closed()
    for _ in range(50):
        if any("went away mid-body" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "hub.server"]
    assert any(level == logging.INFO and "went away mid-body" in m for level, m in messages)
    assert not any("unhandled error" in m for _, m in messages), messages
    assert not any(level >= logging.ERROR for level, _ in messages), messages


async def test_a_whole_signed_body_is_still_accepted_or_judged(quick_hub: HubFixture) -> None:
    # The same route with the whole body: the hub reads it and judges it (here a 400 for
    # a body that is no envelope), so reading after authenticating changes nothing else.
    signed = signed_request(quick_hub, "POST", "/v1/messages", body=BODY)
    reader, writer = await _connect(quick_hub)
    try:
        writer.write(
            _head("/v1/messages", {**dict(signed.headers), "Connection": "close"}, len(BODY))
        )
        writer.write(BODY)
        await writer.drain()
        status, _ = await _answer(reader)
    finally:
        writer.close()
    assert status in (400, 422)


async def test_the_middleware_answers_a_vanished_client_with_one_info_line(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Where the server lets the handler run on (``hub serve``), reading a body whose client
    has gone raises ConnectionResetError, which _read_body turns into ClientGone."""

    async def vanished(request: web.Request) -> web.Response:
        raise ClientGone("ConnectionResetError: Connection lost")

    app = web.Application(middlewares=[problem_middleware])
    app.router.add_post("/v1/messages", vanished)
    client = await aiohttp_client(app)
    caplog.set_level(logging.INFO, logger="hub.server")
    answer = await client.post("/v1/messages", data=b"{}")
    assert answer.status == 400
    assert answer.headers.get("Connection", "").lower() == "close"
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "hub.server"]
    assert messages == [
        (
            logging.INFO,
            "client went away mid-body on POST /v1/messages "
            "(ConnectionResetError: Connection lost)",
        )
    ]
