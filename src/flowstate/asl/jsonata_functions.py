"""The functions AWS Step Functions adds to JSONata, and the ones it takes away.

AWS binds ``$partition``, ``$range``, ``$hash``, ``$random`` (with an optional seed), ``$uuid``
and ``$parse`` into every expression and refuses ``$eval`` (a call fails with ``T1006``, as a call
of an unknown function does). ``$now()`` and ``$millis()`` are rebound so that no clock is read
here: they answer the time the state was entered, taken from ``$states.context``.

The functions are registered on each compiled expression that names them (see ``install``), so an
expression that uses none of them pays nothing. Those that need something from the evaluation
(entropy, the entered time) read it from ``CURRENT``, a context variable the adapter sets around
the evaluation: safe with threads and asyncio alike, and no state lives on the shared compiled
expression.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any

from flowstate.asl.scope import Entropy

__all__ = ["CURRENT", "CallContext", "HostError", "install", "java_random_double"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HASHES = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}


class HostError(Exception):
    """A JSONata error raised by one of our functions: ``code`` and jsonata-js wording."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class CallContext:
    """What the AWS functions may use during one evaluation."""

    __slots__ = ("entropy", "states")

    def __init__(self, states: Mapping[str, Any] | None, entropy: Entropy | None) -> None:
        self.states = states
        self.entropy = entropy


CURRENT: ContextVar[CallContext | None] = ContextVar("flowstate_jsonata_call", default=None)


def _context() -> CallContext:
    ctx = CURRENT.get()
    if ctx is None:  # only reachable if an expression is evaluated outside the adapter
        raise HostError("D3137", "no evaluation context")
    return ctx


def _signature_error(name: str, index: int) -> HostError:
    # jsonata-js T0410 wording, as AWS reports it for its own functions too.
    return HostError(
        "T0410", f'Argument {index} of function "{name}" does not match function signature'
    )


def _arity(name: str, args: tuple[Any, ...], least: int, most: int) -> None:
    if len(args) > most:
        raise _signature_error(name, most + 1)
    if len(args) < least:
        raise _signature_error(name, len(args) + 1)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(name: str, index: int, value: Any) -> int:
    if not _is_number(value):
        raise _signature_error(name, index)
    if isinstance(value, float):
        if not value.is_integer():
            raise _signature_error(name, index)
        return int(value)
    return int(value)


# --- the functions --------------------------------------------------------------------------


def partition(*args: Any) -> Any:
    """``$partition(array, size)``: chunks of ``size`` items, the last one possibly shorter."""
    _arity("partition", args, 2, 2)
    array, size = args
    if array is None:
        raise _signature_error("partition", 1)
    if not isinstance(array, list):
        array = [array]  # JSONata signatures treat a single value as a one-item array
    chunk = _integer("partition", 2, size)
    if chunk <= 0:
        raise _signature_error("partition", 2)
    return [array[i : i + chunk] for i in range(0, len(array), chunk)]


def range_(*args: Any) -> Any:
    """``$range(start, end, step)``: numbers from ``start`` to ``end`` inclusive.

    AWS answers a one-item range with the bare number (``$range(1, 9, 9)`` is ``1``, recorded):
    the result behaves as a JSONata sequence, whose singletons collapse.
    """
    _arity("range", args, 3, 3)
    start = _integer("range", 1, args[0])
    end = _integer("range", 2, args[1])
    step = _integer("range", 3, args[2])
    if step == 0:
        raise _signature_error("range", 3)
    values = list(range(start, end + (1 if step > 0 else -1), step))
    if len(values) == 1:
        return values[0]
    return values


def hash_(*args: Any) -> str:
    """``$hash(data, algorithm)``: hex digest of the UTF-8 string with MD5 or SHA-1/256/384/512."""
    _arity("hash", args, 2, 2)
    data, algorithm = args
    if not isinstance(data, str):
        raise _signature_error("hash", 1)
    if not isinstance(algorithm, str):
        raise _signature_error("hash", 2)
    name = _HASHES.get(algorithm)
    if name is None:
        # wording not recorded against AWS; the list mirrors the States.Hash documentation
        raise HostError(
            "D3137",
            f"The hash algorithm '{algorithm}' is not supported. Supported algorithms: "
            + ", ".join(_HASHES),
        )
    return hashlib.new(name, data.encode("utf-8")).hexdigest()


def random_(*args: Any) -> float:
    """``$random([seed])``: a float in [0, 1); with a seed, always the same one for that seed."""
    _arity("random", args, 0, 1)
    if args and args[0] is not None:
        return java_random_double(_integer("random", 1, args[0]))
    entropy = _context().entropy
    if entropy is None:
        raise HostError("D3137", "$random() needs an entropy source and none was handed in")
    return entropy.random()


def uuid_(*args: Any) -> str:
    """``$uuid()``: a version-4 UUID drawn from the entropy handed in."""
    _arity("uuid", args, 0, 0)
    entropy = _context().entropy
    if entropy is None:
        raise HostError("D3137", "$uuid() needs an entropy source and none was handed in")
    return entropy.uuid4()


def parse(*args: Any) -> Any:
    """``$parse(text)``: the JSON value a string holds (AWS's replacement for ``$eval``)."""
    _arity("parse", args, 1, 1)
    text = args[0]
    if not isinstance(text, str):
        raise _signature_error("parse", 1)
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError as err:
        # wording not recorded against AWS
        raise HostError("D3137", f"Unable to parse the JSON string: {err}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def eval_(*args: Any) -> Any:
    """``$eval`` is not available on AWS; a call fails as the call of a non-function does."""
    raise HostError("T1006", "Attempted to invoke a non-function")


def java_random_double(seed: int) -> float:
    """The first ``nextDouble()`` of ``java.util.Random(seed)``: a pure, seeded generator.

    AWS runs on the JVM; using the JVM's documented linear congruential generator gives the same
    value for the same seed on every run and every machine, without a random module.
    """
    mask = (1 << 48) - 1
    state = (seed ^ 0x5DEECE66D) & mask

    def next_bits(bits: int) -> int:
        nonlocal state
        state = (state * 0x5DEECE66D + 0xB) & mask
        return state >> (48 - bits)

    high = next_bits(26)
    low = next_bits(27)
    return ((high << 27) + low) * (2.0**-53)


# --- $now and $millis -----------------------------------------------------------------------


def _entered_millis() -> int:
    """Milliseconds since the epoch at which the state was entered (else the execution began).

    AWS evaluates ``$now()`` when the state runs; the entered time is the closest instant the
    interpreter hands in, and for every state that evaluates at entry it is the same instant.
    """
    states = _context().states or {}
    context = states.get("context") if isinstance(states, Mapping) else None
    stamp = None
    if isinstance(context, Mapping):
        for section, key in (("State", "EnteredTime"), ("Execution", "StartTime")):
            part = context.get(section)
            if isinstance(part, Mapping) and isinstance(part.get(key), str):
                stamp = part[key]
                break
    if stamp is None:
        raise HostError("D3137", "$now() and $millis() need $states.context with a time")
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def millis(*args: Any) -> int:
    _arity("millis", args, 0, 0)
    return _entered_millis()


class _FromMillis(threading.local):
    """Compiled ``$fromMillis`` calls for pictures, by arity, per thread (jsonatapy's
    compiled objects may only be used, and dropped, on the thread that made them)."""

    def __init__(self) -> None:
        self.by_arity: dict[int, Any] = {}


_from_millis = _FromMillis()


def now(*args: Any) -> str:
    _arity("now", args, 0, 2)
    stamp = _entered_millis()
    if not args or args[0] is None:
        moment = _EPOCH + timedelta(milliseconds=stamp)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp % 1000:03d}Z"
    # $now(picture, timezone) is $fromMillis of the same instant: let JSONata format it.
    arity = 3 if len(args) > 1 and args[1] is not None else 2
    compiled = _from_millis.by_arity.get(arity)
    if compiled is None:
        import jsonatapy

        compiled = jsonatapy.compile(
            "$fromMillis($m, $p, $t)" if arity == 3 else "$fromMillis($m, $p)"
        )
        _from_millis.by_arity[arity] = compiled
    bindings = {"m": stamp, "p": args[0]}
    if arity == 3:
        bindings["t"] = args[1]
    return str(compiled.evaluate(None, bindings))


# --- registration ---------------------------------------------------------------------------

# name -> (function, replaces a JSONata built-in)
FUNCTIONS: dict[str, tuple[Callable[..., Any], bool]] = {
    "partition": (partition, False),
    "range": (range_, False),
    "hash": (hash_, False),
    "uuid": (uuid_, False),
    "parse": (parse, False),
    "random": (random_, True),
    "eval": (eval_, True),
    "now": (now, True),
    "millis": (millis, True),
}
_NAMES = re.compile(r"\$(" + "|".join(FUNCTIONS) + r")\b")


def install(compiled: Any, body: str) -> bool:
    """Register on ``compiled`` the functions ``body`` names; True when any was registered.

    A function can only be reached through its ``$name`` token (JSONata has no dynamic lookup
    of functions by string), so scanning the text is enough.
    """
    names = set(_NAMES.findall(body))
    for name in names:
        function, replaces_builtin = FUNCTIONS[name]
        if replaces_builtin:
            compiled.register_override(name, function)
        else:
            compiled.register(name, function)
    return bool(names)
