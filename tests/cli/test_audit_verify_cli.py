"""``hub audit verify`` on a log of many pages: worker processes, --workers, the answer."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import hub.audit.verify as verify_module
from hub.audit.log import AuditLog
from hub.cli.audit import verify_hub_log
from hub.config import load_hub_config
from hub.crypto import read_key_file
from hub.store import SqlStore
from tests.audit.logbuild import write_log
from tests.cli.test_cli import run


@pytest.mark.parametrize(
    ("value", "message"),
    [("-1", "--workers must be from 0 to 64, got -1"), ("two", "--workers must be a whole number")],
)
def test_workers_must_be_a_small_whole_number(tmp_path: Path, value: str, message: str) -> None:
    result = run("audit", "verify", "--config", tmp_path / "hub.toml", "--workers", value)
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.slow
def test_verify_with_and_without_workers_names_the_same_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "demo"
    run("demo", "--dir", root, "--keep", check=True)
    signer = AuditLog(hub_keys=read_key_file(root / "keys" / "hub.key"))
    config = load_hub_config(root / "hub.toml")

    async def grow() -> None:
        store = SqlStore.open(config.database_url)
        try:
            await write_log(store, 40_000, batch=256, log=signer)
        finally:
            await store.close()

    asyncio.run(grow())
    with sqlite3.connect(root / "hub.sqlite3") as db:
        (entry,) = db.execute("SELECT entry_json FROM audit_log WHERE idx = 35000").fetchone()
        db.execute(
            "UPDATE audit_log SET entry_json = ? WHERE idx = 35000",
            (entry.replace('"referral"', '"note"'),),
        )
    # The command, as an operator runs it (one process: the log is under 32 pages).
    bad = run("audit", "verify", "--json", "--config", root / "hub.toml")
    assert bad.returncode == 3, bad.stdout + bad.stderr
    answer = json.loads(bad.stdout)
    assert answer["first_bad_entry"] == 35000
    assert answer["problem"] == "entry 35000 was changed: its leaf hash does not match"

    # The same log through the command's code with worker processes for every page.
    pools: list[int] = []

    class CountedPool(verify_module.ProcessPoolExecutor):
        def __init__(self, workers: int, **options: Any) -> None:
            pools.append(workers)
            super().__init__(workers, **options)

    monkeypatch.setattr(verify_module, "_PROCESSES_FROM_PAGES", 1)
    monkeypatch.setattr(verify_module, "ProcessPoolExecutor", CountedPool)
    public = read_key_file(root / "keys" / "hub.key").public.signing
    result = asyncio.run(verify_hub_log(config, public, workers=1))
    assert pools == [1]
    assert (result.first_bad_index, result.problem) == (
        answer["first_bad_entry"],
        answer["problem"],
    )
