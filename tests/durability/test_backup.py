"""The backups deploy/workers.md describes, taken while the hub is busy, restore and verify."""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from hub.cli.main import build_parser
from tests.durability.live import (
    HubFolder,
    burst,
    make_hub_folder,
    make_submissions,
    own_postgres_database,
    serving,
    write_hub_files,
)
from tests.store.conftest import postgres_url_or_skip

pytestmark = pytest.mark.slow
DOC = Path(__file__).resolve().parents[2] / "deploy" / "workers.md"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"the {name} command is not installed")
    return found


def _run(*words: str) -> None:
    done = subprocess.run(words, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


async def _backup_during_a_burst(folder: HubFolder, backup: object, messages: int = 200) -> None:
    """Send ``messages``, and take the backup while they arrive."""
    with serving(folder) as hub:
        sending = asyncio.create_task(burst([hub.url], make_submissions(messages), concurrency=16))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(backup)  # type: ignore[arg-type]
        answers = await sending
    assert Counter(a.status for a in answers) == {201: messages}


def _restored_entries(folder: HubFolder, *, serve: bool = True) -> int:
    """The restored hub verifies and (``serve``) accepts new messages and still verifies."""
    before = int(folder.verify_log()["entries"])
    if serve:
        with serving(folder, name="restored") as hub:
            answers = asyncio.run(burst([hub.url], make_submissions(20), concurrency=4))
        assert Counter(a.status for a in answers) == {201: 20}
        assert folder.verify_log()["entries"] == before + 20
    return before


async def test_sqlite_backups_taken_while_the_hub_is_busy_restore_and_verify(
    tmp_path: Path,
) -> None:
    sqlite3 = _tool("sqlite3")
    folder = await make_hub_folder(tmp_path / "hub")
    database = folder.root / "hub.sqlite3"
    backups = tmp_path / "backups"
    backups.mkdir()
    commands = {"vacuum": "VACUUM INTO '{backup}'", "online": ".backup '{backup}'"}

    def take() -> None:
        for name, command in commands.items():
            _run(sqlite3, str(database), command.format(backup=backups / f"{name}.sqlite3"))

    await _backup_during_a_burst(folder, take)
    for name in commands:
        # Restored as the page says: the backup in place of the database, no stale journal.
        restored = write_hub_files(tmp_path / f"restored-{name}", None)
        for stale in ("hub.sqlite3-wal", "hub.sqlite3-shm"):
            (restored.root / stale).unlink(missing_ok=True)
        shutil.copy(backups / f"{name}.sqlite3", restored.root / "hub.sqlite3")
        entries = await asyncio.to_thread(_restored_entries, restored, serve=name == "vacuum")
        # A snapshot from the middle of the burst: the enrolments and some messages.
        assert 4 < entries <= 204


async def test_a_pg_dump_taken_while_the_hub_is_busy_restores_and_verifies(
    tmp_path: Path,
) -> None:
    pg_dump, pg_restore = _tool("pg_dump"), _tool("pg_restore")
    url = postgres_url_or_skip()
    dump = tmp_path / "seh.dump"
    async with own_postgres_database(url) as live_url, own_postgres_database(url) as copy_url:
        folder = await make_hub_folder(tmp_path / "hub", database_url=live_url)

        def take() -> None:
            _run(pg_dump, "--format=custom", f"--file={dump}", _libpq(live_url))

        await _backup_during_a_burst(folder, take)
        _run(pg_restore, f"--dbname={_libpq(copy_url)}", "--no-owner", str(dump))
        restored = write_hub_files(tmp_path / "restored", copy_url)
        entries = await asyncio.to_thread(_restored_entries, restored)
    assert 4 < entries <= 204


def _libpq(url: str) -> str:
    """The SQLAlchemy URL as the PostgreSQL command-line tools take it."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def test_every_hub_command_on_the_page_parses() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    commands = [
        shlex.split(line)
        for block in blocks
        for line in block.splitlines()
        if "bin/hub " in line and not line.lstrip().startswith("#")
    ]
    assert len(commands) >= 3
    for words in commands:
        assert words[0] == "/opt/seh-hub/venv/bin/hub"
        build_parser().parse_args(words[1:])
