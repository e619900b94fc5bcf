"""The anchors: the trivial server is trivial, and a missing MESH sandbox is said plainly."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from bench import anchors
from bench.sealed import SealedMessage


async def test_the_trivial_server_reads_the_body_and_answers_small_json(
    aiohttp_client: Any,
) -> None:
    client = await aiohttp_client(anchors.trivial_app())
    answer = await client.post("/v1/messages", data=b"x" * 3000)
    assert answer.status == 200
    assert await answer.json() == {"received": 3000}
    assert (await client.get("/v1/health")).status == 200


def test_a_missing_mesh_sandbox_is_named_with_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "mesh_sandbox" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    reason = anchors.mesh_available()
    assert reason is not None
    assert "mesh_sandbox" in reason
    assert "pip install -e '.[bench]'" in reason


def test_mesh_is_sent_the_payload_ciphertext_as_mesh_client_sends_one_chunk() -> None:
    message = SealedMessage("0190a2b4-0000-7000-8000-000000000001", "ab" * 32, b"{}", b"\x01" * 40)
    (item,) = anchors.mesh_items([message], host="127.0.0.1:9")
    (request,) = item.requests
    head = request.head.decode()
    assert head.startswith(f"POST /messageexchange/{anchors.MESH_SENDER}/outbox HTTP/1.1\r\n")
    assert f"Mex-To: {anchors.MESH_RECIPIENT}\r\n" in head
    assert "Mex-Chunk-Range: 1:1\r\n" in head
    assert "Content-Length: 40\r\n" in head
    assert request.body == message.ciphertext
    # MESH authenticates with its own token, not RFC 9421: no digest, no signature base.
    assert "Content-Digest" not in head
    assert request.base_prefix == b""
