"""Build flowstate, compiling its hot modules to C with mypyc when it is available.

The interpreter's step, JSONPath and payload handling, and the Task call path are plain,
fully typed Python; mypyc turns them into a C extension per module, which runs the same
code with about a quarter fewer instructions (benchmarks: docs/benchmarks.md). Everything
else stays Python. ``FLOWSTATE_COMPILE=0`` builds the pure-Python package, as does a
machine where mypyc or a C compiler is missing: the compiled modules are an optimisation,
never a requirement.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup

# Kept short on purpose: what a tick runs for every state, and nothing that is loaded once.
COMPILED = [
    "flowstate/interpreter/dataflow.py",
    "flowstate/interpreter/entropy.py",
    "flowstate/interpreter/execution.py",
    "flowstate/interpreter/fanout.py",
    "flowstate/interpreter/frames.py",
    "flowstate/interpreter/history.py",
    "flowstate/interpreter/messages.py",
    "flowstate/interpreter/redrive.py",
    "flowstate/interpreter/retry.py",
    "flowstate/interpreter/snapshot.py",
    "flowstate/interpreter/tasks.py",
    "flowstate/interpreter/tokens.py",
    "flowstate/interpreter/waits.py",
    "flowstate/asl/choice.py",
    "flowstate/asl/intrinsics.py",
    "flowstate/asl/jsonpath_filter.py",
    "flowstate/asl/jsonpath_parser.py",
    "flowstate/asl/jsonpath_selectors.py",
    "flowstate/asl/paths.py",
    "flowstate/asl/scope.py",
    "flowstate/asl/templates.py",
    "flowstate/integrations/dispatch.py",
    "flowstate/integrations/functions.py",
    "flowstate/runtime/eager.py",
    "flowstate/runtime/live.py",
    "flowstate/runtime/stored_history.py",
    "flowstate/storage/chunks.py",
    # (subclasses the compiled Execution: an interpreted class could not)
    "flowstate/service/test_state.py",
]


def extensions() -> list:
    if os.environ.get("FLOWSTATE_COMPILE", "1") == "0":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("flowstate: mypyc not found, building pure Python", file=sys.stderr)
        return []
    # (the build environment has mypy, not the run-time dependencies: their types are Any)
    sources = [f"src/{path}" for path in COMPILED]
    built = mypycify(
        ["--ignore-missing-imports", *sources],
        opt_level="3",
        debug_level="0",
        group_name="flowstate",
    )
    for extension in built:
        extension.optional = True  # no C compiler: the pure-Python package, not a failure
    return built


setup(ext_modules=extensions())
