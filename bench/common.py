"""Helpers shared by benchmarks: ports, latency statistics, CPU accounting, reporting."""

import json
import math
import os
import socket
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    # The OS picks a port nobody holds; the tiny race until our server binds it is accepted.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(ordered: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on sorted input."""
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(latencies_s: Iterable[float], errors: int, window_s: float) -> dict[str, Any]:
    """Throughput counts every completed request, failed or not; latencies only successes,
    so a fast failure cannot flatter the percentiles. None where undefined (valid JSON)."""
    ordered = sorted(latencies_s)
    total = len(ordered) + errors

    def ms(p: float) -> float | None:
        return round(percentile(ordered, p) * 1000, 2) if ordered else None

    return {
        "requests": total,
        "errors": errors,
        "window_s": round(window_s, 3),
        "rps": round(total / window_s, 1) if window_s > 0 else None,
        "p50_ms": ms(50),
        "p95_ms": ms(95),
        "p99_ms": ms(99),
        "max_ms": ms(100),
        "error_rate": round(errors / total, 4) if total else None,
    }


# --- CPU accounting from /proc (psutil is not a dependency) --------------------------------

def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may hold spaces or parentheses: fields start after the last ')'.
    return text[text.rindex(")") + 2:].split()


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (uvicorn's workers are children of its supervisor)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time consumed so far by the given live processes."""
    total = 0
    for pid in pids:
        if fields := _stat_fields(pid):
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def machine_ticks() -> list[int]:
    """Jiffies over all cores: user nice system idle iowait irq softirq steal."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def machine_usage(before: list[int], after: list[int], window_s: float) -> dict[str, float]:
    """Cores busy on average, and the part no process is charged with: softirq (loopback
    networking) and steal (a noisy VM neighbour) make figures drift without showing in ps."""
    d = [b - a for a, b in zip(before, after, strict=True)]

    def cores(*fields: int) -> float:
        return round(sum(d[f] for f in fields) / _TICKS / window_s, 2)

    return {"busy": cores(0, 1, 2, 5, 6, 7), "softirq": cores(5, 6), "steal": cores(7)}


# --- reporting ------------------------------------------------------------------------------

def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                        enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):  # two decimals where they matter, none where they are noise
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path
