"""Python handlers with the behaviours of the corpus's Lambda functions (``lambdas.json``).

The corpus names each function's behaviour; a runner registers, per case, the handler of that
behaviour under the function's name. The handlers that raise are compiled as AWS ran them —
from ``/var/task/handler.py``, raising on the lines ``lambdas.json`` gives — so that the stack
trace flowstate builds from the real exception is the one Lambda recorded.
"""

from __future__ import annotations

import asyncio
import linecache
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["BEHAVIOURS", "functions_for"]

_HANDLER_FILE = "/var/task/handler.py"

# One handler.py, as ``lambdas.json`` describes it: ``raise_exception`` raises on line 2,
# ``raise_custom_exception`` on line 9. Each behaviour is compiled from its own lines (the
# others blank, so line numbers hold); tracebacks read the text through ``linecache``.
_SOURCE = [
    "def handler(event, context):",
    '    raise Exception("Some exception was raised.")',
    "",
    "",
    "class CustomException(Exception):",
    "    pass",
    "",
    "def handler(event, context):",
    "    raise CustomException()",
]


def _register_source() -> None:
    lines = [line + "\n" for line in _SOURCE]
    # mtime None: linecache.checkcache keeps the entry (no file to compare it with).
    linecache.cache[_HANDLER_FILE] = (sum(map(len, lines)), None, lines, _HANDLER_FILE)


def _compile(first: int, last: int) -> Callable[[Any, Any], Any]:
    text = "\n" * (first - 1) + "\n".join(_SOURCE[first - 1 : last]) + "\n"
    namespace: dict[str, Any] = {"__name__": "handler"}
    exec(compile(text, _HANDLER_FILE, "exec"), namespace)
    _register_source()
    handler: Callable[[Any, Any], Any] = namespace["handler"]
    return handler


def identity(event: Any, context: Any) -> Any:
    return event


def return_bytes_json_string(event: Any, context: Any) -> bytes:
    return b'"HelloWorld!"'  # a raw response payload: the JSON string "HelloWorld!"


def return_decorated_input(event: Any, context: Any) -> str:
    return "input-event-" + str(event)


def return_hello_world_object(event: Any, context: Any) -> Any:
    return {"Return": "HelloWorld"}


def return_large_bytes(event: Any, context: Any) -> bytes:
    return b"a" * (257 * 1024)  # raw, not JSON, and over the 256 KiB payload limit


async def sleep_60s_then_identity(event: Any, context: Any) -> Any:
    # async: when its Task times out the call is cancelled, not left sleeping on a thread.
    await asyncio.sleep(60)
    return event


BEHAVIOURS: Mapping[str, Callable[[Any, Any], Any]] = {
    "identity": identity,
    "raise_custom_exception": _compile(5, 9),
    "raise_exception": _compile(1, 2),
    "return_bytes_json_string": return_bytes_json_string,
    "return_decorated_input": return_decorated_input,
    "return_hello_world_object": return_hello_world_object,
    "return_large_bytes": return_large_bytes,
    "sleep_60s_then_identity": sleep_60s_then_identity,
}


def functions_for(lambda_functions: Any) -> dict[str, Callable[[Any, Any], Any]]:
    """A case's ``lambda_functions`` → ``{function name: handler of its behaviour}``."""
    out = {}
    for entry in lambda_functions:
        handler = BEHAVIOURS.get(entry.get("behaviour", ""))
        if handler is not None:
            out[entry["function_name"]] = handler
    return out
