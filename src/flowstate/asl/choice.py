"""Choice rules of JSONPath-mode Choice states, compiled once into small condition objects.

``compile_rule`` turns one rule (a ``Choices`` entry without ``Next``/``Assign``/``Output``,
or a rule nested in ``And``/``Or``/``Not``) into a ``Condition`` whose ``matches(input, scope)``
does no parsing and no operator lookup: a Choice runs on every loop iteration of a workflow.

Semantics, as AWS Step Functions behaves (and as the recorded conformance cases show):

* A comparison whose operands have the wrong type is false, never an error: ``NumericEquals``
  on a string, ``BooleanEquals`` on ``0``, ``TimestampEquals`` on a date without a time.
* Booleans are never numbers (``NumericEquals: 1`` does not match ``true``).
* Integers and floats compare by value (``0 == 0.0``).
* A ``Variable`` path that selects nothing fails the state with ``States.Runtime``, except for
  ``IsPresent``, which is exactly the test for that. A ``...Path`` operand that selects
  nothing fails the same way.
* Timestamps are RFC 3339 date-times with an upper-case ``T`` and either ``Z`` or a numeric
  offset, fractional seconds optional (``2016-03-14T01:59:00Z``, ``...00.123+01:00``).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, Final

from flowstate.asl.errors import RUNTIME, EvaluationError, InvalidExpression
from flowstate.asl.model import Condition
from flowstate.asl.paths import NOT_FOUND, compile_path
from flowstate.asl.scope import Scope

__all__ = ["compile_rule", "parse_timestamp"]

_NOT_FOUND: Final = NOT_FOUND

Lookup = Callable[[Any, Scope], Any]
Test = Callable[[Any], bool]
Test2 = Callable[[Any, Any], bool]

# ---------------------------------------------------------------------------------------------
# Conditions


def _invalid_path(path: str) -> EvaluationError:
    # AWS: the cause names the path; the interpreter prefixes the state's location.
    return EvaluationError(
        RUNTIME,
        f"Invalid path '{path}': The choice state's condition path references an invalid value.",
    )


class _Compare:
    """``Variable`` compared with a literal operand (or tested by an ``Is*`` operator)."""

    __slots__ = ("_lookup", "_operator", "_test", "_variable")

    def __init__(self, variable: str, lookup: Lookup, operator_name: str, test: Test) -> None:
        self._variable = variable
        self._lookup = lookup
        self._operator = operator_name
        self._test = test

    def matches(self, input: Any, scope: Scope) -> bool:
        value = self._lookup(input, scope)
        if value is _NOT_FOUND:
            raise _invalid_path(self._variable)
        return self._test(value)

    def __repr__(self) -> str:
        return f"<{self._operator} {self._variable}>"


class _ComparePath:
    """``Variable`` compared with the value another path selects (``...Path`` operators)."""

    __slots__ = ("_lookup", "_operand", "_operand_lookup", "_operator", "_test", "_variable")

    def __init__(
        self,
        variable: str,
        lookup: Lookup,
        operator_name: str,
        operand: str,
        operand_lookup: Lookup,
        test: Test2,
    ) -> None:
        self._variable = variable
        self._lookup = lookup
        self._operator = operator_name
        self._operand = operand
        self._operand_lookup = operand_lookup
        self._test = test

    def matches(self, input: Any, scope: Scope) -> bool:
        value = self._lookup(input, scope)
        if value is _NOT_FOUND:
            raise _invalid_path(self._variable)
        other = self._operand_lookup(input, scope)
        if other is _NOT_FOUND:
            raise _invalid_path(self._operand)
        return self._test(value, other)

    def __repr__(self) -> str:
        return f"<{self._operator} {self._variable} {self._operand}>"


class _IsPresent:
    __slots__ = ("_expected", "_lookup", "_variable")

    def __init__(self, variable: str, lookup: Lookup, expected: bool) -> None:
        self._variable = variable
        self._lookup = lookup
        self._expected = expected

    def matches(self, input: Any, scope: Scope) -> bool:
        try:
            value = self._lookup(input, scope)
        except EvaluationError:
            # An undefined ``$variable``: IsPresent is the test for absence, not a failure.
            value = _NOT_FOUND
        return (value is not _NOT_FOUND) is self._expected

    def __repr__(self) -> str:
        return f"<IsPresent {self._variable} {self._expected}>"


class _And:
    __slots__ = ("_rules",)

    def __init__(self, rules: tuple[Condition, ...]) -> None:
        self._rules = rules

    def matches(self, input: Any, scope: Scope) -> bool:
        # A plain loop: a generator in all()/any() costs more than the rules themselves.
        for rule in self._rules:  # noqa: SIM110
            if not rule.matches(input, scope):
                return False
        return True

    def __repr__(self) -> str:
        return f"<And {list(self._rules)}>"


class _Or:
    __slots__ = ("_rules",)

    def __init__(self, rules: tuple[Condition, ...]) -> None:
        self._rules = rules

    def matches(self, input: Any, scope: Scope) -> bool:
        for rule in self._rules:  # noqa: SIM110
            if rule.matches(input, scope):
                return True
        return False

    def __repr__(self) -> str:
        return f"<Or {list(self._rules)}>"


class _Not:
    __slots__ = ("_rule",)

    def __init__(self, rule: Condition) -> None:
        self._rule = rule

    def matches(self, input: Any, scope: Scope) -> bool:
        return not self._rule.matches(input, scope)

    def __repr__(self) -> str:
        return f"<Not {self._rule!r}>"


# ---------------------------------------------------------------------------------------------
# Value tests


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "GreaterThan": operator.gt,
    "LessThanEquals": operator.le,
    "GreaterThanEquals": operator.ge,
}


def _string_order(compare: Callable[[Any, Any], bool]) -> Test2:
    """Order strings by UTF-16 code units, as AWS (Java ``String.compareTo``) does.

    Code-point order differs only between a character in U+E000..U+FFFF and one beyond the
    BMP; when either string is ASCII the two orders agree and the fast path is exact.
    """
    if compare is operator.eq:
        return compare

    def test(a: str, b: str) -> bool:
        if a.isascii() or b.isascii():
            return compare(a, b)
        return compare(
            a.encode("utf-16-be", "surrogatepass"), b.encode("utf-16-be", "surrogatepass")
        )

    return test


def _string_test2(compare: Test2) -> Test2:
    def test(value: Any, other: Any) -> bool:
        return isinstance(value, str) and isinstance(other, str) and compare(value, other)

    return test


def _number_test2(compare: Test2) -> Test2:
    def test(value: Any, other: Any) -> bool:
        return _is_number(value) and _is_number(other) and compare(value, other)

    return test


def _timestamp_test2(compare: Test2) -> Test2:
    def test(value: Any, other: Any) -> bool:
        if not isinstance(value, str) or not isinstance(other, str):
            return False
        a = parse_timestamp(value)
        if a is None:
            return False
        b = parse_timestamp(other)
        return b is not None and compare(a, b)

    return test


def _boolean_equals(value: Any, other: Any) -> bool:
    # AWS: booleans never equal numbers (True == 1 in Python).
    return isinstance(value, bool) and isinstance(other, bool) and value is other


def _string_matches(pattern: str) -> Test:
    """``StringMatches``: ``*`` matches any text; ``\\*`` is a literal star, ``\\\\`` a
    literal backslash; a backslash before any other character stands for itself."""
    parts: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n and pattern[i + 1] in "*\\":
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if c == "*" else re.escape(c))
        i += 1
    fullmatch = re.compile("".join(parts), re.DOTALL).fullmatch

    def test(value: Any) -> bool:
        return isinstance(value, str) and fullmatch(value) is not None

    return test


# ---------------------------------------------------------------------------------------------
# Timestamps

_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


def parse_timestamp(text: str) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 timestamp as AWS accepts it, else ``None``.

    AWS: an upper-case ``T`` separates date and time and an upper-case ``Z`` is required when
    there is no numeric offset; fractional seconds are optional (up to nanoseconds).
    """
    m = _TIMESTAMP.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = m.groups()
    h, mi, s = int(hour), int(minute), int(second)
    if h > 23 or mi > 59 or s > 59:
        return None
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None
    seconds = days * 86400 + h * 3600 + mi * 60 + s
    if zulu is None:
        oh, om = int(off_h), int(off_m)
        if oh > 18 or om > 59:
            return None
        offset = oh * 3600 + om * 60
        seconds -= offset if sign == "+" else -offset
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    return seconds * 1_000_000_000 + nanos


def _is_timestamp(value: Any) -> bool:
    return isinstance(value, str) and parse_timestamp(value) is not None


# ---------------------------------------------------------------------------------------------
# Compilation

_IS_TESTS: Final[dict[str, Test]] = {
    "IsNull": lambda value: value is None,
    "IsNumeric": _is_number,
    "IsString": lambda value: isinstance(value, str),
    "IsBoolean": lambda value: isinstance(value, bool),
    "IsTimestamp": _is_timestamp,
}

# Operators that take a literal operand: name -> (family, relation).
_COMPARISONS: Final[dict[str, tuple[str, str]]] = {
    f"{family}{relation}": (family, relation)
    for family in ("String", "Numeric", "Timestamp")
    for relation in _ORDER
}
_COMPARISONS["BooleanEquals"] = ("Boolean", "Equals")

# ``...Path`` variants of every literal comparison. AWS has no ``StringMatchesPath``.
_PATH_COMPARISONS: Final[dict[str, tuple[str, str]]] = {
    f"{name}Path": spec for name, spec in _COMPARISONS.items()
}
_COMPARISONS["StringMatches"] = ("String", "Matches")

_OPERATORS: Final = (
    frozenset(_COMPARISONS)
    | frozenset(_PATH_COMPARISONS)
    | {
        "IsPresent",
        *_IS_TESTS,
    }
)
_COMPOSITES: Final = ("And", "Or", "Not")

# AWS: a comment is allowed on any rule.
_ANNOTATIONS: Final = frozenset({"Comment"})

_TYPE_NAMES: Final = {"String": "String", "Numeric": "Number", "Timestamp": "String"}


def compile_rule(rule: Mapping[str, Any]) -> Condition:
    """Compile one JSONPath-mode Choice rule (``Variable`` + operator, ``And``, ``Or``, ``Not``).

    Raises ``InvalidExpression`` with AWS's message (without location) when the rule is
    malformed; path syntax errors come from ``paths.compile_path`` unchanged.
    """
    if not isinstance(rule, Mapping):
        raise InvalidExpression("Expected value of type Object")
    composites = [key for key in _COMPOSITES if key in rule]
    if composites:
        return _compile_composite(rule, composites)
    return _compile_comparison(rule)


def _compile_composite(rule: Mapping[str, Any], composites: list[str]) -> Condition:
    kind = composites[0]
    for key in rule:
        if key != kind and key not in _ANNOTATIONS:
            raise InvalidExpression(f"Field '{key}' is not supported")
    value = rule[kind]
    if kind == "Not":
        if not isinstance(value, Mapping):
            raise InvalidExpression("Expected value of type Object")
        return _Not(compile_rule(value))
    if not isinstance(value, list):
        raise InvalidExpression("Expected value of type Array")
    if not value:
        raise InvalidExpression(f"The field '{kind}' must contain at least one choice rule")
    rules = tuple(compile_rule(item) for item in value)
    return _And(rules) if kind == "And" else _Or(rules)


def _compile_comparison(rule: Mapping[str, Any]) -> Condition:
    operators = []
    for key in rule:
        if key in _OPERATORS:
            operators.append(key)
        elif key != "Variable" and key not in _ANNOTATIONS:
            raise InvalidExpression(f"Field '{key}' is not supported")
    if "Variable" not in rule:
        raise InvalidExpression("These fields are required: [Variable]")
    if not operators:
        raise InvalidExpression("A choice rule must have exactly one comparison operator")
    if len(operators) > 1:
        raise InvalidExpression(f"Field '{operators[1]}' is not supported")
    name = operators[0]
    variable = rule["Variable"]
    if not isinstance(variable, str):
        raise InvalidExpression("Expected value of type String")
    lookup: Lookup = compile_path(variable).evaluate_or_none
    operand = rule[name]

    if name == "IsPresent" or name in _IS_TESTS:
        if not isinstance(operand, bool):
            raise InvalidExpression("Expected value of type Boolean")
        if name == "IsPresent":
            return _IsPresent(variable, lookup, operand)
        is_test = _IS_TESTS[name]
        if operand:
            return _Compare(variable, lookup, name, is_test)
        return _Compare(variable, lookup, name, lambda value: not is_test(value))

    if name in _PATH_COMPARISONS:
        if not isinstance(operand, str):
            raise InvalidExpression("Expected value of type String")
        family, relation = _PATH_COMPARISONS[name]
        operand_lookup: Lookup = compile_path(operand).evaluate_or_none
        return _ComparePath(
            variable, lookup, name, operand, operand_lookup, _path_test(family, relation)
        )

    family, relation = _COMPARISONS[name]
    return _Compare(variable, lookup, name, _literal_test(family, relation, operand))


def _path_test(family: str, relation: str) -> Test2:
    compare = _ORDER[relation]
    if family == "String":
        return _string_test2(_string_order(compare))
    if family == "Numeric":
        return _number_test2(compare)
    if family == "Timestamp":
        return _timestamp_test2(compare)
    return _boolean_equals


def _literal_test(family: str, relation: str, operand: Any) -> Test:
    if family == "Boolean":
        if not isinstance(operand, bool):
            raise InvalidExpression("Expected value of type Boolean")
        expected: bool = operand
        return lambda value: value is expected

    if family == "Numeric":
        if not _is_number(operand):
            raise InvalidExpression("Expected value of type Number")
        number_compare = _ORDER[relation]
        number = operand
        return lambda value: _is_number(value) and number_compare(value, number)

    if not isinstance(operand, str):
        raise InvalidExpression(f"Expected value of type {_TYPE_NAMES[family]}")

    if family == "Timestamp":
        instant = parse_timestamp(operand)
        if instant is None:
            raise InvalidExpression("String does not match RFC3339 timestamp")
        ts_compare = _ORDER[relation]

        def timestamp_test(value: Any) -> bool:
            if not isinstance(value, str):
                return False
            other = parse_timestamp(value)
            return other is not None and ts_compare(other, instant)

        return timestamp_test

    if relation == "Matches":
        return _string_matches(operand)
    string_compare = _string_order(_ORDER[relation])
    text: str = operand
    return lambda value: isinstance(value, str) and string_compare(value, text)
