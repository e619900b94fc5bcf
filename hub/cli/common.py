"""What every ``hub`` command shares: exit codes, JSON output, clear errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "CommandError",
    "print_json",
    "write_output",
]

EXIT_OK = 0
EXIT_REFUSED = 1  # the hub or a pre-flight check refused; the problem JSON is on stdout
EXIT_USAGE = 2  # bad arguments, config or files
EXIT_ERROR = 3  # could not reach the hub, or something failed to verify


class CommandError(Exception):
    """A failure the command reports in one line on stderr, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def write_output(text: str, out: Path | None) -> None:
    """Write ``text`` to ``out`` (saying so), or to standard output."""
    if out is None:
        print(text, end="")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
