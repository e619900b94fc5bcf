"""The harness's results: one table, the Done-when ratios of issue 12, the JSON, the docs.

``docs/performance.md`` keeps its hand-written parts; ``--write-docs`` replaces only what
lies between ``<!-- bench:begin -->`` and ``<!-- bench:end -->`` (and the chart,
``docs/performance.svg``), creating the page from a skeleton when it does not exist.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.harness import Row

__all__ = ["progress_line", "ratios", "results", "table", "write_docs"]

MIB = 1024 * 1024
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
CHART = "performance.svg"


def _number(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def progress_line(row: Row) -> str:
    if row.status != "ok":
        return f"{row.id}: {row.status.upper()} - {row.reason}"
    parts = [f"{row.id}: {_number(row.rate)} {row.unit}"]
    if row.p50_ms is not None:
        parts.append(f"p50 {_number(row.p50_ms, 2)} ms, p99 {_number(row.p99_ms, 2)} ms")
    if row.errors:
        parts.append(f"{row.errors} errors")
    if row.server_cpu_us is not None:
        parts.append(f"server {_number(row.server_cpu_us)} us CPU/op")
    return "; ".join(parts)


def _by_id(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in rows}


def _rate(rows: dict[str, dict[str, Any]], row_id: str) -> float | None:
    row = rows.get(row_id)
    if row is None or row["status"] != "ok" or not row.get("rate"):
        return None
    rate: float = row["rate"]
    return rate


def ratios(rows: Sequence[dict[str, Any]], meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 12's Done-when figures from this run, each beside its target."""
    by_id = _by_id(rows)
    levels = sorted(
        int(row_id.rsplit(".c", 1)[1]) for row_id in by_id if row_id.startswith("submit.hub.c")
    )
    top = levels[-1] if levels else 64
    found: list[dict[str, Any]] = []

    def add(
        name: str, value: float | None, unit: str, target: str, meets: bool | None, note: str = ""
    ) -> None:
        found.append(
            {
                "name": name,
                "value": value,
                "unit": unit,
                "target": target,
                "meets": meets,
                "note": note,
            }
        )

    if levels:
        _submit_ratios(by_id, top, meta, add)

    verify = by_id.get("audit.verify")
    if verify and verify["status"] == "ok":
        entries = verify["extra"]["entries"]
        add(
            "hub audit verify",
            verify["rate"],
            "entries/s",
            ">= 200,000 /s at 1M entries",
            verify["rate"] >= 200_000,
            f"at {entries:,} entries, peak RSS {verify['extra']['peak_rss'] / MIB:.0f} MiB"
            + ("" if entries >= 1_000_000 else " (not the 1M log: --audit-entries 1000000)"),
        )
    for kind in ("inclusion", "consistency"):
        proof = by_id.get(f"audit.{kind}_proof")
        if proof and proof["status"] == "ok":
            add(
                f"{kind} proof p99",
                proof["p99_ms"],
                "ms",
                "<= 1 ms at 1M entries",
                proof["p99_ms"] <= 1,
                f"at {proof['extra'].get('log_size', 0):,} entries; over HTTP, a signed request, "
                "one at a time",
            )
    document = by_id.get("document")
    if document and document["status"] == "ok":
        extra = document["extra"]
        size = extra["bytes"]
        add(
            "document end to end",
            document["rate"],
            "MB/s",
            ">= 300 MB/s at 1 GiB",
            document["rate"] >= 300,
            f"{size / MIB:,.0f} MiB" + ("" if size >= 1024 * MIB else " (not 1 GiB: --size 1GiB)"),
        )
        peak = max(extra["sender_peak_rss"], extra["receiver_peak_rss"], extra["hub_peak_rss"])
        add(
            "document peak RSS, largest side",
            peak / MIB,
            "MiB",
            "<= 128 MiB each side",
            peak <= 128 * MIB,
            f"sender {extra['sender_peak_rss'] / MIB:.0f}, receiver "
            f"{extra['receiver_peak_rss'] / MIB:.0f}, hub {extra['hub_peak_rss'] / MIB:.0f} MiB",
        )
    two = by_id.get("postgres.two_processes")
    if two and two["status"] == "ok" and two["extra"].get("ratio_to_one"):
        ratio = two["extra"]["ratio_to_one"]
        clean = two["errors"] == 0 and (by_id["postgres.one_process"]["errors"] == 0)
        add(
            "PostgreSQL, 2 hub processes vs 1",
            ratio,
            "x",
            ">= 1.6x, 0 errors, log verifies",
            ratio >= 1.6 and clean and bool(two["extra"].get("log_verifies")),
            f"errors {by_id['postgres.one_process']['errors']} / {two['errors']}; log "
            + ("verifies" if two["extra"].get("log_verifies") else "does not verify"),
        )
    elif two:
        add("PostgreSQL, 2 hub processes vs 1", None, "x", ">= 1.6x", None, str(two.get("reason")))
    return found


def _submit_ratios(
    by_id: dict[str, dict[str, Any]],
    top: int,
    meta: dict[str, Any],
    add: Callable[..., None],
) -> None:
    hub, trivial, mesh = (
        _rate(by_id, f"submit.{name}.c{top}") for name in ("hub", "trivial", "mesh")
    )
    pct = None if hub is None or trivial is None else hub / trivial * 100
    generator = by_id.get("generator")
    share = (generator or {}).get("extra", {}).get("cpu_share_against_trivial")
    if share is None:
        bound = ""
    elif share >= 0.8:
        bound = (
            f"the generator used {share * 100:.0f} % of a core against the trivial server: that "
            "rate is partly the generator's, so this ratio flatters the hub"
        )
    else:
        bound = (
            f"the generator used {share * 100:.0f} % of a core against the trivial server: "
            "not what limited it"
        )
    add(
        f"hub vs trivial aiohttp, {top} concurrent",
        pct,
        "%",
        ">= 15 %",
        None if pct is None else pct >= 15,
        bound,
    )
    times = None if hub is None or mesh is None else hub / mesh
    add(
        f"hub vs MESH sandbox, {top} concurrent",
        times,
        "x",
        ">= 9x",
        None if times is None else times >= 9,
        ""
        if mesh is not None
        else "MESH anchor missing: " + str(meta.get("mesh", {}).get("reason")),
    )
    cpu = {
        name: (row or {}).get("server_cpu_us")
        if (row := by_id.get(f"submit.{name}.c{top}")) and row["status"] == "ok"
        else None
        for name in ("hub", "trivial", "mesh")
    }
    if cpu["hub"] and cpu["trivial"]:
        by_cpu = cpu["trivial"] / cpu["hub"] * 100
        add(
            f"hub vs trivial aiohttp by server CPU per message, {top} concurrent",
            by_cpu,
            "%",
            ">= 15 %",
            by_cpu >= 15,
            "what each server's process spent per accepted message: steadier than rates when "
            "the machine is shared",
        )
    if cpu["hub"] and cpu["mesh"]:
        by_cpu = cpu["mesh"] / cpu["hub"]
        add(
            f"hub vs MESH sandbox by server CPU per message, {top} concurrent",
            by_cpu,
            "x",
            ">= 9x",
            by_cpu >= 9,
            "as above",
        )
    hub_row = by_id.get(f"submit.hub.c{top}")
    p99 = hub_row.get("p99_ms") if hub_row and hub_row["status"] == "ok" else None
    add(f"hub p99 at {top} concurrent", p99, "ms", "<= 25 ms", None if p99 is None else p99 <= 25)


def results(meta: dict[str, Any], rows: Sequence[Row]) -> dict[str, Any]:
    as_json = [row.to_json() for row in rows]
    return {"meta": meta, "rows": as_json, "ratios": ratios(as_json, meta)}


_COLUMNS = (
    ("benchmark", "benchmark"),
    ("against", "target"),
    ("conc.", "concurrency"),
    ("n", "count"),
    ("rate", "rate"),
    ("unit", "unit"),
    ("p50 ms", "p50_ms"),
    ("p99 ms", "p99_ms"),
    ("errors", "errors"),
    ("server CPU us/op", "server_cpu_us"),
    ("generator CPU us/op", "generator_cpu_us"),
    ("other load (cores)", "other_load_cores"),
)


def _cells(row: dict[str, Any]) -> list[str]:
    cells = []
    for _, key in _COLUMNS:
        value = row.get(key)
        if row["status"] != "ok" and key not in ("benchmark", "target", "concurrency"):
            cells.append(row["status"] if key == "rate" else "")
            continue
        if key in ("p50_ms", "p99_ms") or key == "other_load_cores":
            cells.append(_number(value, 2))
        elif isinstance(value, float):
            cells.append(_number(value))
        elif isinstance(value, int):
            cells.append(f"{value:,}")
        else:
            cells.append("" if value is None else str(value))
    return cells


def _notes(rows: Sequence[dict[str, Any]]) -> list[str]:
    lines = []
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"{row['id']}: {row['status']}: {row['reason']}")
        for note in row["notes"]:
            lines.append(f"{row['id']}: {note}")
    return lines


def _verdict(meets: bool | None) -> str:
    return {True: "meets", False: "below target", None: "not measured"}[meets]


def _ratio_value(item: dict[str, Any]) -> str:
    if item["value"] is None:
        return "-"
    digits = 2 if item["unit"] in ("x", "ms") else 1
    return f"{_number(item['value'], digits)} {item['unit']}"


def _conditions(meta: dict[str, Any]) -> str:
    start = meta.get("load_average_start") or (0, 0, 0)
    end = meta.get("load_average_end") or (0, 0, 0)
    return (
        f"{meta.get('date')}, commit {meta.get('commit')}, {meta.get('profile')} run of "
        f"{meta.get('seconds')} s; Python {meta.get('python')}, SQLite {meta.get('sqlite')}, "
        f"{meta.get('cpus')} CPUs; load average {start[0]:.1f} at the start, {end[0]:.1f} at "
        f"the end; generator on {meta.get('generator_loop')}"
    )


def table(results: dict[str, Any]) -> str:
    rows = results["rows"]
    header = [title for title, _ in _COLUMNS]
    body = [_cells(row) for row in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    numeric = {"conc.", "n", "rate", "p50 ms", "p99 ms", "errors"} | {
        title for title, _ in _COLUMNS if "CPU" in title or "load" in title
    }

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(width) if header[i] in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(header), line(["-" * width for width in widths])]
    out += [line(cells) for cells in body]
    out.append("")
    out += _notes(rows)
    out.append("")
    out.append("Issue 12 Done-when, from this run:")
    for item in results["ratios"]:
        note = f" ({item['note']})" if item["note"] else ""
        out.append(
            f"  {item['name']}: {_ratio_value(item)}, target {item['target']}: "
            f"{_verdict(item['meets'])}{note}"
        )
    out.append("")
    out.append(_conditions(results["meta"]))
    mesh = results["meta"].get("mesh", {})
    if mesh and not mesh.get("available"):
        out.append(f"MESH anchor MISSING: {mesh.get('reason')}")
    return "\n".join(out)


def markdown_table(results: dict[str, Any]) -> str:
    header = [title for title, _ in _COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in results["rows"]]
    return "\n".join(lines)


def markdown_ratios(results: dict[str, Any]) -> str:
    lines = ["| figure | this run | target | verdict | note |", "|---|---|---|---|---|"]
    for item in results["ratios"]:
        lines.append(
            f"| {item['name']} | {_ratio_value(item)} | {item['target']} | "
            f"{_verdict(item['meets'])} | {item['note']} |"
        )
    return "\n".join(lines)


def chart(results: dict[str, Any], path: Path) -> bool:
    """Submit throughput and hub latency per concurrency, as SVG; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    by_id = _by_id(results["rows"])
    levels = sorted(
        int(row_id.rsplit(".c", 1)[1]) for row_id in by_id if row_id.startswith("submit.hub.c")
    )
    if not levels:
        return False
    plt.rcParams.update({"svg.fonttype": "none", "font.size": 10, "svg.hashsalt": "bench"})
    figure, (rates, latency) = plt.subplots(1, 2, figsize=(10, 4))
    series = (
        ("trivial", "trivial aiohttp", "#b1b4b6"),
        ("hub", "hub (SQLite)", "#1d70b8"),
        ("mesh", "MESH sandbox", "#d4351c"),
    )
    width = 0.27
    for offset, (name, label, colour) in enumerate(series):
        values = [_rate(by_id, f"submit.{name}.c{c}") or 0.0 for c in levels]
        positions = [i + (offset - 1) * width for i in range(len(levels))]
        bars = rates.bar(
            positions, [max(v, 1e-3) for v in values], width, label=label, color=colour
        )
        for bar, value in zip(bars, values, strict=True):
            if value:
                rates.annotate(
                    f"{value:,.0f}",
                    (bar.get_x() + bar.get_width() / 2, value),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    rates.set_yscale("log")
    rates.set_xticks(range(len(levels)), [f"{c} concurrent" for c in levels])
    rates.set_ylabel("accepted messages per second (log scale)")
    rates.set_title("Submit 1 KiB: same load generator, same run")
    rates.legend(fontsize=8)
    for name, label, colour in series[1:]:
        rows = [by_id.get(f"submit.{name}.c{c}") for c in levels]
        p50 = [row["p50_ms"] if row and row["status"] == "ok" else float("nan") for row in rows]
        p99 = [row["p99_ms"] if row and row["status"] == "ok" else float("nan") for row in rows]
        latency.plot(levels, p50, marker="o", color=colour, label=f"{label} p50")
        latency.plot(levels, p99, marker="^", linestyle="--", color=colour, label=f"{label} p99")
    latency.axhline(25, color="#505a5f", linewidth=0.8, linestyle=":")
    latency.annotate("p99 target 25 ms", (levels[0], 25), fontsize=7, va="bottom")
    latency.set_xscale("log", base=2)
    latency.set_xticks(levels, [str(c) for c in levels])
    latency.set_yscale("log")
    latency.set_xlabel("concurrent requests")
    latency.set_ylabel("latency, ms (log scale)")
    latency.set_title("Submit latency")
    latency.legend(fontsize=8)
    meta = results["meta"]
    figure.text(
        0.01,
        0.01,
        f"{meta.get('date')}, commit {meta.get('commit')}, {meta.get('profile')} run, "
        f"load average {(meta.get('load_average_start') or [0])[0]:.1f} at start",
        fontsize=7,
        color="#505a5f",
    )
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    figure.savefig(path, format="svg", metadata={"Date": None})
    plt.close(figure)
    return True


_SKELETON = f"""# Performance

What the hub does per second on a two-core machine, measured by `python -m bench` against
two anchors in the same run: a trivial aiohttp POST server and NHS MESH's sandbox server.
Every figure below comes from one run of the harness; `bench/README.md` says how each is
measured.

{BEGIN}
{END}
"""


def _generated(results: dict[str, Any], with_chart: bool) -> str:
    meta = results["meta"]
    noisy = (meta.get("load_average_start") or [0])[0] > (meta.get("cpus") or 2) / 2
    parts = [
        BEGIN,
        "",
        "## The latest run",
        "",
        _conditions(meta) + ".",
    ]
    if noisy:
        parts += [
            "",
            "**The machine was shared while this ran** (the load average was above what the "
            "benchmark itself puts on it; the `other load` column is the CPU the rest of the "
            "machine used during each row, in cores). Throughput and latency are noisy; CPU "
            "per operation (server and generator columns) is the steadier figure.",
        ]
    parts += ["", markdown_table(results), ""]
    notes = _notes(results["rows"])
    if notes:
        parts += ["Notes:", ""] + [f"- {note}" for note in notes] + [""]
    if with_chart:
        parts += [f"![Submit throughput and latency, same run]({CHART})", ""]
    parts += [
        "### Issue 12's Done-when, as ratios from this run",
        "",
        markdown_ratios(results),
        "",
        "### Reproduce",
        "",
        "```sh",
        "python3 -m venv .venv && .venv/bin/pip install -e '.[bench]'",
        ".venv/bin/python -m bench --quick                 # a minute or two",
        ".venv/bin/python -m bench --json bench.json       # the full run (1 GiB document)",
        ".venv/bin/python -m bench --audit-entries 1000000 --only audit   # the 1M-entry log",
        "HUB_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \\",
        "  .venv/bin/python -m bench --only postgres       # 1 vs 2 hub processes",
        ".venv/bin/python -m bench --quick --write-docs    # rewrite this section and the chart",
        "```",
        "",
        END,
    ]
    return "\n".join(parts)


def write_docs(results: dict[str, Any], docs: Path) -> list[Path]:
    docs.mkdir(parents=True, exist_ok=True)
    page = docs / "performance.md"
    written = []
    with_chart = chart(results, docs / CHART)
    if with_chart:
        written.append(docs / CHART)
    text = page.read_text() if page.exists() else _SKELETON
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    before, _, rest = text.partition(BEGIN)
    _, _, after = rest.partition(END)
    page.write_text(before + _generated(results, with_chart) + after)
    written.append(page)
    return written
