"""JSON logs: every line of a whole exchange is one JSON object, and none of them holds the
synthetic person's details or any key material; an exception is one field of one line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from io import StringIO
from typing import Any

import aiohttp
import pytest

from hub.client import HubProblem, PayloadSource
from hub.config import LogConfig
from hub.crypto import NodeKeys
from hub.server.logs import configure_logging
from hub.server.state import EXCHANGE
from tests.conftest import SYNTHETIC_REFERRAL, HubFixture, referral_fields
from tests.server.helpers import (
    HEALTH,
    LA,
    POLICE,
    send,
    signed_envelope,
    signed_request,
    submit,
)
from tests.server.test_routes_and_logs import _key_material

PERSON = ("Testperson", "Synthetic test concern", "2001-04-01", "National Prevent Referral")


@pytest.fixture
def json_log() -> Iterator[StringIO]:
    """The hub's JSON logging at DEBUG, as `hub serve --log-format json --log-level DEBUG`."""
    stream = StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(LogConfig(format="json", level="DEBUG"), stream=stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _lines(stream: StringIO) -> list[dict[str, Any]]:
    lines = stream.getvalue().splitlines()
    assert lines, "nothing was logged"
    parsed = []
    for text in lines:
        line = json.loads(text)  # every line, or the test fails here
        assert isinstance(line, dict), text
        parsed.append(line)
    return parsed


async def test_a_whole_exchange_logs_json_lines_with_no_personal_data_or_keys(
    hub: HubFixture, json_log: StringIO
) -> None:
    health, la, police = hub.client(HEALTH), hub.client(LA), hub.client(POLICE)
    # Large enough to travel as a blob, so the upload and download paths log too.
    long_form = {**SYNTHETIC_REFERRAL, "concerns": SYNTHETIC_REFERRAL["concerns"] * 2000}
    async with health, la, police:
        receipt = await health.send(referral_fields(), PayloadSource.json(SYNTHETIC_REFERRAL))
        large = await health.send(referral_fields(), PayloadSource.json(long_form))
        for reader in (la, police):
            await reader.inbox()
            for message_id in (receipt.message_id, large.message_id):
                message = await reader.fetch(message_id)
                assert await reader.open_payload(message) is not None
                await reader.acknowledge(message)
        await health.status(receipt.message_id)
    async with aiohttp.ClientSession() as http:  # past the node's pre-flight: the hub refuses
        secret = signed_envelope(hub, marking={"tier": "SECRET", "sensitive": False})
        assert (await submit(http, hub, secret)).status == 422
    impostor = hub.client(LA, keys=NodeKeys.from_seed(b"insecure-wrong-key-0000000000000"))
    async with impostor:
        with pytest.raises(HubProblem):  # an authentication failure, logged with its reason
            await impostor.inbox()

    lines = _lines(json_log)
    for line in lines:
        assert {"ts", "level", "logger", "event", "message"} <= set(line), line
        moment = datetime.fromisoformat(line["ts"].replace("Z", "+00:00"))
        assert moment.utcoffset() is not None
        assert moment.utcoffset() == UTC.utcoffset(None)
        assert line["ts"].endswith("Z")
    loggers = {line["logger"] for line in lines}
    assert {"hub.access", "hub.exchange", "hub.auth"} <= loggers
    access = [line for line in lines if line["logger"] == "hub.access"]
    routes = {line["route"] for line in access}
    assert {"/v1/messages", "/v1/blobs", "/v1/blobs/{upload_id}/{chunk}"} <= routes
    assert {"/v1/blobs/{sha256}", "/v1/messages/{message_id}/ack", "/v1/inbox"} <= routes
    assert {line["node"] for line in access} >= {HEALTH, LA, POLICE}
    assert any(line["status"] == 422 for line in access)
    assert any(line["status"] == 401 and line["node"] is None for line in access)
    text = json_log.getvalue()
    assert receipt.message_id in text, "the exchange was not logged at all"
    for detail in PERSON:
        assert detail not in text
    leaked = [what for what, spelling in _key_material().items() if spelling in text]
    assert leaked == []


async def test_an_unhandled_error_is_one_line_with_its_traceback_as_one_field(
    hub: HubFixture, json_log: StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken() -> dict[str, Any]:
        raise RuntimeError("directory failed\non two lines")

    monkeypatch.setattr(hub.server.app[EXCHANGE], "directory", broken)
    async with aiohttp.ClientSession() as http:
        reply = await send(http, hub, signed_request(hub, "GET", "/v1/directory"))
    assert reply.status == 500

    lines = _lines(json_log)
    [error] = [line for line in lines if line["level"] == "ERROR"]
    assert error["logger"] == "hub.server"
    assert error["message"] == "unhandled error on GET /v1/directory"
    assert error["event"] == "unhandled error on %s %s"
    assert error["exc"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: directory failed\non two lines" in error["exc"]
    [access] = [line for line in lines if line["logger"] == "hub.access"]
    assert (access["route"], access["status"], access["node"]) == ("/v1/directory", 500, HEALTH)
    assert len(json_log.getvalue().splitlines()) == len(lines)


def test_structured_fields_and_odd_values_stay_on_one_line() -> None:
    stream = StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(LogConfig(format="json", level="INFO"), stream=stream)
    try:
        logging.getLogger("hub.test").info(
            "odd %s",
            "value\u2028with a line separator\nand a newline",
            extra={"event": "odd", "count": 3, "when": datetime(2026, 1, 2, tzinfo=UTC)},
        )
        logging.getLogger("hub.test").debug("below the level")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    [text] = stream.getvalue().splitlines()
    line = json.loads(text)
    assert line["event"] == "odd"
    assert line["count"] == 3
    assert line["when"] == "2026-01-02 00:00:00+00:00"
    assert line["message"] == "odd value\u2028with a line separator\nand a newline"
    assert "\u2028" not in text  # escaped, so no line reader splits the event


def test_sql_loggers_stay_quiet_even_at_debug() -> None:
    stream = StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(LogConfig(format="json", level="DEBUG"), stream=stream)
    try:
        for name in ("sqlalchemy.engine", "aiosqlite", "asyncpg"):
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
        assert logging.getLogger("hub.exchange").isEnabledFor(logging.DEBUG)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
