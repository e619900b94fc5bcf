"""The same-run anchors: a trivial aiohttp POST server and NHS MESH's sandbox server.

Both run on loopback as subprocesses, like the hub, and get the same load generator.

* The **trivial server** (``python -m bench.anchors --port N``) is aiohttp with one POST
  handler that reads the body and answers a small JSON document: no authentication, no
  parsing, no storage. It is sent the hub's own requests, byte for byte (the same signed
  envelope and the same RFC 9421 headers), so the generator does the same work for both,
  and the generator's CPU per message against it is its ceiling.
* **MESH** is ``mesh-sandbox`` (NHS England's locally testable MESH API, a FastAPI app)
  under uvicorn with one worker, its file store (messages persisted on disk) and its full
  authentication mode (the ``NHSMESH`` HMAC token checked on every request); each request
  carries a fresh token made by the official ``mesh-client`` token generator. It is sent
  the same 1 KiB payloads as the hub, as MESH carries them: the sealed ciphertext as the
  message body, one chunk, from mailbox X26ABC1 to X26ABC2 (mailboxes the sandbox ships).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from bench.loadgen import WorkItem, prepare
from bench.processes import ServerProcess, free_port
from bench.sealed import SealedMessage

__all__ = [
    "MESH_RECIPIENT",
    "MESH_SENDER",
    "MESH_SHARED_KEY",
    "mesh_available",
    "mesh_items",
    "start_mesh",
    "start_trivial",
]

MESH_SENDER = "X26ABC1"
MESH_RECIPIENT = "X26ABC2"
# The sandbox's packaged mailboxes (store/data/mailboxes.jsonl) have this password.
MESH_PASSWORD = "password"  # noqa: S105 - the sandbox's published test password
MESH_SHARED_KEY = b"BenchSharedKey"
MESH_WORKFLOW = "TEST_WORKFLOW"


def trivial_app() -> web.Application:
    async def accept(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({"received": len(body)})

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/v1/messages", accept)
    app.router.add_get("/v1/health", health)
    return app


def start_trivial(workdir: Path) -> tuple[ServerProcess, int]:
    port = free_port()
    server = ServerProcess(
        "trivial-aiohttp",
        [sys.executable, "-m", "bench.anchors", "--port", str(port)],
        log=workdir / "trivial-aiohttp.log",
        health_url=f"http://127.0.0.1:{port}/v1/health",
        cwd=Path(__file__).resolve().parents[1],
    )
    return server, port


def mesh_available() -> str | None:
    """None when mesh-sandbox, mesh-client and uvicorn are importable, else why not."""
    missing = [
        name
        for name in ("mesh_sandbox", "mesh_client", "uvicorn")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        return (
            f"not installed: {', '.join(missing)} (pip install -e '.[bench]' brings "
            "mesh-sandbox and mesh-client)"
        )
    return None


def start_mesh(workdir: Path) -> tuple[ServerProcess, int]:
    port = free_port()
    store = workdir / "mesh-store"
    store.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(
        "mesh-sandbox",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "mesh_sandbox.api:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
        ],
        log=workdir / "mesh-sandbox.log",
        health_url=f"http://127.0.0.1:{port}/health",
        env={
            "STORE_MODE": "file",
            "MAILBOXES_DATA_DIR": str(store),
            "AUTH_MODE": "full",
            "SHARED_KEY": MESH_SHARED_KEY.decode(),
        },
    )
    return server, port


def mesh_items(messages: Sequence[SealedMessage], *, host: str) -> list[WorkItem]:
    """What ``mesh_client.MeshClient.send_message`` sends for a one-chunk message."""
    return [
        WorkItem(
            (
                prepare(
                    "POST",
                    f"/messageexchange/{MESH_SENDER}/outbox",
                    host=host,
                    body=message.ciphertext,
                    headers=[
                        ("Accept", "application/vnd.mesh.v2+json"),
                        ("Content-Type", "application/octet-stream"),
                        ("Mex-Chunk-Range", "1:1"),
                        ("Mex-To", MESH_RECIPIENT),
                        ("Mex-WorkflowID", MESH_WORKFLOW),
                        ("Mex-LocalID", message.message_id),
                        ("Mex-Content-Encrypted", "Y"),
                    ],
                    digest=False,
                ),
            ),
            tag=message,
        )
        for message in messages
    ]


def mesh_client_for(port: int, mailbox: str) -> object:
    from mesh_client import MeshClient

    return MeshClient(
        f"http://127.0.0.1:{port}",
        mailbox,
        MESH_PASSWORD,
        shared_key=MESH_SHARED_KEY,
        max_retries=0,
    )


def mesh_send_one(port: int, data: bytes) -> str:
    """One message through the official client (checks the sandbox and the raw requests
    agree on what MESH is)."""
    from mesh_client import MeshClient

    with MeshClient(
        f"http://127.0.0.1:{port}",
        MESH_SENDER,
        MESH_PASSWORD,
        shared_key=MESH_SHARED_KEY,
        max_retries=0,
    ) as client:
        client.handshake()
        message_id: str = client.send_message(MESH_RECIPIENT, data, workflow_id=MESH_WORKFLOW)
        return message_id


def mesh_inbox_count(port: int) -> int:
    """The recipient's inbox size, through the official client."""
    from mesh_client import MeshClient

    with MeshClient(
        f"http://127.0.0.1:{port}",
        MESH_RECIPIENT,
        MESH_PASSWORD,
        shared_key=MESH_SHARED_KEY,
        max_retries=0,
    ) as client:
        return sum(1 for _ in client.iterate_message_ids())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the trivial aiohttp POST server")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    print(json.dumps({"listening": args.port}), flush=True)
    web.run_app(trivial_app(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
