"""Servers under test as subprocesses on loopback, and what /proc says about them.

Linux only: CPU time and peak memory are read from ``/proc/PID/stat`` and
``/proc/PID/status`` for a server and every process below it (``hub serve --workers N``
forks), so what is reported is the server's own cost, whatever the load generator spends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["ServerProcess", "free_port", "wait_http"]

_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_http(
    url: str, *, seconds: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until ``url`` answers 2xx; fail early if ``process`` exits first."""
    deadline = time.monotonic() + seconds
    last = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"the server exited with status {process.returncode} before {url} answered"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback http
                if 200 <= answer.status < 300:
                    return
                last = f"HTTP {answer.status}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s ({last})")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; fields follow the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _tree(pid: int) -> list[int]:
    pids, frontier = [pid], [pid]
    while frontier:
        frontier = [child for parent in frontier for child in _children(parent)]
        pids += frontier
    return pids


def _cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2 :].split()
    # Fields 14 and 15 of proc(5) (utime, stime), counted from the state field as 3.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _status_kib(pid: int, name: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


class ServerProcess:
    """A server command run on loopback until closed, with its log kept in a file."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        log: Path,
        health_url: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        start_seconds: float = 60.0,
    ) -> None:
        self.name = name
        self.log = log
        self._handle = log.open("ab")
        self.process = subprocess.Popen(
            list(command),
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
        try:
            wait_http(health_url, seconds=start_seconds, process=self.process)
        except BaseException:
            self.close()
            raise RuntimeError(f"{name} did not start; its log ends:\n{self.log_tail()}") from None

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """CPU time of the server and every live process below it."""
        return sum(_cpu_seconds(pid) for pid in _tree(self.pid))

    def peak_rss_bytes(self) -> int:
        """The largest peak resident set (VmHWM) of any process of the server."""
        return max(_status_kib(pid, "VmHWM") for pid in _tree(self.pid)) * 1024

    def rss_bytes(self) -> int:
        return max(_status_kib(pid, "VmRSS") for pid in _tree(self.pid)) * 1024

    def reset_peak_rss(self) -> bool:
        """Make VmHWM start again from the current RSS (Linux: 5 > clear_refs)."""
        try:
            for pid in _tree(self.pid):
                Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._handle.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
