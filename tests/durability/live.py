"""Real ``hub serve`` processes on a shared database, and bursts of signed submits to them.

The hub here is the installed command, not an in-process app: these tests are about what
processes, sockets, locks and fsyncs do, which an in-process TestServer cannot show. The
hub and node keys are the fixed-seed INSECURE test keys of tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text

from hub.audit.log import AuditLog
from hub.config import render_hub_config, toml_string
from hub.crypto import write_key_file
from hub.store import SqlStore
from hub.store.dialect import open_engine
from hub.store.migrate import prepare_database
from tests.conftest import INSECURE_TEST_HUB_KEYS, enrol_test_nodes
from tests.server.helpers import (
    HEALTH,
    LA,
    POLICE,
    envelope_body,
    signed_envelope,
    signed_request,
)

HUB = [sys.executable, "-m", "hub.cli.main"]
_LISTENING = re.compile(r"listening on http://([^:]+):(\d+)")


class WallClock:
    """The real clock: a separate hub process checks signatures against its own time."""

    def __call__(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class LiveHub:
    """Stands in for tests.conftest.HubFixture in the request helpers (url and clock)."""

    url: str
    clock: WallClock = field(default_factory=WallClock)


@dataclass
class HubFolder:
    """A hub's config, key and database, with the test nodes enrolled."""

    root: Path
    config: Path
    database_url: str

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*HUB, *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def verify_log(self) -> dict[str, Any]:
        done = self.run("audit", "verify", "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        assert result["ok"] is True, result
        return result


def write_hub_files(root: Path, database_url: str | None) -> HubFolder:
    root.mkdir(parents=True, exist_ok=True)
    write_key_file(root / "hub.key", INSECURE_TEST_HUB_KEYS, passphrase=None)
    config = render_hub_config(
        hub_id="hub.test",
        database="hub.sqlite3",
        blob_dir="blobs",
        signing_key="hub.key",
        host="127.0.0.1",
        port=0,
    )
    if database_url is not None:
        config = config.replace('database = "hub.sqlite3"', f"url = {toml_string(database_url)}")
    else:
        database_url = f"sqlite+aiosqlite:///{(root / 'hub.sqlite3').resolve()}"
    path = root / "hub.toml"
    path.write_text(config)
    return HubFolder(root=root, config=path, database_url=database_url)


async def make_hub_folder(root: Path, *, database_url: str | None = None) -> HubFolder:
    """Write hub.toml (SQLite in ``root`` unless ``database_url``), the key, and enrol."""
    folder = write_hub_files(root, database_url)
    database_url = folder.database_url
    # As hub serve would: an empty database is migrated to the code's head revision.
    await prepare_database(database_url)
    store = SqlStore.open(database_url)
    try:
        await enrol_test_nodes(
            store, now=datetime.now(UTC), audit=AuditLog(hub_keys=INSECURE_TEST_HUB_KEYS)
        )
    finally:
        await store.close()
    return folder


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_serve(folder: HubFolder, *extra: str, name: str = "serve") -> ServeProcess:
    """Start ``hub serve`` and wait until it answers /v1/health."""
    log = folder.root / f"{name}.log"
    sink = log.open("wb")
    process = subprocess.Popen(
        [*HUB, "serve", "--config", str(folder.config), *extra],
        stdout=sink,
        stderr=subprocess.STDOUT,
        # Its own process group: a SIGINT to the test run does not reach it first.
        start_new_session=True,
    )
    sink.close()
    deadline = time.monotonic() + 60
    url = None
    while url is None:
        found = _LISTENING.search(log.read_text(errors="replace"))
        if found is not None:
            url = f"http://{found.group(1)}:{found.group(2)}"
        elif process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"hub serve did not start:\n{log.read_text(errors='replace')}")
        else:
            time.sleep(0.05)
    served = ServeProcess(process=process, url=url, log=log)
    _wait_healthy(served)
    return served


def _wait_healthy(served: ServeProcess) -> None:
    host, port = served.url.removeprefix("http://").split(":")
    deadline = time.monotonic() + 60
    while True:
        with suppress(OSError):
            connection = http.client.HTTPConnection(host, int(port), timeout=5)
            try:
                connection.request("GET", "/v1/health")
                if connection.getresponse().status == 200:
                    return
            finally:
                connection.close()
        if served.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"hub serve is not healthy:\n{served.output()}")
        time.sleep(0.05)


def stop_serve(served: ServeProcess, *, timeout: float = 30) -> int:
    if served.process.poll() is None:
        served.process.send_signal(signal.SIGTERM)
    try:
        return served.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait()
        raise


@contextmanager
def serving(folder: HubFolder, *extra: str, name: str = "serve") -> Iterator[ServeProcess]:
    served = start_serve(folder, *extra, name=name)
    try:
        yield served
    finally:
        if served.process.poll() is None:
            stop_serve(served)


# -- bursts of submits ------------------------------------------------------------------

# Each sender and whom it writes to: every enrolled agency sends, so the batches mix
# senders, recipients and nonces as a real morning's traffic would.
ROUTES: tuple[tuple[str, list[str]], ...] = (
    (HEALTH, [LA, POLICE]),
    (POLICE, [LA]),
    (LA, [POLICE]),
)


@dataclass(frozen=True)
class Submission:
    sender: str
    message_id: str
    body: bytes


@dataclass
class Answer:
    submission: Submission
    status: int | None  # None: no answer (connection refused, reset, or timed out)
    body: bytes = b""
    error: str = ""
    seconds: float = 0.0

    def receipt(self) -> dict[str, Any]:
        assert self.status in (200, 201), (self.status, self.body[:300])
        receipt: dict[str, Any] = json.loads(self.body)
        return receipt


def make_submissions(count: int) -> list[Submission]:
    """``count`` signed envelopes, cycling through :data:`ROUTES`."""
    clock = LiveHub(url="")
    made = []
    for n in range(count):
        sender, recipients = ROUTES[n % len(ROUTES)]
        envelope = signed_envelope(clock, sender=sender, recipients=recipients)
        made.append(Submission(sender, envelope["id"], envelope_body(envelope)))
    return made


async def post_submission(
    session: aiohttp.ClientSession, url: str, submission: Submission, *, seconds: float = 30
) -> Answer:
    request = signed_request(
        LiveHub(url=url), "POST", "/v1/messages", node=submission.sender, body=submission.body
    )
    started = time.perf_counter()
    try:
        async with session.post(
            url + request.path,
            data=request.body,
            headers=dict(request.headers),
            timeout=aiohttp.ClientTimeout(total=seconds),
        ) as response:
            body = await response.read()
            return Answer(submission, response.status, body, seconds=time.perf_counter() - started)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return Answer(
            submission,
            None,
            error=f"{type(exc).__name__}: {exc}",
            seconds=time.perf_counter() - started,
        )


async def burst(
    urls: Sequence[str],
    submissions: Sequence[Submission],
    *,
    concurrency: int,
    on_answer: Any = None,
) -> list[Answer]:
    """Send every submission once, ``concurrency`` at a time, spread over ``urls``."""
    queue: asyncio.Queue[tuple[int, Submission]] = asyncio.Queue()
    for n, submission in enumerate(submissions):
        queue.put_nowait((n, submission))
    answers: list[Answer | None] = [None] * len(submissions)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while not queue.empty():
                n, submission = queue.get_nowait()
                answer = await post_submission(session, urls[n % len(urls)], submission)
                answers[n] = answer
                if on_answer is not None:
                    on_answer(answer)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def assert_unique_receipts(answers: Sequence[Answer]) -> list[dict[str, Any]]:
    """Every answer is a receipt for its own message, and no two share a log index."""
    receipts = [a.receipt() for a in answers]
    for answer, receipt in zip(answers, receipts, strict=True):
        assert receipt["message_id"] == answer.submission.message_id
    indexes = [r["log"]["index"] for r in receipts]
    assert len(set(indexes)) == len(indexes), "two receipts name the same log entry"
    return receipts


# -- a PostgreSQL database of the test's own ---------------------------------------------


async def admin_statement(url: str, statement: str) -> None:
    """Run one statement outside any transaction (CREATE DATABASE cannot run in one)."""
    engine, _ = open_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@asynccontextmanager
async def own_postgres_database(url: str) -> AsyncIterator[str]:
    """A freshly created database beside the one ``url`` names, dropped afterwards."""
    name = f"hub_durable_{uuid.uuid4().hex[:12]}"
    await admin_statement(url, f'CREATE DATABASE "{name}"')
    try:
        base, _, _ = url.rpartition("/")
        yield f"{base}/{name}"
    finally:
        await admin_statement(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def children_of(pid: int) -> set[int]:
    """The live child processes of ``pid`` (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after it.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found
