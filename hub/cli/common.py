"""What every ``hub`` command shares: exit codes, JSON output, clear errors."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "CommandError",
    "StderrProgress",
    "add_json_flag",
    "add_progress_flag",
    "cell",
    "emit",
    "fields",
    "print_json",
    "problem_text",
    "progress_for",
    "render",
    "table",
    "violations_text",
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


# --- Output: tables for people, JSON for scripts --------------------------------------
#
# Every command that prints data takes --json (add_json_flag) and prints through emit():
# with --json exactly the JSON it always printed (print_json), otherwise a table for a list
# of records and "key: value" lines for one record. A command may pass its own renderer.

Render = Callable[[Any], str]


class StderrProgress:
    """Progress of a large upload or download on one rewritten stderr line.

    Redrawn at most every 0.2 s and once at the end; stdout (and so --json) is untouched.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._drawn = 0.0

    def __call__(self, what: str, done: int, total: int) -> None:
        now = time.monotonic()
        finished = done >= total
        if not finished and now - self._drawn < 0.2:
            return
        self._drawn = now
        percent = 100 * done // total if total else 100
        line = f"\r{what}: {done / 2**20:.1f} of {total / 2**20:.1f} MiB ({percent}%)"
        self._stream.write(line + ("\n" if finished else ""))
        self._stream.flush()


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action="store_true",
        help="show progress of large payloads on stderr (the default when stderr is a terminal)",
    )


def progress_for(args: argparse.Namespace) -> StderrProgress | None:
    """A progress line on stderr with --progress, or when stderr is a terminal."""
    return StderrProgress() if args.progress or sys.stderr.isatty() else None


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print JSON (for scripts) instead of a table"
    )


def emit(document: Any, *, json_mode: bool, human: Render | None = None) -> None:
    """Print a command's result: ``document`` as JSON, or rendered for people."""
    if json_mode:
        print_json(document)
        return
    text = (human or render)(document)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def render(document: Any) -> str:
    """A readable rendering: a table for a list of records, key/value lines for one."""
    if isinstance(document, Mapping):
        return fields(document)
    if isinstance(document, list) and all(isinstance(row, Mapping) for row in document):
        return table(document)
    return cell(document)


def cell(value: Any) -> str:
    """One value on one line: lists joined by commas, records as compact JSON."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple) and all(not isinstance(v, Mapping | list) for v in value):
        return ", ".join(cell(v) for v in value) or "-"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return " ".join(str(value).split())


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows under a header, columns padded to their widest cell; "(none)" for no rows."""
    if not rows:
        return "(none)\n"
    names = (
        list(columns) if columns is not None else list(dict.fromkeys(k for r in rows for k in r))
    )
    cells = [[cell(row.get(name)) for name in names] for row in rows]
    widths = [max(len(name), *(len(line[i]) for line in cells)) for i, name in enumerate(names)]
    lines = [names, ["-" * w for w in widths], *cells]
    return "".join(
        "  ".join(text.ljust(w) for text, w in zip(line, widths, strict=True)).rstrip() + "\n"
        for line in lines
    )


def fields(record: Mapping[str, Any], indent: str = "") -> str:
    """One record as "key: value" lines; nested records indented, lists of records as tables."""
    out: list[str] = []
    for key, value in record.items():
        if isinstance(value, Mapping) and value:
            out.append(f"{indent}{key}:\n{fields(value, indent + '  ')}")
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            rows = "".join(f"{indent}  {line}\n" for line in table(value).splitlines())
            out.append(f"{indent}{key}:\n{rows}")
        else:
            out.append(f"{indent}{key}: {cell(value)}\n")
    return "".join(out)


def problem_text(problem: Mapping[str, Any]) -> str:
    """A refusal (RFC 9457 problem) for people: what refused it, why, and every rule."""
    head = f"refused ({problem.get('status')}): {problem.get('title')}\n"
    detail = f"{problem['detail']}\n" if problem.get("detail") else ""
    violations = problem.get("violations") or []
    rules = table(violations, ("rule", "path", "message")) if violations else ""
    return head + detail + rules


def violations_text(violations: Sequence[Mapping[str, Any]]) -> str:
    """A check's verdict for people: every rule broken, or that none is."""
    if not violations:
        return "no rule broken\n"
    return f"{len(violations)} rule(s) broken:\n" + table(violations, ("rule", "path", "message"))
