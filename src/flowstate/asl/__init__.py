"""The Amazon States Language: parse, validate and compile definitions. Pure: no I/O."""

from flowstate.asl.errors import DefinitionError, Diagnostic, EvaluationError, StatesError
from flowstate.asl.model import StateMachine
from flowstate.asl.parse import parse_definition
from flowstate.asl.validate import validate_definition

__all__ = [
    "DefinitionError",
    "Diagnostic",
    "EvaluationError",
    "StateMachine",
    "StatesError",
    "parse_definition",
    "validate_definition",
]
