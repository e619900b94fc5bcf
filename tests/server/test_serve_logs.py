"""`hub serve` as an operator runs it: its log format and level from hub.toml or the
command line, one access line per request, and /metrics on its real socket."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.conftest import write_hub_toml

HUB = [sys.executable, "-m", "hub.cli.main"]


def _config(tmp_path: Path, extra: str) -> Path:
    keys = subprocess.run(
        [*HUB, "keys", "generate", "--out", str(tmp_path / "hub.key")],
        capture_output=True,
        check=False,
    )
    assert keys.returncode == 0, keys.stderr
    return write_hub_toml(tmp_path, extra, port=0)


async def _serve_and_call(config: Path, *flags: str, paths: tuple[str, ...]) -> list[str]:
    """Start `hub serve`, GET each path, stop it with SIGTERM; its stderr lines."""
    process = await asyncio.create_subprocess_exec(
        *HUB,
        "serve",
        "--config",
        str(config),
        *flags,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        listening = (await asyncio.wait_for(process.stdout.readline(), timeout=60)).decode()
        assert "listening on http://127.0.0.1:" in listening, listening
        url = listening.strip().rsplit(" ", 1)[1]
        async with aiohttp.ClientSession() as http:
            for path in paths:
                async with http.get(url + path) as response:
                    await response.read()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    return stderr.decode().splitlines()


async def test_json_from_the_config_and_debug_from_the_command_line(tmp_path: Path) -> None:
    config = _config(tmp_path, '\n[logging]\nformat = "json"\nlevel = "WARNING"\n')
    lines = await _serve_and_call(
        config, "--log-level", "debug", paths=("/v1/health", "/metrics", "/v1/nothing")
    )
    parsed = [json.loads(line) for line in lines]  # every line is JSON
    events = {line["event"] for line in parsed}
    assert "listening" in events
    access = [line for line in parsed if line["logger"] == "hub.access"]
    assert [(line["route"], line["status"], line["level"]) for line in access] == [
        ("/v1/health", 200, "DEBUG"),
        ("/metrics", 200, "DEBUG"),
        ("unmatched", 404, "INFO"),
    ]
    # One access log: the hub's own, not aiohttp's raw-path one as well.
    assert not any(line["logger"] == "aiohttp.access" for line in parsed)


async def test_the_command_line_format_wins_over_the_config(tmp_path: Path) -> None:
    config = _config(tmp_path, '\n[logging]\nformat = "json"\n')
    lines = await _serve_and_call(config, "--log-format", "text", paths=("/v1/nothing",))
    assert lines
    assert not any(line.startswith("{") for line in lines)
    [access] = [line for line in lines if " hub.access: " in line]
    assert " INFO hub.access: GET unmatched 404 " in access
    assert access[:20].endswith("Z")  # 2026-05-01T09:30:12Z: UTC
