"""``bench/console.py`` runs end to end with a tiny store (a smoke test, never timed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_console_benchmark_runs_with_a_tiny_store() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "console.py"), "--messages", "40", "--requests", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["messages"] == 40
    assert set(report["pages"]) == {"inbox", "inbox_search", "inbox_kind", "message"}
    for page in report["pages"].values():
        assert page["requests"] == 3
        assert 0 < page["p50_ms"] <= page["p95_ms"] <= page["p99_ms"] <= page["max_ms"]
