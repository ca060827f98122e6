"""Process isolation: one call of a function in a process of its own.

The child finds the handler again from where it was defined (its module, or the file it was
loaded from), calls it with the same Lambda-like context and sends back the marshalled result
or the function error, built from the real exception in the child. A call that is abandoned
(its Task timed out) is ended by killing its process.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import multiprocessing
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import ModuleType
from typing import Any

from flowstate.asl.errors import StatesError
from flowstate.integrations.functions import (
    Function,
    FunctionError,
    Handler,
    LambdaContext,
    Reply,
    call_async_handler,
    call_handler,
    options_of,
)

__all__ = ["HandlerRef", "IsolatedCall", "handler_ref"]


@dataclass(frozen=True, slots=True)
class HandlerRef:
    """Where a child process finds a handler: module name, source file, attribute."""

    module: str
    file: str | None
    attribute: str
    name: str  # the registered function name


def handler_ref(fn: Function) -> HandlerRef:
    handler = fn.handler
    module = sys.modules.get(getattr(handler, "__module__", "") or "")
    file = getattr(module, "__file__", None) if module is not None else None
    return HandlerRef(
        getattr(handler, "__module__", "") or "", file, getattr(handler, "__name__", ""), fn.name
    )


def _load_module(ref: HandlerRef) -> ModuleType:
    try:
        return importlib.import_module(ref.module)
    except ImportError:
        if ref.file is None:
            raise
    spec = importlib.util.spec_from_file_location(ref.module, ref.file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {ref.file!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[ref.module] = module
    spec.loader.exec_module(module)
    return module


def _find_handler(ref: HandlerRef) -> Handler:
    module = _load_module(ref)
    namespace = vars(module)
    for candidate in (namespace.get(ref.name), namespace.get(ref.attribute)):
        if callable(candidate):
            return candidate
    for value in namespace.values():
        if callable(value) and options_of(value).name == ref.name:
            return value
    raise ImportError(f"no function {ref.name!r} in {ref.module}")


def _child(conn: Connection, ref: HandlerRef, event: Any, context: LambdaContext) -> None:
    try:
        handler = _find_handler(ref)
        if inspect.iscoroutinefunction(handler):
            import asyncio

            reply = asyncio.run(call_async_handler(handler, event, context))
        else:
            reply = call_handler(handler, event, context)
        conn.send(("ok", reply))
    except FunctionError as failure:
        conn.send(("function_error", failure.payload))
    except StatesError as failure:
        conn.send(("error", failure.error, failure.cause))
    except BaseException as exc:  # the child could not even load the handler
        conn.send(("error", "States.Runtime", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


class IsolatedCall:
    """One call in a spawned process; ``wait`` blocks (run it on a worker thread)."""

    def __init__(self, ref: HandlerRef, event: Any, context: LambdaContext) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._receive, send = ctx.Pipe(duplex=False)
        self._process = ctx.Process(
            target=_child, args=(send, ref, event, context), daemon=True, name=f"fn-{ref.name}"
        )
        self._process.start()
        send.close()

    def wait(self) -> Reply:
        """The reply, or raises the call's ``StatesError`` (``FunctionError`` for the
        function's own)."""
        try:
            message = self._receive.recv()
        except EOFError:
            self._process.join()
            raise StatesError(
                "States.Runtime",
                f"the function's process ended without an answer "
                f"(exit code {self._process.exitcode})",
            ) from None
        finally:
            self._receive.close()
        self._process.join()
        if message[0] == "ok":
            reply: Reply = message[1]
            return reply
        if message[0] == "function_error":
            raise FunctionError(message[1])
        raise StatesError(message[1], message[2])

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
