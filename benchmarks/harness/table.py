"""The printed report: medians with ratios to each peer, peak memory, every version."""

from __future__ import annotations

from collections.abc import Sequence

from harness.results import Row, base_mode

__all__ = ["PEERS", "format_ratio", "format_report", "ratio"]

PEERS = ("moto", "aws-local-stepfunctions")
_PEER_LABEL = {"moto": "vs moto", "aws-local-stepfunctions": "vs aws-local-sfn"}


def ratio(row: Row, peer: str, rows: Sequence[Row]) -> float | None:
    """``row``'s transitions/s over ``peer``'s on the same workload and mode, when both count."""
    if row.transitions_per_s is None or row.engine == peer:
        return None
    for other in rows:
        if (
            other.engine == peer
            and other.workload == row.workload
            and base_mode(other.mode) == base_mode(row.mode)
            and other.transitions_per_s
        ):
            return row.transitions_per_s / other.transitions_per_s
    return None


def format_ratio(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    return f"{value:.2f}x"


def _rate(row: Row) -> str:
    if row.transitions_per_s is not None:
        return f"{row.transitions_per_s:,.0f}"
    return "n/a" if row.output_ok is None else "wrong output"


def _mode(mode: str) -> str:
    return mode.replace("-async", ", async fn")


def _mb(kb: int | None) -> str:
    return "-" if kb is None else f"{kb / 1024:,.0f}"


def _grid(header: Sequence[str], body: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in body)]


def _throughput(rows: Sequence[Row]) -> list[str]:
    header = ["workload", "mode", "engine", "execs", "transitions/s", "runs"]
    header += [_PEER_LABEL[p] for p in PEERS] + ["peak RSS MB"]
    body = [
        [
            row.workload,
            _mode(row.mode),
            row.engine,
            f"{row.executions:,}",
            _rate(row),
            str(row.runs),
            *(format_ratio(ratio(row, peer, rows)) for peer in PEERS),
            _mb(row.peak_rss_kb),
        ]
        for row in rows
        if row.workload != "wait_fleet"
    ]
    return _grid(header, body, right={3, 4, 5, 6, 7, 8}) if body else []


def _fleet(rows: Sequence[Row]) -> list[str]:
    header = ["engine", "execs", "waiting at once", "KB per waiting", "threads per waiting"]
    header += ["all started in s", "all done in s", "peak RSS MB"]
    body = []
    for row in rows:
        if row.workload != "wait_fleet":
            continue
        if not row.measured:
            body.append([row.engine, f"{row.executions:,}", _rate(row), "", "", "", "", ""])
            continue
        body.append(
            [
                row.engine,
                f"{row.executions:,}",
                "-" if row.waiting is None else f"{row.waiting:,}",
                "-" if row.bytes_per_waiting is None else f"{row.bytes_per_waiting / 1024:.1f}",
                "-" if row.threads_per_waiting is None else f"{row.threads_per_waiting:.1f}",
                f"{row.start_s:.2f}" if row.start_s is not None else "-",
                f"{row.all_done_s:.2f}" if row.all_done_s is not None else "-",
                _mb(row.peak_rss_kb),
            ]
        )
    return _grid(header, body, right={1, 2, 3, 4, 5, 6, 7}) if body else []


def _notes(rows: Sequence[Row]) -> list[str]:
    """One line per distinct remark, naming the rows it is about."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        where = f"{row.workload} {row.mode}"
        if row.note:
            grouped.setdefault((row.engine, row.note), []).append(where)
        if (
            row.output_ok
            and row.history_transitions is not None
            and row.transitions_per_execution is not None
            and row.history_transitions != row.transitions_per_execution
        ):
            remark = (
                f"its history shows {row.history_transitions} *StateEntered events per "
                f"execution, the manifest {row.transitions_per_execution}; transitions/s counts "
                "the manifest's figure for every engine"
            )
            grouped.setdefault((row.engine, remark), []).append(where)
    return [
        f"* {engine} ({', '.join(dict.fromkeys(places))}): {note}"
        for (engine, note), places in grouped.items()
    ]


def format_report(rows: Sequence[Row], header: Sequence[str] = ()) -> str:
    lines = list(header)
    table = _throughput(rows)
    if table:
        lines += ["", "Throughput (median of the runs; ratios = flowstate / peer):", *table]
    fleet = _fleet(rows)
    if fleet:
        hold = next((r.hold_seconds for r in rows if r.hold_seconds), None)
        lines += ["", f"wait_fleet (Wait held at {hold} s while memory is read):", *fleet]
    notes = _notes(rows)
    if notes:
        lines += ["", "Notes:", *notes]
    versions = sorted({row.version for row in rows if row.version})
    lines += ["", "Versions: " + "; ".join(versions)]
    return "\n".join(lines) + "\n"
