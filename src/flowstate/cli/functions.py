"""``--functions FILE_OR_MODULE``: load Python callables to serve Lambda tasks."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from flowstate.integrations.functions import options_of

__all__ = ["load_functions"]


def _load_module(spec: str) -> ModuleType:
    path = Path(spec)
    if spec.endswith(".py") or path.is_file():
        name = f"flowstate_functions_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot import {spec!r}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
        return module
    return importlib.import_module(spec)


def load_functions(specs: tuple[str, ...] | list[str]) -> dict[str, Callable[[Any, Any], Any]]:
    """Every public module-level callable, under its attribute name (names need not be
    identifiers: ``globals()["order-verify"] = handler`` registers ``order-verify``), or the
    name ``@flowstate.function(name=...)`` gives it."""
    functions: dict[str, Callable[[Any, Any], Any]] = {}
    for spec in specs:
        module = _load_module(spec)
        for name, value in vars(module).items():
            if name.startswith("_") or not callable(value):
                continue
            if inspect.isclass(value) or inspect.ismodule(value):
                continue
            if getattr(value, "__module__", module.__name__) != module.__name__:
                continue  # imported helpers are not the module's functions
            functions[options_of(value).name or name] = value
    return functions
