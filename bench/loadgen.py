"""A load generator that measures the server, not itself.

Everything a request needs is built before the clock starts: the sealed and signed
envelopes, their bodies, the ``Content-Digest`` of each body, the request line and the
fixed header lines, and the lines of each RFC 9421 signature base up to
``@signature-params``. While the clock runs, a request costs one fresh RFC 9421 signature
(a new ``created`` and ``nonce`` are part of what is signed, so it cannot be made earlier:
the hub refuses a replayed nonce), one ``write`` and the parse of one answer.

The client is raw HTTP/1.1 over asyncio streams (uvloop when installed), one keep-alive
connection per concurrent worker, one request in flight on each: no aiohttp client, no
per-request header dictionaries. What it costs is measured, not assumed: ``Run`` carries
the generator's own CPU time over the run (``time.process_time``), so against the trivial
server (whose work is next to nothing) the CPU per message is the generator's ceiling.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.crypto import SigningKey
from hub.crypto.httpsig import REQUIRED_COMPONENTS, SIGNATURE_LABEL, content_digest_header

__all__ = [
    "Authenticator",
    "Lane",
    "MeshToken",
    "PreparedRequest",
    "RequestSigner",
    "Run",
    "WorkItem",
    "percentile",
    "prepare",
    "run_load",
    "run_loop",
]

# The covered components, serialised once (RFC 9421 section 2.3); the hub requires these.
_COVERED = ("(" + " ".join(f'"{name}"' for name in REQUIRED_COMPONENTS) + ")").encode()


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """One request, ready to go but for its authentication header lines.

    ``head`` is the request line and fixed header lines (each ending CRLF, without the
    blank line); ``base_prefix`` the RFC 9421 signature base lines before
    ``"@signature-params": `` (empty when the target does not use RFC 9421).
    """

    head: bytes
    body: bytes
    base_prefix: bytes


@dataclass(frozen=True, slots=True)
class WorkItem:
    """What one measured operation sends, in order, on one connection (a submit is one
    request; a fetch and its acknowledgement are two). ``tag`` comes back with the result."""

    requests: tuple[PreparedRequest, ...]
    tag: Any = None


def prepare(
    method: str,
    path: str,
    *,
    host: str,
    query: str = "",
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
    digest: bool = True,
) -> PreparedRequest:
    """Build everything about a request that does not change between sends."""
    target = path + (f"?{query}" if query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    base_prefix = b""
    if digest:
        digest_value = content_digest_header(body)
        lines.append(f"Content-Digest: {digest_value}")
        # RFC 9421 section 2.5: one line per covered component, in the order covered.
        base_prefix = (
            f'"@method": {method}\n"@path": {path}\n"@query": ?{query}\n'
            f'"content-digest": {digest_value}\n"@signature-params": '
        ).encode("ascii")
    head = ("\r\n".join(lines) + "\r\n").encode("ascii")
    return PreparedRequest(head=head, body=body, base_prefix=base_prefix)


Authenticator = Callable[[PreparedRequest], bytes]


class RequestSigner:
    """A fresh RFC 9421 signature per request, as cheap as it can be.

    The same fields and the same bytes as :func:`hub.crypto.httpsig.sign_request` (a test
    checks that the hub's verifier accepts them and that they equal its output), with the
    parameter text cached per second and a nonce that is a random per-run prefix and a
    counter: unique without asking the OS for randomness each time.
    """

    __slots__ = ("_count", "_created", "_key", "_keyid", "_params_head", "_prefix")

    def __init__(self, key: SigningKey, keyid: str) -> None:
        self._key = key
        self._keyid = keyid.encode("ascii")
        self._prefix = secrets.token_hex(6).encode("ascii")
        self._count = 0
        self._created = -1
        self._params_head = b""

    def __call__(self, request: PreparedRequest) -> bytes:
        now = int(time.time())
        if now != self._created:
            self._created = now
            self._params_head = (
                _COVERED
                + b";created="
                + str(now).encode()
                + b';keyid="'
                + self._keyid
                + b'";alg="ed25519";nonce="'
            )
        self._count += 1
        params = self._params_head + self._prefix + b"%x" % self._count + b'"'
        signature = base64.b64encode(self._key.sign_detached(request.base_prefix + params))
        label = SIGNATURE_LABEL.encode()
        return (
            b"Signature-Input: "
            + label
            + b"="
            + params
            + b"\r\nSignature: "
            + label
            + b"=:"
            + signature
            + b":\r\n"
        )


class MeshToken:
    """MESH's own per-request authentication: the ``NHSMESH`` HMAC token from the
    official client (``mesh_client.AuthTokenGenerator``), a fresh nonce count each time."""

    __slots__ = ("_generate",)

    def __init__(self, shared_key: bytes, mailbox: str, password: str) -> None:
        from mesh_client import AuthTokenGenerator

        self._generate = AuthTokenGenerator(shared_key, mailbox, password)

    def __call__(self, request: PreparedRequest) -> bytes:
        token: str = self._generate()
        return b"Authorization: " + token.encode("ascii") + b"\r\n"


@dataclass(slots=True)
class Run:
    """What one load run measured. Latencies are per work item, in seconds."""

    concurrency: int
    started: float = 0.0
    elapsed: float = 0.0
    cpu_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    # (tag, status, body) of the last request of every item, when asked to keep them.
    answers: list[tuple[Any, int, bytes]] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def ok(self) -> int:
        return self.completed - self.errors

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    def record_error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text[:300])


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted ``values`` (fraction 0.5 is the median)."""
    if not values:
        return float("nan")
    rank = max(1, min(len(values), int(fraction * len(values) + 0.999999)))
    return values[rank - 1]


class _Closed(Exception):
    """The server closed the connection (or said it would) after this answer."""


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 response: its status, its body and whether the connection stays."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    keep = b"\r\nconnection: close" not in lower
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lower.index(b"\r\n", at + 2)
        body = await reader.readexactly(int(lower[at + 17 : end]))
    elif b"\r\ntransfer-encoding: chunked" in lower:
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(part[:-2] for part in parts)
    else:
        body = b""
    return status, body, keep


Lane = tuple[Iterable[WorkItem], Callable[[], Authenticator]]


async def run_load(
    host: str,
    port: int,
    items: Iterable[WorkItem] = (),
    *,
    concurrency: int,
    authenticator: Callable[[], Authenticator] | None = None,
    lanes: Sequence[Lane] = (),
    seconds: float | None = None,
    keep_answers: bool = False,
    ok_statuses: frozenset[int] = frozenset({200, 201, 202}),
    ports: Sequence[int] | None = None,
    stall_seconds: float = 300.0,
) -> Run:
    """Send ``items`` over ``concurrency`` keep-alive connections until they run out or
    ``seconds`` pass; one ``authenticator()`` per connection. With ``lanes`` (items and
    authenticator each: several nodes, say, each signing its own), connection *i* takes
    lane *i* modulo their number. With ``ports``, the connections are spread over those
    ports in turn (two server processes, say). A server that has not answered everything
    ``stall_seconds`` after that is a failure, not a hang (:class:`TimeoutError`)."""
    run = Run(concurrency=concurrency)
    if not lanes:
        if authenticator is None:
            raise TypeError("run_load needs an authenticator, or lanes")
        lanes = [(items, authenticator)]
    sources: list[tuple[Iterator[WorkItem], Callable[[], Authenticator]]] = [
        (iter(lane_items), lane_auth) for lane_items, lane_auth in lanes
    ]
    targets = list(ports) if ports else [port]

    async def connect(index: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(host, targets[index % len(targets)])

    connections = [await connect(i) for i in range(concurrency)]
    deadline = float("inf")

    def lanes_of(index: int) -> list[tuple[Iterator[WorkItem], Callable[[], Authenticator]]]:
        # More connections than lanes: they share lanes in turn. Fewer: each takes its own
        # lanes one after another, so nothing is left unsent.
        if len(sources) <= concurrency:
            return [sources[index % len(sources)]]
        return sources[index::concurrency]

    async def worker(index: int) -> None:
        reader, writer = connections[index]
        latencies, statuses = run.latencies, run.statuses
        clock = time.perf_counter
        for source, make_auth in lanes_of(index):
            auth = make_auth()
            for item in source:
                if clock() > deadline:
                    return
                started = clock()
                status, body, failed = 0, b"", None
                for request in item.requests:
                    try:
                        writer.write(request.head + auth(request) + b"\r\n" + request.body)
                        status, body, keep = await _read_answer(reader)
                    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                        failed = f"{type(exc).__name__}: {exc}"
                        keep = False
                    if not keep:
                        writer.close()
                        reader, writer = connections[index] = await connect(index)
                    if failed is not None:
                        break
                    if status not in ok_statuses:
                        failed = f"HTTP {status}: {body[:200]!r}"
                        break
                latencies.append(clock() - started)
                statuses[status] = statuses.get(status, 0) + 1
                if failed is not None:
                    run.record_error(failed)
                if keep_answers:
                    run.answers.append((item.tag, status, body))

    cpu_started = time.process_time()
    run.started = time.perf_counter()
    if seconds is not None:
        deadline = run.started + seconds
    try:
        async with asyncio.timeout((seconds or 0.0) + stall_seconds):
            await asyncio.gather(*(worker(i) for i in range(concurrency)))
    finally:
        for _, writer in connections:
            writer.close()
    run.elapsed = time.perf_counter() - run.started
    run.cpu_seconds = time.process_time() - cpu_started
    run.latencies.sort()
    return run


def run_loop(main: Coroutine[Any, Any, Any]) -> Any:
    """Run ``main`` on uvloop when it is installed, else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def loop_name() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"uvloop {version('uvloop')}"
    except PackageNotFoundError:
        return "asyncio"


def cpu_count() -> int:
    return os.cpu_count() or 1
