"""``hub serve --workers N``: N hub processes on one port (PostgreSQL only), supervised.

The parent reserves the port (binds it with SO_REUSEPORT but does not listen, so a busy
port is still one clear error), then forks N workers. Each worker listens on that port
with a socket of its own (SO_REUSEPORT) and runs the whole hub with its own event loop and
its own database pool; the kernel spreads new connections over the workers' sockets. (One
shared listening socket would not: asyncio accepts every waiting connection at once, so
the first worker to wake would take a whole burst.) A worker is a fork, not a fresh
interpreter, so it inherits the loaded configuration, hub key and policy registry; at the
fork no event loop, thread or database connection exists yet.

The parent only supervises. A worker that dies is replaced, unless it died within
:data:`STARTUP_SECONDS` of starting: a worker that cannot start (its blob folder cannot be
made, say) would fail the same way again, so the parent stops the others and exits 1. (The
database is opened, and an empty one migrated, by the parent before it forks.) On SIGTERM or
SIGINT the parent passes SIGTERM on to every worker, each finishes the requests it holds
(aiohttp's graceful shutdown), and after :data:`STOP_SECONDS` any left are killed. A worker
whose parent has gone (killed with SIGKILL, say) stops by itself within a second.

SQLite is refused by the caller: it allows one writer at a time, so more processes on one
file queue for its lock and add no throughput (see deploy/workers.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from hub.cli.common import CommandError

__all__ = [
    "STARTUP_SECONDS",
    "STOP_SECONDS",
    "listen_on_shared_port",
    "refuse_workers_on_sqlite",
    "reserve_shared_port",
    "serve_workers",
    "stop_when_orphaned",
    "worker_count",
]

STARTUP_SECONDS = 5.0
STOP_SECONDS = 30.0
_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}


def worker_count(text: str) -> int:
    """``--workers``: a whole number from 1 up."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {count}")
    return count


def refuse_workers_on_sqlite(database_url: str, count: int) -> None:
    """Several workers need PostgreSQL; say why, in one line, and what to do instead."""
    if database_url.startswith("postgresql"):
        return
    raise CommandError(
        f"--workers {count} needs PostgreSQL: SQLite lets one process write at a time, so "
        "more hub processes on one database file only wait for its lock. Run one worker on "
        'SQLite, or set [storage] url = "postgresql+asyncpg://..." (see deploy/workers.md)'
    )


def _port_socket(family: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


def reserve_shared_port(family: int, host: str, port: int) -> socket.socket:
    """The parent's hold on the workers' port: bound (port 0 picks one), never listening."""
    sock = _port_socket(family)
    try:
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def listen_on_shared_port(
    reserved: socket.socket, *, prepare: Callable[[socket.socket], None]
) -> socket.socket:
    """A worker's own listening socket on the port the parent reserved; ``prepare`` sets
    its options before it listens (so the first connection already has them)."""
    sock = _port_socket(reserved.family)
    sock.bind(reserved.getsockname())
    prepare(sock)
    sock.listen(1024)
    return sock


def _say(text: str) -> None:
    print(f"hub: {text}", file=sys.stderr, flush=True)


def stop_when_orphaned(app: web.Application, parent: int) -> None:
    """Make the worker running ``app`` stop (gracefully) once ``parent`` is gone."""

    async def watch(_app: web.Application) -> AsyncIterator[None]:
        async def poll() -> None:
            # Nothing signals a process when its parent dies (short of Linux's prctl), so
            # it looks once a second.
            while os.getppid() == parent:  # noqa: ASYNC110
                await asyncio.sleep(1.0)
            # The same path as a SIGTERM from the parent: aiohttp's graceful exit.
            os.kill(os.getpid(), signal.SIGTERM)

        task = asyncio.create_task(poll())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(watch)


def _start(number: int, run_worker: Callable[[], int]) -> int:
    pid = os.fork()
    if pid != 0:
        return pid
    # The worker: default signal handling (aiohttp installs its own), then serve.
    code = 1
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        code = run_worker()
    except KeyboardInterrupt:
        code = 0
    except BaseException as exc:  # a worker never returns into the parent's code
        _say(f"worker {number} failed: {exc}")
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _exit_code(status: int) -> int:
    return os.waitstatus_to_exitcode(status)


def serve_workers(count: int, run_worker: Callable[[], int]) -> int:
    """Run ``count`` forks of ``run_worker`` and supervise them; the exit code for ``hub``."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    workers: dict[int, tuple[int, float]] = {}  # pid: (worker number, started at)
    for number in range(1, count + 1):
        workers[_start(number, run_worker)] = (number, time.monotonic())
    stopping = False
    code = 0
    deadline = float("inf")
    while workers:
        timeout = max(0.0, min(1.0, deadline - time.monotonic()))
        received = signal.sigtimedwait(_SIGNALS, timeout)
        if received is not None and received.si_signo != signal.SIGCHLD and not stopping:
            _say(f"stopping {len(workers)} worker(s) ({signal.Signals(received.si_signo).name})")
            stopping, deadline = True, time.monotonic() + STOP_SECONDS
            _signal_all(workers, signal.SIGTERM)
        if stopping and time.monotonic() >= deadline:
            _say(f"{len(workers)} worker(s) did not stop within {STOP_SECONDS:.0f} s; killing")
            _signal_all(workers, signal.SIGKILL)
            deadline = float("inf")
        for pid, status in _reaped():
            number, started = workers.pop(pid)
            if stopping:
                continue
            exit_code = _exit_code(status)
            if time.monotonic() - started < STARTUP_SECONDS:
                _say(
                    f"worker {number} (pid {pid}) exited with {exit_code} while starting; "
                    "stopping the others (its error is above)"
                )
                stopping, deadline, code = True, time.monotonic() + STOP_SECONDS, 1
                _signal_all(workers, signal.SIGTERM)
                continue
            _say(f"worker {number} (pid {pid}) exited with {exit_code}; starting a new one")
            workers[_start(number, run_worker)] = (number, time.monotonic())
    return code


def _signal_all(workers: dict[int, tuple[int, float]], signum: signal.Signals) -> None:
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _reaped() -> list[tuple[int, int]]:
    """Every child that has exited since the last call, with its wait status."""
    done: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done.append((pid, status))
