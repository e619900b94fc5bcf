"""A real ``hub serve`` subprocess with the fixed-seed INSECURE test nodes enrolled.

For tests that need the hub as an operator runs it (its own process, its own event loop,
its own listening socket): the live schemathesis runs and the memory-bound test. The
hub's key and the nodes' keys are the test keys of tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import time
from typing import IO

from hub.crypto import write_key_file
from hub.crypto.httpsig import content_digest_header, sign_request
from hub.store import SqlStore, database_url_for_path
from hub.store.migrate import prepare_database
from tests.conftest import INSECURE_TEST_HUB_KEYS, INSECURE_TEST_NODE_KEYS, enrol_test_nodes

__all__ = ["LiveHub", "live_hub", "rss_bytes", "signed_headers"]

_LISTENING = re.compile(r"listening on (http://\S+)")


@dataclass(frozen=True)
class LiveHub:
    url: str
    pid: int
    root: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


async def _enrol(database_url: str) -> None:
    await prepare_database(database_url)  # migrated, as hub serve expects it
    store = SqlStore.open(database_url)
    try:
        await enrol_test_nodes(store, now=datetime.now(UTC))
    finally:
        await store.close()


def _config(root: Path, limits: dict[str, int | float]) -> str:
    lines = [
        '[hub]\nid = "hub.test"\n',
        '[server]\nhost = "127.0.0.1"\nport = 0\n',
        '[storage]\ndatabase = "hub.sqlite3"\nblob_dir = "blobs"\n',
        '[keys]\nsigning_key = "hub.key"\n',
        "[limits]",
        *(f"{name} = {value!r}" for name, value in limits.items()),
    ]
    return "\n".join(lines) + "\n"


@contextmanager
def live_hub(root: Path, **limits: int | float) -> Iterator[LiveHub]:
    """Run ``hub serve`` on a free port in ``root`` with ``limits``; stop it afterwards."""
    root.mkdir(parents=True, exist_ok=True)
    write_key_file(root / "hub.key", INSECURE_TEST_HUB_KEYS)
    # In a thread of its own: callers may be inside a running event loop (async tests).
    url = database_url_for_path(root / "hub.sqlite3")
    with ThreadPoolExecutor(max_workers=1) as enrolling:
        enrolling.submit(asyncio.run, _enrol(url)).result()
    (root / "hub.toml").write_text(_config(root, limits), encoding="utf-8")
    log_path = root / "serve.log"
    with log_path.open("w", encoding="utf-8") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "hub.cli.main", "serve", "--config", str(root / "hub.toml")],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert server.stdout is not None
            url = _wait_for_listening(server, server.stdout, log_path)
            yield LiveHub(url=url, pid=server.pid, root=root, log_path=log_path)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=20)
            if server.stdout is not None:
                server.stdout.close()


def _wait_for_listening(server: subprocess.Popen[str], out: IO[str], log_path: Path) -> str:
    line = out.readline()  # hub serve prints this one line once its socket is bound
    match = _LISTENING.search(line)
    if match is None:
        server.wait(timeout=20)
        raise AssertionError(f"hub serve did not start: {line!r}\n{log_path.read_text()}")
    return match.group(1)


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of process ``pid`` from /proc/PID/status (VmRSS, VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise AssertionError(f"/proc/{pid}/status has no {field}")


def signed_headers(
    method: str, path: str, *, node: str, query: str = "", body: bytes = b""
) -> dict[str, str]:
    """RFC 9421 headers for a request to a live hub (its clock is the real one)."""
    return sign_request(
        method=method,
        path=path,
        query=query,
        body_digest_header=content_digest_header(body),
        key=INSECURE_TEST_NODE_KEYS[node].signing,
        keyid=node,
        created=int(time()),
        nonce=secrets.token_urlsafe(18),
    )
