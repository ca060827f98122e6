"""The control plane of the Step Functions API: state machines, versions, aliases, tags and
activities, as one ``Catalog`` over a ``Store``.

One method per API operation, named as the operation in snake_case: it takes the request as a
dict with AWS's member names (already checked against botocore's model for types, lengths,
patterns and enums by the front end) and returns the response dict AWS returns, timestamps as
aware UTC datetimes. Refusals raise ``ServiceError`` with AWS's code.

For the execution side, ``resolve_target`` turns the ARN given to StartExecution (a machine, a
version or an alias) into what to run.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowstate.service.activities import Activities
from flowstate.service.aliases import Aliases, choose_route
from flowstate.service.machines import StateMachines
from flowstate.service.resources import does_not_exist, state_machine_ref
from flowstate.service.tags import Tags
from flowstate.service.versions import Versions
from flowstate.storage import StateMachineRecord

__all__ = ["Catalog", "ExecutionTarget"]


@dataclass(frozen=True)
class ExecutionTarget:
    """What an execution started through some ARN runs."""

    state_machine: StateMachineRecord  # the machine's current row
    definition: str
    role_arn: str
    revision_id: str
    version_arn: str | None  # set when started through a version or an alias
    alias_arn: str | None  # set when started through an alias


class Catalog(StateMachines, Versions, Aliases, Tags, Activities):
    """``Catalog(store, partition, *, now, rng=None)``: ``now`` returns aware datetimes;
    ``rng`` draws the version an alias routes each execution to."""

    def resolve_target(self, arn: str) -> ExecutionTarget:
        """The machine, version or alias ``arn`` names, as the execution to start.

        An alias picks one of its versions at random by the routing weights. Anything that
        does not exist is StateMachineDoesNotExist (StartExecution has no ResourceNotFound).
        """
        ref = state_machine_ref(arn)
        machine = self._machine(ref.state_machine_arn, shown=arn)
        if ref.version is None and ref.alias is None:
            return ExecutionTarget(
                machine, machine.definition, machine.role_arn, machine.revision_id, None, None
            )
        alias_arn = None
        number = ref.version
        if ref.alias is not None:
            alias = self.store.get_alias(machine.arn, ref.alias)
            if alias is None:
                raise does_not_exist(arn)
            alias_arn = alias.arn
            number = choose_route(alias.routes, self._rng).version
        assert number is not None
        version = self.store.get_version(machine.arn, number)
        if version is None:
            raise does_not_exist(arn)
        return ExecutionTarget(
            machine,
            version.definition,
            version.role_arn,
            version.revision_id,
            version.arn,
            alias_arn,
        )
