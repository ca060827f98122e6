"""``--functions FILE_OR_MODULE``: which module-level callables become Lambda functions."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from flowstate.cli.functions import load_functions

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _module(tmp_path: Path, text: str, name: str = "handlers.py") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_public_functions_are_registered_under_their_names(tmp_path: Path) -> None:
    path = _module(
        tmp_path,
        "def verify(event, context):\n    return 'v'\n"
        "def _private(event, context):\n    return 'p'\n",
    )
    functions = load_functions([path])
    assert set(functions) == {"verify"}
    assert functions["verify"]({}, None) == "v"


def test_non_identifier_names_bound_through_globals(tmp_path: Path) -> None:
    path = _module(
        tmp_path,
        "def _verify(event, context):\n    return event['n'] + 1\n"
        'globals()["order-verify"] = _verify\n'
        'globals()["v2.handler"] = _verify\n',
    )
    functions = load_functions([path])
    assert set(functions) == {"order-verify", "v2.handler"}
    assert functions["order-verify"]({"n": 1}, None) == 2


def test_classes_modules_constants_and_imports_are_not_functions(tmp_path: Path) -> None:
    path = _module(
        tmp_path,
        "import json\n"
        "from os.path import join\n"
        "from functools import partial\n"
        "LIMIT = 3\n"
        "class Handler:\n    pass\n"
        "def real(event, context):\n    return 1\n",
    )
    assert set(load_functions([path])) == {"real"}


def test_the_example_order_functions(tmp_path: Path) -> None:
    functions = load_functions([str(EXAMPLES / "order_functions.py")])
    assert set(functions) == {
        "verify-payment",
        "check-inventory",
        "send-confirmation",
        "record-order",
    }
    stock = functions["check-inventory"]({"items": [{"sku": "book", "quantity": 1}]}, None)
    assert stock == {"available": True, "missing": []}


def test_several_files_merge(tmp_path: Path) -> None:
    first = _module(tmp_path, "def a(e, c):\n    return 'a'\n", "first.py")
    second = _module(tmp_path, "def b(e, c):\n    return 'b'\n", "second.py")
    assert set(load_functions([first, second])) == {"a", "b"}


def test_a_later_file_overrides_an_earlier_name(tmp_path: Path) -> None:
    first = _module(tmp_path, "def f(e, c):\n    return 1\n", "one.py")
    second = _module(tmp_path, "def f(e, c):\n    return 2\n", "two.py")
    assert load_functions([first, second])["f"]({}, None) == 2


def test_dotted_module_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "fs_test_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text("def work(event, context):\n    return 'worked'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        functions = load_functions(["fs_test_pkg.tasks"])
        assert functions["work"]({}, None) == "worked"
    finally:
        for name in [m for m in sys.modules if m.startswith("fs_test_pkg")]:
            del sys.modules[name]


def test_missing_module_raises_import_error() -> None:
    with pytest.raises(ImportError):
        load_functions(["fs_no_such_module_anywhere"])


def test_syntax_error_propagates(tmp_path: Path) -> None:
    with pytest.raises(SyntaxError):
        load_functions([_module(tmp_path, "def broken(:\n")])


def test_loading_a_file_twice_runs_it_fresh(tmp_path: Path) -> None:
    # Module state (such as the example's attempt counter) does not leak between loads.
    path = _module(
        tmp_path,
        "_calls = []\ndef count(event, context):\n    _calls.append(1)\n    return len(_calls)\n",
    )
    first = load_functions([path])["count"]
    assert first({}, None) == 1
    assert first({}, None) == 2
    assert load_functions([path])["count"]({}, None) == 1
