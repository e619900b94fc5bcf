"""The harness's report: the Done-when ratios come from the rows, and the docs keep their
hand-written parts."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from bench.harness import Row, build_parser, parse_size
from bench.report import BEGIN, END, ratios, results, table, write_docs

ROOT = Path(__file__).resolve().parents[2]
META: dict[str, Any] = {
    "date": "2026-01-01 00:00 UTC",
    "commit": "abc1234",
    "profile": "quick",
    "seconds": 60.0,
    "python": "3.11",
    "sqlite": "3.40",
    "cpus": 2,
    "load_average_start": (0.5, 0.5, 0.5),
    "load_average_end": (0.6, 0.6, 0.6),
    "generator_loop": "uvloop",
}


def _submit(target: str, rate: float, cpu: float, p99: float = 20.0) -> Row:
    return Row(
        f"submit.{target}.c64",
        "submit 1 KiB",
        target,
        concurrency=64,
        count=1000,
        rate=rate,
        p50_ms=p99 / 2,
        p99_ms=p99,
        errors=0,
        server_cpu_us=cpu,
    )


def _ratios(rows: list[Row]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in ratios([row.to_json() for row in rows], META)}


def test_the_submit_ratios_are_hub_over_the_anchors_at_the_top_concurrency() -> None:
    rows = [
        _submit("trivial", 20_000.0, 40.0),
        _submit("hub", 4_000.0, 250.0, p99=30.0),
        _submit("mesh", 400.0, 2_000.0),
    ]
    found = _ratios(rows)
    vs_trivial = found["hub vs trivial aiohttp, 64 concurrent"]
    assert vs_trivial["value"] == pytest.approx(20.0)
    assert vs_trivial["meets"] is True
    vs_mesh = found["hub vs MESH sandbox, 64 concurrent"]
    assert vs_mesh["value"] == pytest.approx(10.0)
    assert vs_mesh["meets"] is True
    p99 = found["hub p99 at 64 concurrent"]
    assert p99["value"] == 30.0
    assert p99["meets"] is False
    by_cpu = found["hub vs trivial aiohttp by server CPU per message, 64 concurrent"]
    assert by_cpu["value"] == pytest.approx(16.0)
    assert found["hub vs MESH sandbox by server CPU per message, 64 concurrent"]["value"] == (
        pytest.approx(8.0)
    )


def test_a_missing_anchor_leaves_its_ratio_unmeasured_with_the_reason() -> None:
    rows = [
        _submit("trivial", 20_000.0, 40.0),
        _submit("hub", 4_000.0, 250.0),
        Row("submit.mesh.c64", "submit 1 KiB", "MESH sandbox", status="skipped", reason="gone"),
    ]
    meta = {**META, "mesh": {"available": False, "reason": "not installed: mesh_sandbox"}}
    found = {item["name"]: item for item in ratios([row.to_json() for row in rows], meta)}
    vs_mesh = found["hub vs MESH sandbox, 64 concurrent"]
    assert vs_mesh["value"] is None
    assert vs_mesh["meets"] is None
    assert "not installed: mesh_sandbox" in vs_mesh["note"]
    text = table(results(meta, rows))
    assert "MESH anchor MISSING: not installed: mesh_sandbox" in text
    assert "skipped" in text


def test_the_postgres_ratio_needs_no_errors_and_a_verifying_log() -> None:
    one = Row("postgres.one_process", "submit", "pg 1", rate=100.0, errors=0, concurrency=64)
    two = Row("postgres.two_processes", "submit", "pg 2", rate=170.0, errors=0, concurrency=64)
    two.extra = {"ratio_to_one": 1.7, "log_verifies": True}
    assert _ratios([one, two])["PostgreSQL, 2 hub processes vs 1"]["meets"] is True
    two.extra["log_verifies"] = False
    assert _ratios([one, two])["PostgreSQL, 2 hub processes vs 1"]["meets"] is False
    two.extra["log_verifies"], two.errors = True, 1
    assert _ratios([one, two])["PostgreSQL, 2 hub processes vs 1"]["meets"] is False


def test_write_docs_replaces_only_the_generated_block(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text(
        f"# Performance\n\nHand-written intro.\n\n{BEGIN}\nold figures\n{END}\n\n## Kept\n"
    )
    rows = [_submit("trivial", 20_000.0, 40.0), _submit("hub", 4_000.0, 250.0)]
    written = write_docs(results(META, rows), tmp_path)
    text = page.read_text()
    assert page in written
    assert "Hand-written intro." in text
    assert text.rstrip().endswith("## Kept")
    assert "old figures" not in text
    assert text.count(BEGIN) == 1
    assert text.count(END) == 1
    assert "| submit 1 KiB | hub |" in text
    assert "python -m bench --quick" in text
    assert "hub vs trivial aiohttp, 64 concurrent | 20.0 %" in text


def test_write_docs_creates_the_page_when_there_is_none(tmp_path: Path) -> None:
    write_docs(results(META, [_submit("hub", 4_000.0, 250.0)]), tmp_path / "docs")
    text = (tmp_path / "docs" / "performance.md").read_text()
    assert text.startswith("# Performance")
    assert BEGIN in text
    assert END in text


@pytest.mark.parametrize(
    ("text", "size"),
    [("1GiB", 1024**3), ("64MiB", 64 * 1024**2), ("512 KiB", 512 * 1024), ("1000", 1000)],
)
def test_sizes_parse(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "0MiB", "-1"])
def test_bad_sizes_are_refused_by_name(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="--size"):
        parse_size(text)


def test_bad_options_name_themselves(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.harness import main

    with pytest.raises(SystemExit):
        main(["--only", "submit,everything"])
    assert "--only: unknown benchmark(s) everything" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--audit-entries", "0"])
    assert "--audit-entries: must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--concurrency", "1,x"])
    assert "--concurrency" in capsys.readouterr().err


def _bench_commands(path: Path) -> list[list[str]]:
    blocks = re.findall(r"```sh\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL)
    lines = [
        line.split(" #")[0].strip()
        for block in blocks
        for line in block.replace("\\\n", " ").splitlines()
    ]
    return [
        shlex.split(line)[shlex.split(line).index("bench") + 1 :]
        for line in lines
        if "python -m bench" in line
    ]


@pytest.mark.parametrize("name", ["bench/README.md", "docs/performance.md"])
def test_every_bench_command_in_the_docs_parses(name: str) -> None:
    commands = _bench_commands(ROOT / name)
    assert commands, f"{name} shows no python -m bench command"
    for words in commands:
        try:
            build_parser().parse_args(words)
        except SystemExit:
            pytest.fail(f"{name}: python -m bench does not accept {shlex.join(words)}")
