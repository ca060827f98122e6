"""From a driver's answer to one result row: medians, transitions/s, the JSON line."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Row", "base_mode", "summarise", "to_json_line", "unavailable"]

# The first keys of every JSON line, in this order (issue 8); the others follow.
JSON_KEYS = (
    "engine",
    "workload",
    "mode",
    "executions",
    "transitions_per_s",
    "output_ok",
    "peak_rss_kb",
    "version",
)


@dataclass
class Row:
    engine: str
    workload: str
    mode: str
    executions: int
    transitions_per_s: float | None  # median; None when not measured or wrong
    output_ok: bool | None  # None: not run
    peak_rss_kb: int | None
    version: str
    executions_per_s: float | None = None
    wall_s_median: float | None = None
    runs: int = 0
    transitions_per_execution: int | None = None  # the manifest's, counted for every engine
    history_transitions: int | None = None  # *StateEntered events of the warm-up's history
    note: str | None = None  # "n/a: why", "wrong output: ...", or a remark on the run
    # wait_fleet only
    hold_seconds: int | None = None
    waiting: int | None = None
    bytes_per_waiting: float | None = None
    threads_per_waiting: float | None = None
    start_s: float | None = None
    all_done_s: float | None = None

    @property
    def measured(self) -> bool:
        return bool(self.output_ok) and self.runs > 0


def base_mode(mode: str) -> str:
    """``concurrent-async`` → ``concurrent``: the mode peers are compared in."""
    return mode.split("-", 1)[0]


def unavailable(
    engine: str, workload: str, mode: str, executions: int, reason: str, version: str = ""
) -> Row:
    return Row(engine, workload, mode, executions, None, None, None, version, note=f"n/a: {reason}")


def summarise(line: dict[str, Any], transitions_per_execution: int, peak_rss_kb: int) -> Row:
    """One driver answer → one row. A run whose output is wrong does not count."""
    engine, workload, mode = line["engine"], line["workload"], line["mode"]
    executions = int(line["executions"])
    version = str(line.get("version") or "")
    if "unavailable" in line:
        return unavailable(engine, workload, mode, executions, line["unavailable"], version)
    walls = [float(w) for w in line.get("walls", [])]
    notes = [str(line["note"])] if line.get("note") else []
    ok = bool(line.get("output_ok")) and bool(walls)
    row = Row(
        engine,
        workload,
        mode,
        executions,
        None,
        ok,
        int(line.get("peak_rss_kb") or peak_rss_kb),
        version,
        runs=len(walls),
        transitions_per_execution=transitions_per_execution,
        history_transitions=line.get("history_transitions"),
    )
    if not ok:
        row.note = "; ".join([f"wrong output: {line.get('error') or 'no run finished'}", *notes])
        return row
    wall = statistics.median(walls)
    row.wall_s_median = wall
    fleet = line.get("fleet")
    if fleet:
        row.hold_seconds = fleet["hold_seconds"]
        row.waiting = fleet["waiting"]
        row.start_s = fleet["start_s"]
        row.all_done_s = fleet["all_done_s"]
        row.threads_per_waiting = fleet.get("threads_per_waiting")
        if row.waiting:
            growth = fleet["rss_waiting_kb"] - fleet["rss_before_kb"]
            row.bytes_per_waiting = growth * 1024 / row.waiting
    else:
        row.transitions_per_s = executions * transitions_per_execution / wall
        row.executions_per_s = executions / wall
    if notes:
        row.note = "; ".join(notes)
    return row


def to_json_line(row: Row) -> str:
    data = asdict(row)
    ordered = {key: data.pop(key) for key in JSON_KEYS}
    return json.dumps({**ordered, **data})
