"""``hub serve --workers N``: N processes on one port, on PostgreSQL, supervised.

The PostgreSQL tests create a database of their own (beside HUB_TEST_POSTGRES_URL's) and
drop it afterwards; without that variable they are skipped with the reason shown.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.cli.audit import verify_hub_log
from hub.config import load_hub_config
from tests.conftest import INSECURE_TEST_HUB_KEYS
from tests.durability.live import (
    HubFolder,
    assert_unique_receipts,
    burst,
    children_of,
    make_hub_folder,
    make_submissions,
    own_postgres_database,
    serving,
    stop_serve,
    write_hub_files,
)
from tests.store.conftest import postgres_url_or_skip

pytestmark = pytest.mark.slow


@pytest.fixture
async def postgres_folder(tmp_path: Path) -> AsyncIterator[HubFolder]:
    async with own_postgres_database(postgres_url_or_skip()) as url:
        yield await make_hub_folder(tmp_path / "hub", database_url=url)


def _cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_for(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


async def test_two_workers_on_postgresql_answer_every_submit_and_the_log_verifies(
    postgres_folder: HubFolder,
) -> None:
    submissions = make_submissions(600)
    with serving(postgres_folder, "--workers", "2") as hub:
        workers = children_of(hub.process.pid)
        assert len(workers) == 2, hub.output()
        cpu_before = {pid: _cpu_seconds(pid) for pid in workers}
        sending = asyncio.create_task(burst([hub.url], submissions, concurrency=24))
        # `hub audit verify` while both workers append: it reads the log's size first and
        # then only what that size covers, so a commit in between is no false alarm.
        config = load_hub_config(postgres_folder.config)
        checks = 0
        while not sending.done():
            result = await verify_hub_log(config, INSECURE_TEST_HUB_KEYS.public.signing)
            assert result.ok, result
            checks += 1
        answers = await sending
        cpu_used = {pid: _cpu_seconds(pid) - cpu_before[pid] for pid in workers}
        statuses = Counter(a.status for a in answers)
        assert statuses == {201: len(submissions)}, (statuses, hub.output()[-3000:])
        assert "Traceback" not in hub.output()
        assert checks >= 1
        # Both processes served: neither sat idle while the other took every connection.
        total = sum(cpu_used.values())
        assert min(cpu_used.values()) > 0.15 * total, cpu_used

        # A worker that dies is replaced, and the hub goes on answering.
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        _wait_for(lambda: len(children_of(hub.process.pid) - {victim}) == 2, 30, "a new worker")
        more = await burst([hub.url], make_submissions(30), concurrency=6)
        assert Counter(a.status for a in more) == {201: 30}
        assert "worker 1" in hub.output() or "worker 2" in hub.output()
        assert "starting a new one" in hub.output()
        survivors = children_of(hub.process.pid)

        # SIGTERM to the parent stops every worker; the parent exits 0.
        assert stop_serve(hub) == 0, hub.output()
    assert not any(_alive(pid) for pid in survivors)
    assert_unique_receipts([*answers, *more])
    verified = postgres_folder.verify_log()
    assert verified["entries"] == len(submissions) + 30 + 4


async def test_workers_stop_by_themselves_when_their_parent_is_killed(
    postgres_folder: HubFolder,
) -> None:
    with serving(postgres_folder, "--workers", "2") as hub:
        workers = children_of(hub.process.pid)
        assert len(workers) == 2
        hub.process.send_signal(signal.SIGKILL)
        hub.process.wait(timeout=10)

        def gone() -> bool:
            return not any(_alive(pid) for pid in workers)

        _wait_for(gone, 15, "orphaned workers to stop")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


async def test_workers_are_refused_on_sqlite_with_the_reason(tmp_path: Path) -> None:
    folder = await make_hub_folder(tmp_path / "hub")
    done = folder.run("serve", "--workers", "2", timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "listening" not in done.stdout
    assert (
        "hub: --workers 2 needs PostgreSQL: SQLite lets one process write at a time" in done.stderr
    )
    assert "deploy/workers.md" in done.stderr
    assert "Traceback" not in done.stderr
    zero = folder.run("serve", "--workers", "0", timeout=60)
    assert zero.returncode == 2
    assert "--workers: must be 1 or more, not 0" in zero.stderr


def test_an_unreachable_database_stops_the_hub_before_any_worker_starts(tmp_path: Path) -> None:
    # Nothing listens on port 1. The parent opens the database (and migrates an empty
    # one) before it forks, so this is one line and exit 2, as with one process.
    folder = write_hub_files(tmp_path / "hub", "postgresql+asyncpg://nobody@127.0.0.1:1/none")
    done = folder.run("serve", "--workers", "2", timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "hub: cannot open the database:" in done.stderr
    assert "listening" not in done.stdout
    assert "Traceback" not in done.stderr


async def test_workers_that_cannot_start_stop_the_hub_with_exit_1(
    postgres_folder: HubFolder,
) -> None:
    # The workers create the blob folder when they start; here a file is in its way.
    config = postgres_folder.config
    (postgres_folder.root / "in-the-way").write_text("not a folder\n")
    config.write_text(config.read_text().replace('"blobs"', '"in-the-way/blobs"'))
    done = postgres_folder.run("serve", "--workers", "2", timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "listening on http://127.0.0.1:" in output
    assert "exited with 1 while starting; stopping the others (its error is above)" in output
