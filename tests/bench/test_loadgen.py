"""The harness's load generator: signatures the hub accepts, answers read right, counts kept.

No timing is asserted: what these check is that the generator sends what the hub would
accept from a node and counts what comes back honestly.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench.loadgen import (
    PreparedRequest,
    RequestSigner,
    WorkItem,
    _read_answer,
    percentile,
    prepare,
    run_load,
)
from hub.crypto import SigningKey
from hub.crypto.httpsig import SignatureRejected, sign_request, verify_request

# Fixed-seed, insecure test key: never used outside tests.
INSECURE_TEST_SEED = bytes(range(32))
NODE = "health.bsw-icb"


def _signed_headers(request: PreparedRequest, signer: RequestSigner) -> dict[str, str]:
    """The request's header lines, fixed and signed, as the hub's parser would see them."""
    text = (request.head + signer(request)).decode("ascii")
    headers: dict[str, str] = {}
    for line in text.split("\r\n")[1:]:
        if line:
            name, _, value = line.partition(": ")
            headers[name] = value
    return headers


def test_the_signature_is_one_the_hubs_verifier_accepts_and_equals_sign_request() -> None:
    key = SigningKey(INSECURE_TEST_SEED)
    body = b'{"envelope": "sealed"}'
    request = prepare("POST", "/v1/messages", host="127.0.0.1:1", body=body)
    headers = _signed_headers(request, RequestSigner(key, NODE))

    parsed = verify_request(
        method="POST",
        path="/v1/messages",
        query="",
        headers=headers,
        public_key=key.public_bytes,
        now=int(time.time()),
    )
    assert parsed.keyid == NODE
    # Byte for byte what the node client's signer gives for the same created and nonce.
    expected = sign_request(
        method="POST",
        path="/v1/messages",
        query="",
        body_digest_header=headers["Content-Digest"],
        key=key,
        keyid=NODE,
        created=parsed.created,
        nonce=parsed.nonce,
    )
    assert {name: headers[name] for name in expected} == expected


def test_a_query_is_covered_by_the_signature() -> None:
    key = SigningKey(INSECURE_TEST_SEED)
    request = prepare("GET", "/v1/audit/proof/inclusion", host="h", query="index=3&size=9")
    headers = _signed_headers(request, RequestSigner(key, NODE))
    assert request.head.startswith(b"GET /v1/audit/proof/inclusion?index=3&size=9 HTTP/1.1\r\n")
    verify_request(
        method="GET",
        path="/v1/audit/proof/inclusion",
        query="index=3&size=9",
        headers=headers,
        public_key=key.public_bytes,
        now=int(time.time()),
    )
    with pytest.raises(SignatureRejected, match="bad signature"):
        verify_request(
            method="GET",
            path="/v1/audit/proof/inclusion",
            query="index=4&size=9",
            headers=headers,
            public_key=key.public_bytes,
            now=int(time.time()),
        )


def test_every_signature_has_a_fresh_nonce() -> None:
    signer = RequestSigner(SigningKey(INSECURE_TEST_SEED), NODE)
    request = prepare("POST", "/v1/messages", host="h", body=b"{}")
    nonces = {
        re.search(rb'nonce="([^"]+)"', signer(request)).group(1)  # type: ignore[union-attr]
        for _ in range(500)
    }
    assert len(nonces) == 500
    other = RequestSigner(SigningKey(INSECURE_TEST_SEED), NODE)
    assert re.search(rb'nonce="([^"]+)"', other(request)).group(1) not in nonces  # type: ignore[union-attr]


async def _answer(raw: bytes) -> tuple[int, bytes, bool]:
    reader = asyncio.StreamReader()
    reader.feed_data(raw)
    reader.feed_eof()
    return await _read_answer(reader)


async def test_answers_are_read_by_length_by_chunks_and_with_connection_close() -> None:
    assert await _answer(b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello") == (
        201,
        b"hello",
        True,
    )
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    assert await _answer(chunked) == (200, b"abcde", True)
    closing = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno"
    assert await _answer(closing) == (400, b"no", False)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile([7.0], 0.99) == 7
    assert percentile([], 0.5) != percentile([], 0.5)  # NaN for no samples


def _no_auth() -> Any:
    return lambda _request: b""


async def test_a_run_counts_every_item_its_errors_and_keeps_answers() -> None:
    seen: list[bytes] = []

    async def accept(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append(body)
        if body == b"refuse":
            return web.json_response({"problem": "no"}, status=422)
        return web.json_response({"echo": body.decode()}, status=201)

    app = web.Application()
    app.router.add_post("/v1/messages", accept)
    async with TestServer(app, host="127.0.0.1") as server:
        host = f"127.0.0.1:{server.port}"
        bodies = [f"m{i}".encode() for i in range(40)] + [b"refuse"] * 3
        items = [
            WorkItem((prepare("POST", "/v1/messages", host=host, body=b, digest=False),), tag=b)
            for b in bodies
        ]
        run = await run_load(
            "127.0.0.1",
            server.port,
            items,
            concurrency=8,
            authenticator=_no_auth,
            keep_answers=True,
        )
    assert sorted(seen) == sorted(bodies)
    assert run.completed == 43
    assert run.errors == 3
    assert run.ok == 40
    assert run.statuses == {201: 40, 422: 3}
    assert "HTTP 422" in run.error_samples[0]
    assert run.latencies == sorted(run.latencies)
    assert {tag for tag, status, _ in run.answers if status == 201} == set(bodies[:40])
    assert all(b'"echo"' in body for _, status, body in run.answers if status == 201)
    assert run.rate > 0
    assert run.cpu_seconds >= 0


async def test_a_run_stops_issuing_at_its_time_limit() -> None:
    async def slow(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(0.05)
        return web.json_response({}, status=201)

    app = web.Application()
    app.router.add_post("/v1/messages", slow)
    async with TestServer(app, host="127.0.0.1") as server:
        host = f"127.0.0.1:{server.port}"
        items = [
            WorkItem((prepare("POST", "/v1/messages", host=host, body=b"x", digest=False),))
            for _ in range(1000)
        ]
        run = await run_load(
            "127.0.0.1", server.port, items, concurrency=2, authenticator=_no_auth, seconds=0.3
        )
    # 2 connections x 0.05 s each: far fewer than 1000 in 0.3 s; those started all finished.
    assert 0 < run.completed < 100
    assert run.errors == 0


async def test_connections_are_spread_over_several_ports() -> None:
    hits = {"a": 0, "b": 0}

    def app_for(name: str) -> web.Application:
        async def accept(request: web.Request) -> web.Response:
            await request.read()
            hits[name] += 1
            return web.json_response({}, status=201)

        app = web.Application()
        app.router.add_post("/v1/messages", accept)
        return app

    async with (
        TestServer(app_for("a"), host="127.0.0.1") as first,
        TestServer(app_for("b"), host="127.0.0.1") as second,
    ):
        items = [
            WorkItem((prepare("POST", "/v1/messages", host="h", body=b"x", digest=False),))
            for _ in range(60)
        ]
        run = await run_load(
            "127.0.0.1",
            first.port,
            items,
            concurrency=4,
            authenticator=_no_auth,
            ports=[first.port, second.port],
        )
    assert run.ok == 60
    assert hits["a"] > 0
    assert hits["b"] > 0


async def test_a_server_that_stops_answering_fails_the_run_instead_of_hanging_it() -> None:
    async def never(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(30)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v1/messages", never)
    async with TestServer(app, host="127.0.0.1") as server:
        items = [WorkItem((prepare("POST", "/v1/messages", host="h", body=b"x", digest=False),))]
        with pytest.raises(TimeoutError):
            await run_load(
                "127.0.0.1",
                server.port,
                items,
                concurrency=1,
                authenticator=_no_auth,
                stall_seconds=0.3,
            )


async def test_each_lane_is_signed_by_its_own_authenticator_at_any_concurrency() -> None:
    seen: list[tuple[str, bytes]] = []

    async def accept(request: web.Request) -> web.Response:
        seen.append((request.headers["X-Lane"], await request.read()))
        return web.json_response({}, status=201)

    def lane_auth(name: str) -> Any:
        return lambda: lambda _request: f"X-Lane: {name}\r\n".encode()

    app = web.Application()
    app.router.add_post("/v1/messages", accept)
    async with TestServer(app, host="127.0.0.1") as server:
        for concurrency in (1, 2, 8):
            seen.clear()
            lanes = [
                (
                    [
                        WorkItem(
                            (prepare("POST", "/v1/messages", host="h", body=f"{n}{i}".encode(),
                                     digest=False),)
                        )
                        for i in range(5)
                    ],
                    lane_auth(n),
                )
                for n in "abc"
            ]  # fmt: skip
            run = await run_load("127.0.0.1", server.port, lanes=lanes, concurrency=concurrency)
            # Every item of every lane was sent, and under its own lane's authentication.
            assert run.ok == 15
            assert sorted(seen) == sorted((n, f"{n}{i}".encode()) for n in "abc" for i in range(5))
