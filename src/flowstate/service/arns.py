"""ARNs and names as Step Functions formats and checks them.

State machine ``arn:aws:states:<region>:<account>:stateMachine:<name>``, a version
``...:stateMachine:<name>:<n>``, an alias ``...:stateMachine:<name>:<alias>``, an execution
``...:execution:<machine>:<name>`` (``express:`` for Express), a map run
``...:mapRun:<machine>/<map label or state>:<uuid>``, an activity ``...:activity:<name>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flowstate.service.errors import INVALID_ARN, INVALID_NAME, ServiceError

__all__ = [
    "Partition",
    "StateMachineRef",
    "check_name",
    "parse_state_machine_arn",
]

# AWS: names are 1-80 characters and may not contain whitespace, brackets < > { } [ ],
# wildcards ? *, the characters " # % \ ^ | ~ ` $ & , ; : / or control characters.
_BAD_NAME = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")
NAME_MAX = 80


def check_name(name: str, *, limit: int = NAME_MAX) -> None:
    """InvalidName for a name AWS refuses."""
    if not name or len(name) > limit or _BAD_NAME.search(name):
        raise ServiceError(INVALID_NAME, f"Invalid Name: '{name}'")


@dataclass(frozen=True, slots=True)
class Partition:
    """Where flowstate pretends to be: one account in one region."""

    region: str = "us-east-1"
    account_id: str = "123456789012"

    @property
    def prefix(self) -> str:
        return f"arn:aws:states:{self.region}:{self.account_id}"

    def state_machine_arn(self, name: str) -> str:
        return f"{self.prefix}:stateMachine:{name}"

    def activity_arn(self, name: str) -> str:
        return f"{self.prefix}:activity:{name}"

    def execution_arn(self, machine_name: str, name: str) -> str:
        return f"{self.prefix}:execution:{machine_name}:{name}"

    def express_execution_arn(self, machine_name: str, name: str, run_id: str) -> str:
        return f"{self.prefix}:express:{machine_name}:{name}:{run_id}"


@dataclass(frozen=True, slots=True)
class StateMachineRef:
    """A parsed state machine ARN: the machine itself, one of its versions, or an alias."""

    state_machine_arn: str
    name: str
    version: int | None = None
    alias: str | None = None


_MACHINE_ARN = re.compile(
    r"^arn:aws[a-z-]*:states:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):stateMachine:"
    r"(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?$"
)


def parse_state_machine_arn(arn: str) -> StateMachineRef:
    """InvalidArn unless ``arn`` names a state machine, a version or an alias."""
    match = _MACHINE_ARN.match(arn)
    if match is None:
        raise ServiceError(
            INVALID_ARN, f"Invalid Arn: 'Resource type not valid in this context: {arn}'"
        )
    base = arn if match["qualifier"] is None else arn.rsplit(":", 1)[0]
    qualifier = match["qualifier"]
    if qualifier is None:
        return StateMachineRef(base, match["name"])
    if qualifier.isdigit():
        return StateMachineRef(base, match["name"], version=int(qualifier))
    return StateMachineRef(base, match["name"], alias=qualifier)
