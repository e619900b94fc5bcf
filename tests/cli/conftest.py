"""The demo's federation kept on disk and served by a real ``hub serve``, for CLI tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_cli import HUB, _wait_for_port, run


@pytest.fixture
def kept_demo(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "demo"
    run("demo", "--dir", root, "--keep", check=True)
    config = (root / "hub.toml").read_text()
    port = int(next(line.split("=")[1] for line in config.splitlines() if line.startswith("port")))
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(  # the real 'hub serve' on the kept federation
        [*HUB, "serve", "--config", str(root / "hub.toml")], stdout=log, stderr=log
    )
    try:
        _wait_for_port(port)
        yield root
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
