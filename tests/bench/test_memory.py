"""Each side's peak memory is its own, not inherited from the harness that started it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
PROBE = "import json; from bench.document import peak_rss_bytes; print(peak_rss_bytes())"


def test_a_child_reports_its_own_peak_not_its_large_parents() -> None:
    ballast = b"\x01" * (400 * MIB)  # touched, so resident in this (the parent) process
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, cwd=ROOT
    )
    own = json.loads(result.stdout)
    assert len(ballast) == 400 * MIB
    # ru_maxrss would say more than 400 MiB here: Linux carries it across execve.
    assert 0 < own < 200 * MIB
