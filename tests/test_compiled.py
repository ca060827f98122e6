"""The modules setup.py lists are the compiled ones the tests run, and none is stale.

``make test`` builds them with mypyc (setup.py); the build falls back to pure Python where
mypyc or a C compiler is missing, silently by design, so this test is what says that the
suite ran the compiled code. ``FLOWSTATE_COMPILE=0`` builds and tests the pure package.
"""

from __future__ import annotations

import ast
import importlib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def compiled_sources() -> list[str]:
    """setup.py's ``COMPILED`` list, read without running setup.py."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "COMPILED":
            return list(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no COMPILED list")


SOURCES = compiled_sources()
PURE = os.environ.get("FLOWSTATE_COMPILE", "1") == "0"


@pytest.mark.parametrize("source", SOURCES)
def test_module_is_compiled_and_current(source: str) -> None:
    module = importlib.import_module(source.removesuffix(".py").replace("/", "."))
    loaded = Path(module.__file__ or "")
    if PURE:
        assert loaded.suffix == ".py", f"{loaded}: FLOWSTATE_COMPILE=0 but a compiled module"
        return
    assert loaded.suffix == ".so", (
        f"{source} runs as Python: the mypyc build did not happen or failed "
        "(make builds it; FLOWSTATE_COMPILE=0 to test the pure package on purpose)"
    )
    python = ROOT / "src" / source
    assert python.stat().st_mtime <= loaded.stat().st_mtime, (
        f"{python} changed after {loaded.name} was built: the tests would run the old "
        "code (make rebuilds it)"
    )


def test_every_listed_source_exists() -> None:
    missing = [s for s in SOURCES if not (ROOT / "src" / s).is_file()]
    assert not missing
