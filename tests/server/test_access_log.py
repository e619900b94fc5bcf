"""The access log: one line per request with the route pattern, status, duration, bytes,
the authenticated node and the peer; health checks and scrapes at DEBUG."""

from __future__ import annotations

import asyncio
import json
import logging
from io import StringIO
from urllib.parse import urlsplit

import aiohttp
import pytest

from hub.config import LogConfig
from hub.server.access import CLIENT_WENT_AWAY
from hub.server.logs import configure_logging
from tests.conftest import HubFixture
from tests.server.helpers import (
    HEALTH,
    LA,
    STRANGER,
    SignedRequest,
    send,
    sha256_hex,
    signed_envelope,
    signed_request,
    submit,
)


def _access(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "hub.access"]


@pytest.fixture
def access(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="hub.access")
    return caplog


async def test_one_line_per_request_with_the_route_pattern_and_the_node(
    hub: HubFixture, http: aiohttp.ClientSession, access: pytest.LogCaptureFixture
) -> None:
    envelope = signed_envelope(hub)
    assert (await submit(http, hub, envelope)).status == 201
    access.clear()
    fetched = await send(
        http, hub, signed_request(hub, "GET", f"/v1/messages/{envelope['id']}", node=LA)
    )
    assert fetched.status == 200

    [line] = _access(access)
    assert line.levelno == logging.INFO
    fields = {k: getattr(line, k) for k in ("method", "route", "status", "bytes", "node", "remote")}
    assert fields == {
        "method": "GET",
        "route": "/v1/messages/{message_id}",
        "status": 200,
        "bytes": len(fetched.body),
        "node": LA,
        "remote": "127.0.0.1",
    }
    assert line.duration_ms > 0
    text = line.getMessage()
    assert text.startswith("GET /v1/messages/{message_id} 200 ")
    assert f"{len(fetched.body)}B node={LA} remote=127.0.0.1" in text
    assert envelope["id"] not in text  # the pattern, never the raw path


async def test_a_refused_or_unauthenticated_request_is_logged_with_its_status(
    hub: HubFixture, http: aiohttp.ClientSession, access: pytest.LogCaptureFixture
) -> None:
    refused = await submit(
        http, hub, signed_envelope(hub, marking={"tier": "SECRET", "sensitive": False})
    )
    assert refused.status == 422
    unsigned = await send(http, hub, SignedRequest("GET", "/v1/inbox", "", b"", {}))
    assert unsigned.status == 401
    lines = _access(access)
    assert [(r.method, r.route, r.status, r.node) for r in lines] == [
        ("POST", "/v1/messages", 422, HEALTH),
        ("GET", "/v1/inbox", 401, None),
    ]
    assert lines[0].bytes == len(refused.body)
    assert "node=- " in lines[1].getMessage()


async def test_query_strings_and_unmatched_paths_are_not_logged(
    hub: HubFixture, http: aiohttp.ClientSession, access: pytest.LogCaptureFixture
) -> None:
    query = "subject_ref=subj-000123"
    reply = await send(http, hub, signed_request(hub, "GET", "/v1/audit/disclosures", query=query))
    assert reply.status == 200
    await send(http, hub, SignedRequest("GET", "/v1/cases/CASE-Sam-Testperson/x", "", b"", {}))
    lines = _access(access)
    assert [(r.route, r.status) for r in lines] == [
        ("/v1/audit/disclosures", 200),
        ("unmatched", 404),
    ]
    text = access.text + " ".join(str(vars(r)) for r in lines)
    assert "subj-000123" not in text
    assert "Testperson" not in text


async def test_health_checks_and_scrapes_are_debug_and_the_rest_info(
    hub: HubFixture, http: aiohttp.ClientSession, access: pytest.LogCaptureFixture
) -> None:
    for path in ("/v1/health", "/metrics", "/v1/openapi.json"):
        async with http.get(hub.url + path) as response:
            assert response.status == 200
    levels = {r.route: r.levelname for r in _access(access)}
    assert levels == {"/v1/health": "DEBUG", "/metrics": "DEBUG", "/v1/openapi.json": "INFO"}


async def test_a_blob_download_logs_the_bytes_it_streamed(
    hub: HubFixture, http: aiohttp.ClientSession, access: pytest.LogCaptureFixture
) -> None:
    blob = bytes(range(256)) * 40  # 10 KiB, one chunk
    body = json.dumps({"sha256": sha256_hex(blob), "size": len(blob)}).encode()
    upload = (await send(http, hub, signed_request(hub, "POST", "/v1/blobs", body=body))).json()
    put = signed_request(
        hub,
        "PUT",
        f"/v1/blobs/{upload['upload_id']}/0",
        body=blob,
        content_type="application/octet-stream",
    )
    assert (await send(http, hub, put)).status == 200
    access.clear()
    path = f"/v1/blobs/{sha256_hex(blob)}"
    whole = await send(http, hub, signed_request(hub, "GET", path))
    assert whole.body == blob
    part = await send(
        http, hub, signed_request(hub, "GET", path), extra_headers={"Range": "bytes=0-99"}
    )
    assert part.status == 206
    stranger = await send(http, hub, signed_request(hub, "GET", path, node=STRANGER))
    assert stranger.status == 404
    lines = [(r.route, r.status, r.bytes, r.node) for r in _access(access)]
    assert lines == [
        ("/v1/blobs/{sha256}", 200, len(blob), HEALTH),
        ("/v1/blobs/{sha256}", 206, 100, HEALTH),
        ("/v1/blobs/{sha256}", 404, len(stranger.body), STRANGER),
    ]


async def test_the_access_line_in_json_carries_every_field(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    stream = StringIO()
    handler = configure_logging(LogConfig(format="json", level="INFO"), stream=stream)
    try:
        reply = await send(http, hub, signed_request(hub, "GET", "/v1/inbox", node=LA))
        assert reply.status == 200
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(logging.WARNING)
    [line] = [json.loads(text) for text in stream.getvalue().splitlines() if '"hub.access"' in text]
    assert line["event"] == "request"
    assert line["level"] == "INFO"
    assert {k: line[k] for k in ("method", "route", "status", "node", "remote", "bytes")} == {
        "method": "GET",
        "route": "/v1/inbox",
        "status": 200,
        "node": LA,
        "remote": "127.0.0.1",
        "bytes": len(reply.body),
    }
    assert isinstance(line["duration_ms"], float)
    assert line["message"].startswith("GET /v1/inbox 200 ")


async def test_a_client_that_hangs_up_mid_body_still_gets_one_line(
    hub: HubFixture, access: pytest.LogCaptureFixture
) -> None:
    body = b'{"x": "' + b"a" * 100_000 + b'"}'
    signed = signed_request(hub, "POST", "/v1/messages", body=body)
    parts = urlsplit(hub.url)
    _reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head = ["POST /v1/messages HTTP/1.1", "Host: hub.test", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in signed.headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body[:1000])
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()
    await writer.wait_closed()
    for _ in range(100):
        if _access(access):
            break
        await asyncio.sleep(0.02)
    [line] = _access(access)
    # Cancelled with the connection (499), or answered as a body that never arrived (400).
    assert (line.route, line.node) == ("/v1/messages", HEALTH)
    assert line.status in (400, CLIENT_WENT_AWAY)


async def test_a_body_that_does_not_match_its_signed_digest_names_no_node(
    hub: HubFixture, http: aiohttp.ClientSession, access: pytest.LogCaptureFixture
) -> None:
    body = b'{"id": "x"}'
    forged = signed_request(hub, "POST", "/v1/messages", body=body, digest_of=b"something else")
    reply = await send(http, hub, forged)
    reply.problem(401, "unauthenticated")
    [line] = _access(access)
    assert (line.route, line.status, line.node) == ("/v1/messages", 401, None)
