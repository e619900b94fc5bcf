"""hub.toml is read strictly, `hub serve` says plainly when it cannot listen, and the
SQLite database is readable by its owner only."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hub.config import (
    ConfigError,
    Limits,
    database_url_for_path,
    load_hub_config,
)
from hub.store import SqlStore
from tests.conftest import write_hub_toml

HUB = [sys.executable, "-m", "hub.cli.main"]


def _config(tmp_path: Path, extra: str = "", port: int = 8443) -> Path:
    return write_hub_toml(tmp_path, extra, port=port)


def test_the_rendered_config_loads(tmp_path: Path) -> None:
    config = load_hub_config(_config(tmp_path))
    assert config.port == 8443
    assert config.hub_id == "hub.test"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("\n[policy]\nregistri = 'x'\n", "[policy]: registri"),
        ("\n[audit]\nauditor = ['a']\n", "[audit]: auditor"),
        ("\n[limits]\nmessage_body_byte = 10\n", "[limits]: message_body_byte"),
    ],
)
def test_a_misspelt_key_is_refused_with_its_name(tmp_path: Path, extra: str, named: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_hub_config(_config(tmp_path, extra))
    assert f"unknown key(s) in {named}" in str(refused.value)


def test_a_misspelt_key_in_an_existing_section_is_refused(tmp_path: Path) -> None:
    path = _config(tmp_path)
    path.write_text(path.read_text().replace("port = 8443", "prot = 9999"))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) in \[server\]: prot \(known: host"):
        load_hub_config(path)
    path.write_text(path.read_text().replace("prot = 9999", "port = 'x'"))
    with pytest.raises(ConfigError, match=r"server\.port must be int"):
        load_hub_config(path)


def test_hub_serve_on_a_busy_port_says_so_and_exits_2(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        config = _config(tmp_path, port=port)
        keys = [*HUB, "keys", "generate", "--out", str(tmp_path / "hub.key")]
        assert subprocess.run(keys, capture_output=True, check=False).returncode == 0
        done = subprocess.run(
            [*HUB, "serve", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "listening" not in done.stdout
    assert f"cannot listen on 127.0.0.1:{port}: the port is already in use" in done.stderr
    assert "Traceback" not in done.stderr


async def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    store = SqlStore.open(database_url_for_path(path))
    try:
        await store.create_schema()
    finally:
        await store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_an_existing_world_readable_database_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    path.touch()
    os.chmod(path, 0o644)
    store = SqlStore.open(database_url_for_path(path))
    await store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_deploy_example_config_loads_with_every_key_known() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "hub.example.toml"
    config = load_hub_config(example)
    assert config.limits.body_read_seconds == 30.0
    # Every limit is in the example, set to its default ("Defaults shown").
    limits = tomllib.loads(example.read_text())["limits"]
    assert set(limits) == set(Limits.__dataclass_fields__)
    assert config.limits == Limits()


def test_every_limit_is_documented_for_operators() -> None:
    doc = (Path(__file__).resolve().parents[2] / "deploy" / "limits.md").read_text()
    undocumented = [name for name in Limits.__dataclass_fields__ if f"`{name}`" not in doc]
    assert undocumented == []


@pytest.mark.parametrize(
    "name",
    [
        "receive_buffer_bytes",
        "max_unauthenticated_connections",
        "unauthenticated_connection_seconds",
        "per_node_concurrent_requests",
    ],
)
def test_the_admission_limits_load_and_refuse_zero_by_name(tmp_path: Path, name: str) -> None:
    value = "2.5" if name.endswith("_seconds") else "7000"
    config = load_hub_config(_config(tmp_path, f"\n[limits]\n{name} = {value}\n"))
    assert getattr(config.limits, name) == float(value)
    with pytest.raises(ConfigError, match=rf"limits\.{name} must be positive"):
        load_hub_config(_config(tmp_path, f"\n[limits]\n{name} = 0\n"))


def test_a_receive_buffer_too_small_to_be_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"limits\.receive_buffer_bytes must be at least 4096"):
        load_hub_config(_config(tmp_path, "\n[limits]\nreceive_buffer_bytes = 100\n"))
