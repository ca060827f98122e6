"""Serialise an execution's durable state (frame tree, timers, tasks) and restore it.

The snapshot is plain JSON-compatible data. History events are not part of it: they are an
append-only log the runtime stores beside it. Compiled state machines are referenced by path
(``""`` for the top level, ``"/Par/0"`` for branch 0 of Parallel state ``Par``, ``"/Map/p"``
for a Map's ItemProcessor), so a snapshot is restored against the same definition.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any

from flowstate.asl.model import MapState, ParallelState, StateMachine
from flowstate.interpreter.execution import Execution, ExecutionInfo
from flowstate.interpreter.fanout import FanOut
from flowstate.interpreter.frames import Frame

__all__ = ["SNAPSHOT_VERSION", "dump_execution", "load_execution", "machine_paths"]

SNAPSHOT_VERSION = 1

_FAN_FIELDS = (
    "results",
    "pending",
    "running",
    "next_index",
    "items",
    "input",
    "max_concurrency",
    "distributed",
    "failures",
    "tolerated_count",
    "tolerated_percentage",
    "map_run_arn",
)


def machine_paths(machine: StateMachine, prefix: str = "") -> dict[str, StateMachine]:
    """Every (sub-)machine of a definition by its path."""
    found = {prefix: machine}
    for name, state in machine.states.items():
        if isinstance(state, ParallelState):
            for index, branch in enumerate(state.branches):
                found.update(machine_paths(branch, f"{prefix}/{name}/{index}"))
        elif isinstance(state, MapState) and state.item_processor is not None:
            found.update(machine_paths(state.item_processor, f"{prefix}/{name}/p"))
    return found


# id(machine) -> (machine, {id(sub-machine): path}); the machine is kept so that its id
# cannot be reused. Definitions are few and long-lived (the engine caches them too).
_PATHS: dict[int, tuple[StateMachine, dict[int, str]]] = {}


def _paths_by_id(machine: StateMachine) -> dict[int, str]:
    cached = _PATHS.get(id(machine))
    if cached is None or cached[0] is not machine:
        if len(_PATHS) >= 4096:
            _PATHS.clear()
        paths = {id(m): path for path, m in machine_paths(machine).items()}
        cached = _PATHS[id(machine)] = (machine, paths)
    return cached[1]


# The last instant written and its text: a tick's frames and events share one ``now``.
# (One tuple, swapped whole: a reader on another thread sees a matching pair.)
_last_time: tuple[datetime | None, str | None] = (None, None)


def _time(value: datetime | None) -> str | None:
    global _last_time
    if value is None:
        return None
    last = _last_time
    if value is last[0]:
        return last[1]
    text = value.isoformat()
    _last_time = (value, text)
    return text


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _dump_frame(frame: Frame, paths: dict[int, str]) -> dict[str, Any]:
    fan = frame.map_state
    return _without_none(
        {
            "id": frame.id,
            "machine": paths[id(frame.machine)],
            "state": frame.state_name,
            "raw_input": frame.raw_input,
            "effective_input": frame.effective_input,
            "phase": frame.phase,
            "entered_event_id": frame.entered_event_id,
            "entered_time": _time(frame.entered_time),
            "last_event_id": frame.last_event_id,
            "attempts": frame.attempts,
            "parent": frame.parent.id if frame.parent is not None else None,
            "child_index": frame.child_index,
            "silent": frame.silent,
            "variables": frame.variables,
            "task_id": frame.task_id,
            "timer_id": frame.timer_id,
            "children": [child.id for child in frame.children],
            "fan": {name: getattr(fan, name) for name in _FAN_FIELDS} if fan is not None else None,
            "context_extra": frame.context_extra,
            "output": frame.output,
            "failed": frame.failed,
            "error": frame.error,
            "cause": frame.cause,
            "aborted_in": frame.aborted_in,
        }
    )


def _without_none(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without its None members: the loader reads a missing member as None, and a
    snapshot without ``null`` is written without a second look for NaN (see ``dump_json``)."""
    return {key: value for key, value in data.items() if value is not None}


def _all_frames(root: Frame) -> list[Frame]:
    out: list[Frame] = []
    stack = [root]
    while stack:
        frame = stack.pop()
        out.append(frame)
        stack.extend(reversed(frame.children))
    return out


def dump_execution(execution: Execution) -> dict[str, Any]:
    """The durable state of ``execution`` as JSON-compatible data."""
    paths = _paths_by_id(execution.machine)
    info = execution.info
    return _without_none(
        {
            "version": SNAPSHOT_VERSION,
            "info": {
                "arn": info.arn,
                "name": info.name,
                "state_machine_arn": info.state_machine_arn,
                "state_machine_name": info.state_machine_name,
                "role_arn": info.role_arn,
                "start_time": _time(info.start_time),
                "type": info.type,
                "redrive_count": info.redrive_count,
                "synchronous": info.synchronous,
            },
            "input": execution.input,
            "entropy": execution.entropy.state,
            "event_count": execution.event_count,
            "status": execution.status,
            "output": execution.output,
            "error": execution.error,
            "cause": execution.cause,
            "stop_time": _time(execution.stop_time),
            "next_child": execution._next_child,
            "frames": [_dump_frame(frame, paths) for frame in _all_frames(execution.root)],
            "tasks": {task_id: frame.id for task_id, frame in execution._tasks.items()},
            "timers": {timer_id: frame.id for timer_id, frame in execution._timers.items()},
            "ready": [frame.id for frame in execution._ready],
        }
    )


def load_execution(
    machine: StateMachine, data: dict[str, Any], *, record_history: bool = True
) -> Execution:
    """Rebuild an execution from ``dump_execution`` output and the same definition."""
    if data.get("version") != SNAPSHOT_VERSION:
        raise ValueError(
            f"snapshot version {data.get('version')!r} is not supported "
            f"(this flowstate reads version {SNAPSHOT_VERSION})"
        )
    raw_info = data["info"]
    start_time = _parse_time(raw_info["start_time"])
    assert start_time is not None
    info = ExecutionInfo(
        arn=raw_info["arn"],
        name=raw_info["name"],
        state_machine_arn=raw_info["state_machine_arn"],
        state_machine_name=raw_info["state_machine_name"],
        role_arn=raw_info["role_arn"],
        start_time=start_time,
        type=raw_info["type"],
        redrive_count=raw_info["redrive_count"],
        synchronous=raw_info["synchronous"],
    )
    execution = Execution(machine, info, data.get("input"), record_history=record_history)
    execution.entropy.state = data["entropy"]
    execution.event_count = data["event_count"]
    execution.status = data["status"]
    execution.output = data.get("output")
    execution.error = data.get("error")
    execution.cause = data.get("cause")
    execution.stop_time = _parse_time(data.get("stop_time"))
    execution._next_child = data["next_child"]
    paths = machine_paths(machine)
    frames: dict[str, Frame] = {}
    for raw in data["frames"]:
        parent = frames[raw["parent"]] if raw.get("parent") is not None else None
        frame = Frame(raw["id"], paths[raw["machine"]], raw.get("raw_input"), parent=parent)
        frame.goto(raw.get("state"), raw.get("raw_input"))
        frame.effective_input = raw.get("effective_input")
        frame.phase = raw.get("phase")
        frame.entered_event_id = raw.get("entered_event_id")
        frame.entered_time = _parse_time(raw.get("entered_time"))
        frame.last_event_id = raw["last_event_id"]
        frame.attempts = list(raw["attempts"])
        frame.child_index = raw.get("child_index")
        frame.silent = raw["silent"]
        frame.variables.update(raw["variables"])
        frame.task_id = raw.get("task_id")
        frame.timer_id = raw.get("timer_id")
        if raw.get("fan") is not None:
            fan = FanOut(0)
            for name in _FAN_FIELDS:
                setattr(fan, name, raw["fan"][name])
            frame.map_state = fan
        frame.context_extra = raw.get("context_extra")
        frame.output = raw.get("output")
        frame.failed = raw.get("failed")
        frame.error = raw.get("error")
        frame.cause = raw.get("cause")
        frame.aborted_in = raw.get("aborted_in")  # absent from snapshots of older versions
        frames[frame.id] = frame
    for raw in data["frames"]:
        frames[raw["id"]].children = [frames[child] for child in raw["children"]]
    execution.root = frames[data["frames"][0]["id"]]
    execution._tasks = {task_id: frames[fid] for task_id, fid in data["tasks"].items()}
    execution._timers = {timer_id: frames[fid] for timer_id, fid in data["timers"].items()}
    # A frame can be made ready after the end of its execution and of its parent's fan-out:
    # such an id is in no tree, and there is nothing for it to do.
    execution._ready = deque(frames[fid] for fid in data["ready"] if fid in frames)
    return execution
