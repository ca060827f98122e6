"""The JSONata adapter: ``{% expr %}`` strings and JSON templates holding them.

Expressions are compiled once, when the definition is loaded, by ``jsonatapy`` (the Rust port of
jsonata-js; chosen by measurement, see ``docs/jsonata.md``). An evaluation binds ``$states``
(``input``, ``result``, ``errorOutput``, ``context``) and the workflow variables visible to the
state, and answers plain JSON values.

Failures carry AWS's wording (``States.QueryEvaluationError``), without the prefix
``An error occurred while executing the state ...`` that the interpreter adds:

* ``The JSONata expression '<expr>' specified for the field '<field>' returned nothing
  (undefined).``
* ``... returned an unsupported result type.`` (a function)
* ``... threw an error during evaluation. <code>: <message>``
* ``... returned an unexpected result type. Expected 'array', but was 'number' for value: 1``
  (built by the caller that knows the expected type, through ``unexpected_type``)
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import jsonatapy

from flowstate.asl import jsonata_functions
from flowstate.asl.errors import QUERY_EVALUATION_ERROR, EvaluationError, InvalidExpression
from flowstate.asl.scope import Entropy

__all__ = [
    "UNDEFINED",
    "InvalidJSONataExpression",
    "JSONataExpression",
    "JSONataTemplate",
    "compile_expression",
    "compile_raw",
    "compile_template",
    "is_expression",
    "jsonata_type_name",
]

# AWS: an expression that runs away fails the state instead of holding the execution for ever.
# AWS's own bound is not documented; this one only guards the engine.
TIMEOUT_MS = 10_000

INVALID_JSONATA_EXPRESSION = "INVALID_JSONATA_EXPRESSION"


class InvalidJSONataExpression(InvalidExpression):
    """A ``{% %}`` that does not parse. ``message`` is AWS's (the parser's text without its
    code); ``jsonata_code`` keeps the code (``S0202``...) for tools and tests."""

    def __init__(self, message: str, jsonata_code: str | None) -> None:
        super().__init__(message, code=INVALID_JSONATA_EXPRESSION)
        self.jsonata_code = jsonata_code


class _Undefined:
    """JSONata ``undefined`` (no value at all), distinct from JSON ``null``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Any = _Undefined()


def is_expression(value: Any) -> bool:
    """True for a string AWS treats as JSONata: it starts with ``{%`` and ends with ``%}``.

    AWS: no trimming; a leading or trailing space makes the string a literal.
    """
    return isinstance(value, str) and len(value) >= 4 and value[:2] == "{%" and value[-2:] == "%}"


def jsonata_type_name(value: Any) -> str:
    """The JSON type of ``value`` as AWS names it in messages (``Expected 'array', but was ...``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object"


# --- errors ---------------------------------------------------------------------------------

_CODE = re.compile(r"\b([STDU]\d{4}): ?(.*)", re.DOTALL)
_HOST_PREFIX = re.compile(r"^host function raised \w+: ")
# jsonatapy names tokens by kind where jsonata-js shows the symbol, JSON-quoted.
_TOKEN_NAMES = {
    "LeftBracket": "[",
    "RightBracket": "]",
    "LeftParen": "(",
    "RightParen": ")",
    "LeftBrace": "{",
    "RightBrace": "}",
    "Colon": ":",
    "Semicolon": ";",
    "Comma": ",",
    "Dot": ".",
    "At": "@",
    "Hash": "#",
    "GreaterThan": ">",
    "LessThan": "<",
    "Question": "?",
    "Equal": "=",
    "Assign": ":=",
}
# jsonata-js 2.x texts for codes whose message has no parameter, where jsonatapy adds detail.
_JS_MESSAGES = {
    "T1006": "Attempted to invoke a non-function",
    "T1008": "Attempted to partially apply a non-function",
    "T2006": "The right side of the function application operator ~> must be a function",
}


def _split_error(text: str) -> tuple[str | None, str]:
    """``(code, message)`` in jsonata-js form from a jsonatapy error text."""
    text = _HOST_PREFIX.sub("", text)
    match = _CODE.search(text)
    if match is None:
        if "Unclosed comment" in text:  # jsonatapy gives this one no code
            return "S0106", "Comment has no closing tag"
        return None, text
    code, message = match.group(1), match.group(2)
    if code in _JS_MESSAGES:
        message = _JS_MESSAGES[code]
    elif code in ("S0202", "S0211", "S0201"):
        message = re.sub(
            r"\b(" + "|".join(_TOKEN_NAMES) + r")\b",
            lambda m: json.dumps(_TOKEN_NAMES[m.group(1)]),
            message,
        )
    return code, message


# --- compiled expressions -------------------------------------------------------------------


class _Compiled(threading.local):
    """This thread's compiled expressions. jsonatapy's compiled objects may only be used, and
    dropped, on the thread that made them: each thread compiles its own (once, then from
    this LRU), and only that thread ever evicts (drops) them."""

    def __init__(self) -> None:
        self.cache: OrderedDict[tuple[str, int, int | None], tuple[Any, bool]] = OrderedDict()


_HERE = _Compiled()
_CACHE_SIZE = 4096  # compiled expressions kept per thread


def _compile_here(key: tuple[str, int, int | None]) -> tuple[Any, bool]:
    """(compiled, uses host functions) for ``key`` (body, timeout, depth), on this thread."""
    cache = _HERE.cache
    found = cache.get(key)
    if found is not None:
        cache.move_to_end(key)
        return found
    body, timeout_ms, max_depth = key
    compiled = jsonatapy.compile(body, timeout=timeout_ms, max_stack_depth=max_depth)
    found = cache[key] = (compiled, jsonata_functions.install(compiled, body))
    if len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return found


class JSONataExpression:
    """One compiled ``{% expr %}``; ``evaluate`` answers its value or raises ``EvaluationError``.

    It holds no compiled object itself (see ``_Compiled``): definitions are parsed on one
    thread and run on another."""

    __slots__ = ("_key", "_uses_host", "body", "field", "text")

    def __init__(
        self, text: str, body: str, field: str, key: tuple[str, int, int | None], uses_host: bool
    ) -> None:
        self.text = text
        self.body = body  # the expression without ``{% %}``, as AWS quotes it
        self.field = field
        self._key = key
        self._uses_host = uses_host

    def __repr__(self) -> str:
        return f"JSONataExpression({self.text!r}, field={self.field!r})"

    def evaluate(
        self,
        states: Mapping[str, Any],
        variables: Mapping[str, Any] | None,
        entropy: Entropy | None = None,
    ) -> Any:
        """The value of the expression with ``$states`` and the variables bound.

        Undefined results and function results are errors, as on AWS.
        """
        return self.evaluate_at(states, variables, entropy, self.field)

    def evaluate_at(
        self,
        states: Mapping[str, Any],
        variables: Mapping[str, Any] | None,
        entropy: Entropy | None,
        field: str,
    ) -> Any:
        """``evaluate``, reporting failures against ``field`` (a template's nested path)."""
        bindings = dict(variables) if variables else {}
        bindings["states"] = states if isinstance(states, dict) else dict(states)
        result = self._run(None, bindings, states, entropy, field)
        if result is UNDEFINED:
            raise EvaluationError(
                QUERY_EVALUATION_ERROR,
                f"The JSONata expression '{self.body}' specified for the field '{field}' "
                "returned nothing (undefined).",
            )
        return result

    def evaluate_raw(
        self, input: Any, bindings: Mapping[str, Any], *, has_input: bool = True
    ) -> Any:
        """Evaluate with ``input`` as the context item ``$`` and plain bindings (the reference
        suite's calling convention); answers ``UNDEFINED`` instead of raising for it."""
        text = json.dumps(input) if has_input else None
        return self._run(text, dict(bindings), None, None, self.field, raw=True)

    def unexpected_type(
        self, expected: str, value: Any, field: str | None = None
    ) -> EvaluationError:
        """The error for a result of the wrong JSON type (``expected``: ``'array'`` etc.)."""
        shown = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return EvaluationError(
            QUERY_EVALUATION_ERROR,
            f"The JSONata expression '{self.body}' specified for the field "
            f"'{field or self.field}' returned an unexpected result type. Expected "
            f"'{expected}', but was '{jsonata_type_name(value)}' for value: {shown}",
        )

    def _run(
        self,
        input_text: str | None,
        bindings: dict[str, Any],
        states: Mapping[str, Any] | None,
        entropy: Entropy | None,
        field: str,
        raw: bool = False,
    ) -> Any:
        compiled = _compile_here(self._key)[0]
        token = None
        if self._uses_host:
            token = jsonata_functions.CURRENT.set(jsonata_functions.CallContext(states, entropy))
        try:
            if not raw:
                # Python values out: the fastest path. It answers None for undefined, null and
                # a function alike, so only then ask again for JSON text, which tells them
                # apart (undefined: None, null: "null", a function: "").
                # Deviation: here the context item ``$`` is null, not undefined; AWS refuses
                # top-level references to it at validation, so only an implicit use (``$trim()``
                # with no argument) can tell.
                result = compiled.evaluate(None, bindings)
                if result is not None:
                    if result.__class__ is float and not math.isfinite(result):
                        return None  # jsonata-js: JSON.stringify(Infinity) is null
                    return result
            text = compiled.evaluate_json_or_none(input_text, bindings)
            if text == '""' and not raw:
                raise self._unsupported(field)
        except ValueError as err:
            raise self._threw(str(err), field) from None
        except (TypeError, OverflowError) as err:
            # a binding that is not JSON (e.g. an integer beyond 64 bits)
            raise self._threw(str(err), field) from None
        finally:
            if token is not None:
                jsonata_functions.CURRENT.reset(token)
        if text is None:
            return UNDEFINED
        return json.loads(text)

    def _unsupported(self, field: str) -> EvaluationError:
        return EvaluationError(
            QUERY_EVALUATION_ERROR,
            f"The JSONata expression '{self.body}' specified for the field '{field}' "
            "returned an unsupported result type.",
        )

    def _threw(self, text: str, field: str) -> EvaluationError:
        code, message = _split_error(text)
        head = f"The JSONata expression '{self.body}' specified for the field '{field}' threw an error during evaluation"
        return EvaluationError(
            QUERY_EVALUATION_ERROR,
            f"{head}. {code}: {message}" if code else f"{head}: {message}",
        )


def compile_raw(
    body: str, *, field: str = "", timeout_ms: int = TIMEOUT_MS, max_depth: int | None = None
) -> JSONataExpression:
    """Compile a bare JSONata expression (no ``{% %}``) with the AWS functions bound."""
    key = (body, timeout_ms, max_depth)
    try:
        uses_host = _compile_here(key)[1]
    except ValueError as err:
        code, message = _split_error(str(err))
        # AWS reports the parser's message without its code (INVALID_JSONATA_EXPRESSION).
        raise InvalidJSONataExpression(message, code) from None
    return JSONataExpression(body, body, field, key, uses_host)


def compile_expression(text: str, *, field: str) -> JSONataExpression:
    """Compile ``{% expr %}`` once; raises ``InvalidExpression`` for a syntax error."""
    if not is_expression(text):
        raise InvalidExpression(f"The value for the field '{field}' must be a JSONata expression")
    body = text[2:-2].strip()
    compiled = compile_raw(body, field=field)
    compiled.text = text
    return compiled


# --- templates ------------------------------------------------------------------------------


def _copy(value: Any) -> Any:
    # A constant part handed out must not be shared between results: callers may mutate them.
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


class JSONataTemplate:
    """A JSON value (Arguments, Output, Assign, ItemSelector...) whose ``{% %}`` strings are
    evaluated; every other part is a constant, built once."""

    __slots__ = ("_node", "field", "is_constant")

    def __init__(self, node: Any, field: str, is_constant: bool) -> None:
        self._node = node
        self.field = field
        self.is_constant = is_constant

    def __repr__(self) -> str:
        return f"JSONataTemplate(field={self.field!r})"

    def evaluate(
        self,
        states: Mapping[str, Any],
        variables: Mapping[str, Any] | None,
        entropy: Entropy | None = None,
    ) -> Any:
        """The template's value; an expression inside that returns nothing is an error that
        names its nested field (``Output/result``)."""
        if self.is_constant:
            return _copy(self._node)
        return _build(self._node, states, variables, entropy)


class _Leaf:
    __slots__ = ("expression", "field")

    def __init__(self, expression: JSONataExpression, field: str) -> None:
        self.expression = expression
        self.field = field


class _Object:
    __slots__ = ("items",)

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        self.items = items


class _Array:
    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items


class _Constant:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _build(
    node: Any,
    states: Mapping[str, Any],
    variables: Mapping[str, Any] | None,
    entropy: Entropy | None,
) -> Any:
    if isinstance(node, _Leaf):
        return node.expression.evaluate_at(states, variables, entropy, node.field)
    if isinstance(node, _Object):
        return {key: _build(child, states, variables, entropy) for key, child in node.items}
    if isinstance(node, _Array):
        return [_build(child, states, variables, entropy) for child in node.items]
    return _copy(node.value)


def _compile_node(value: Any, field: str) -> tuple[Any, bool]:
    """``(node, is_constant)``; a constant node is the plain JSON value itself."""
    if isinstance(value, str):
        if is_expression(value):
            return _Leaf(compile_expression(value, field=field), field), False
        return value, True
    if isinstance(value, dict):
        children = [(key, *_compile_node(child, f"{field}/{key}")) for key, child in value.items()]
        if all(constant for _, _, constant in children):
            return value, True
        return _Object([(k, n if not c else _Constant(n)) for k, n, c in children]), False
    if isinstance(value, list):
        items = [_compile_node(child, f"{field}[{i}]") for i, child in enumerate(value)]
        if all(constant for _, constant in items):
            return value, True
        return _Array([n if not c else _Constant(n) for n, c in items]), False
    return value, True


def compile_template(value: Any, *, field: str) -> JSONataExpression | JSONataTemplate:
    """Compile a JSON value whose strings may be ``{% %}`` expressions.

    A string that is one expression compiles to that expression (its result may be any JSON
    value); anything else to a template whose constant parts are computed once.
    """
    if isinstance(value, str) and is_expression(value):
        return compile_expression(value, field=field)
    node, constant = _compile_node(value, field)
    return JSONataTemplate(node, field, constant)
