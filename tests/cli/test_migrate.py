"""``hub admin migrate`` and ``hub serve``'s schema check, as an operator runs them."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from hub.cli.main import main
from hub.config import database_url_for_path, render_hub_config
from hub.crypto import write_key_file
from hub.store.dialect import open_engine
from hub.store.migrate import (
    BASE_REVISION,
    SchemaState,
    base_revision_metadata,
    head_revision,
    schema_status,
    upgrade_to_head,
)
from tests.cli.test_cli import HUB, _wait_for_port, run
from tests.conftest import INSECURE_TEST_HUB_KEYS
from tests.store.test_migrations import EXTRA_REVISION, add_extra_revision


def _hub(tmp_path: Path, port: int = 8443) -> Path:
    config = tmp_path / "hub.toml"
    config.write_text(
        render_hub_config(
            hub_id="hub.test",
            database="hub.sqlite3",
            blob_dir="blobs",
            signing_key="hub.key",
            host="127.0.0.1",
            port=port,
        )
    )
    write_key_file(tmp_path / "hub.key", INSECURE_TEST_HUB_KEYS)
    return config


def hub(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """Run ``hub`` in this process (as the console script does): exit code, out, err."""
    capsys.readouterr()
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def _url(tmp_path: Path) -> str:
    return database_url_for_path(tmp_path / "hub.sqlite3")


def _create_all(tmp_path: Path, alteration: str | None = None) -> None:
    """A database as hubs made it before migrations (the tables of 0001_initial, which
    were tables.py then), optionally altered afterwards."""

    async def make() -> None:
        engine, _ = open_engine(_url(tmp_path))
        async with engine.begin() as conn:
            await conn.run_sync(base_revision_metadata().create_all)
            if alteration is not None:
                await conn.execute(text(alteration))
        await engine.dispose()

    asyncio.run(make())


def _state(tmp_path: Path) -> SchemaState:
    return asyncio.run(schema_status(_url(tmp_path))).state


def _pending_from_empty(tmp_path: Path) -> tuple[str, ...]:
    return asyncio.run(schema_status(database_url_for_path(tmp_path / "empty.db"))).pending


def _applied(out: str) -> list[str]:
    return [line.split()[1] for line in out.splitlines() if line.startswith("applied")]


def test_status_then_migrate_then_status(tmp_path: Path) -> None:
    """The one run as real processes; the others call the same main() in this process."""
    config = _hub(tmp_path)
    before = run("admin", "migrate", "--config", config, "--status")
    assert before.returncode == 1, before.stderr
    assert "current revision: none (empty database)" in before.stdout
    assert f"head revision:    {head_revision()}" in before.stdout

    migrated = run("admin", "migrate", "--config", config)
    assert migrated.returncode == 0, migrated.stderr
    assert _applied(migrated.stdout) == list(_pending_from_empty(tmp_path))
    assert _applied(migrated.stdout)[0] == BASE_REVISION

    after = run("admin", "migrate", "--config", config, "--status")
    assert after.returncode == 0, after.stderr
    assert f"current revision: {head_revision()}" in after.stdout
    assert "pending:          none" in after.stdout


def test_migrating_a_current_database_does_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _hub(tmp_path)
    assert hub(capsys, "admin", "migrate", "--config", config)[0] == 0
    code, out, _ = hub(capsys, "admin", "migrate", "--config", config)
    assert code == 0
    assert "nothing to do" in out
    assert _applied(out) == []


def test_dry_run_prints_the_sql_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _hub(tmp_path)
    for flag in ("--sql", "--dry-run"):
        code, out, err = hub(capsys, "admin", "migrate", "--config", config, flag)
        assert code == 0, err
        assert "CREATE TABLE nodes" in out
        assert "CREATE INDEX ix_audit_log_at" in out
    assert _state(tmp_path) is SchemaState.EMPTY


def test_a_database_from_before_migrations_is_stamped_then_upgraded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _hub(tmp_path)
    _create_all(tmp_path)
    code, out, _ = hub(capsys, "admin", "migrate", "--config", config, "--status")
    assert code == 1
    assert "current revision: none (tables from before migrations)" in out
    code, out, err = hub(capsys, "admin", "migrate", "--config", config)
    assert code == 0, err
    assert f"stamped {BASE_REVISION}" in out
    assert _applied(out) == list(_pending_from_empty(tmp_path)[1:])
    assert _state(tmp_path) is SchemaState.CURRENT


def test_a_database_from_before_migrations_that_differs_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _hub(tmp_path)
    _create_all(tmp_path, "ALTER TABLE nodes ADD COLUMN extra VARCHAR(10)")
    code, out, err = hub(capsys, "admin", "migrate", "--config", config)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert "not the schema of revision 0001_initial: unexpected column nodes.extra" in err
    assert _state(tmp_path) is SchemaState.LEGACY


def test_a_database_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    config = _hub(tmp_path)
    config.write_text(config.read_text().replace('"hub.sqlite3"', '"missing/dir/hub.sqlite3"'))
    refused = run("admin", "migrate", "--config", config)
    assert refused.returncode == 2
    missing = tmp_path / "missing" / "dir"
    assert refused.stderr == f"hub: cannot open the database: the folder {missing} does not exist\n"
    assert refused.stderr.count("\n") == 1, refused.stderr


@pytest.mark.parametrize(
    ("prepare", "said"),
    [
        (
            "legacy",
            "created before migrations (it has no revision): back it up and run 'hub admin migrate",
        ),
        ("ahead", "at revision 9999_future, which this hub does not know"),
    ],
)
def test_serve_refuses_a_database_it_may_not_use(tmp_path: Path, prepare: str, said: str) -> None:
    config = _hub(tmp_path)
    if prepare == "legacy":
        _create_all(tmp_path)
    else:
        asyncio.run(upgrade_to_head(_url(tmp_path)))
        _create_all(tmp_path, "UPDATE alembic_version SET version_num = '9999_future'")
    served = subprocess.run(
        [*HUB, "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert served.returncode == 2, served.stdout + served.stderr
    assert "listening" not in served.stdout
    assert said in served.stderr
    assert "Traceback" not in served.stderr


def test_serve_refuses_a_database_behind_the_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _hub(tmp_path)
    assert run("admin", "migrate", "--config", config).returncode == 0
    add_extra_revision(tmp_path, monkeypatch)  # this process's code is now one ahead

    code, out, err = hub(capsys, "serve", "--config", config)
    assert code == 2
    assert "listening" not in out
    assert f"needs {EXTRA_REVISION}" in err
    assert "run 'hub admin migrate --config ...' first" in err
    assert _state(tmp_path) is SchemaState.BEHIND

    code, out, _ = hub(capsys, "admin", "migrate", "--config", config, "--status")
    assert code == 1
    assert f"pending:          {EXTRA_REVISION}" in out
    code, out, _ = hub(capsys, "admin", "migrate", "--config", config)
    assert (code, _applied(out)) == (0, [EXTRA_REVISION])
    assert _state(tmp_path) is SchemaState.CURRENT


def test_serve_migrates_an_empty_database_and_says_so(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = _hub(tmp_path, port=port)
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([*HUB, "serve", "--config", str(config)], stdout=log, stderr=log)
    try:
        _wait_for_port(port)
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
    said = (tmp_path / "serve.log").read_text()
    assert f"empty database: created the schema at {head_revision()}" in said
    assert _state(tmp_path) is SchemaState.CURRENT
