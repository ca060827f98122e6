"""What the orchestrator tells a driver (arguments) and what a driver answers (one JSON line).

A driver runs one engine on one workload in one mode ``--repeat`` times, each time after a
warm-up execution that is not timed, after one whole warm-up run whose time is discarded
(JIT compilers — Node's — and caches are warm for every timed run; wait_fleet, a memory
measurement, has no warm-up run). It prints one line:

    {"engine", "workload", "mode", "executions", "walls": [seconds per run],
     "output_ok", "error", "history_transitions", "version", "note", "fleet"?, "peak_rss_kb"?}

``walls`` are the wall times of the timed units (first start → last execution seen
finished). ``history_transitions`` is the number of ``*StateEntered`` events of the warm-up
execution's history, read back from the engine, to show that history was recorded and that
every engine counts the same transitions. ``fleet`` (wait_fleet only) holds the memory
figures. The Node driver (``aws_local_sfn_driver.mjs``) speaks the same protocol.

Standard library only: moto's interpreter imports this module too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["DriverArgs", "emit", "parse_driver_args", "rss_kb", "timed", "total_runs"]


class DriverArgs(argparse.Namespace):
    engine: str
    workload: str
    mode: str
    executions: int
    repeat: int
    hold_seconds: int


def parse_driver_args(argv: Sequence[str] | None = None) -> DriverArgs:
    parser = argparse.ArgumentParser(description="Run one workload on one engine.")
    parser.add_argument("--engine", required=True)
    parser.add_argument("--workload", required=True)
    parser.add_argument("--mode", required=True)
    parser.add_argument("--executions", type=int, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--hold-seconds", type=int, default=10, help="wait_fleet: the Wait's Seconds, overridden"
    )
    return parser.parse_args(argv, namespace=DriverArgs())


def emit(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def rss_kb() -> int:
    """Resident memory of this process now, in KiB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def total_runs(args: DriverArgs) -> int:
    """The runs to make: ``--repeat`` timed ones after one warm-up run (none for wait_fleet)."""
    return args.repeat if args.mode == "fleet" else args.repeat + 1


def timed(args: DriverArgs, walls: list[float]) -> list[float]:
    """The wall times that count: all but the warm-up run's."""
    return walls if args.mode == "fleet" else walls[1:]
