"""The demo's federation kept on disk and served by a real ``hub serve``, for CLI tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.cli.test_cli import HUB, _wait_for_port, run


@contextmanager
def served_demo(root: Path) -> Iterator[Path]:
    """Keep the demo's federation in ``root`` and run the real 'hub serve' on it."""
    run("demo", "--dir", root, "--keep", check=True)
    config = (root / "hub.toml").read_text()
    port = int(next(line.split("=")[1] for line in config.splitlines() if line.startswith("port")))
    log = (root.parent / "serve.log").open("w")
    server = subprocess.Popen(
        [*HUB, "serve", "--config", str(root / "hub.toml")], stdout=log, stderr=log
    )
    try:
        _wait_for_port(port)
        yield root
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


@pytest.fixture
def kept_demo(tmp_path: Path) -> Iterator[Path]:
    with served_demo(tmp_path / "demo") as root:
        yield root
