"""State machine aliases: Create, Describe, Update, Delete, ListStateMachineAliases, and the
weighted choice of the version an execution through an alias runs.

An alias routes to one or two versions of one machine, with weights summing to 100; its ARN is
the machine's followed by ``:<name>`` (names are never all digits, so they never read as a
version number).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from flowstate.service.errors import (
    CONFLICT,
    INVALID_ARN,
    RESOURCE_NOT_FOUND,
    SERVICE_QUOTA_EXCEEDED,
    VALIDATION,
    ServiceError,
)
from flowstate.service.resources import (
    MAX_ALIASES,
    Resources,
    does_not_exist,
    not_found,
    state_machine_ref,
)
from flowstate.storage.catalog import AliasRecord, LimitExceeded, Route, VersionsMissing

__all__ = ["Aliases", "choose_route"]

# botocore's CharacterRestrictedName: at least one letter, _, - or . (so never all digits).
_ALIAS_NAME = re.compile(r"^(?=.*[a-zA-Z_\-\.])[a-zA-Z0-9_\-\.]+$")
_ALIAS_NAME_MAX = 80


def choose_route(routes: Sequence[Route], rng: random.Random) -> Route:
    """The route an execution takes: route i with probability weight_i / 100."""
    point = rng.randrange(100)
    for route in routes:
        if point < route.weight:
            return route
        point -= route.weight
    return routes[-1]  # unreachable while the weights sum to 100


def _check_alias_name(name: str) -> None:
    # The API layer checks this first; the catalog keeps the guarantee for other callers.
    if len(name) > _ALIAS_NAME_MAX or not _ALIAS_NAME.match(name):
        raise ServiceError(
            VALIDATION,
            f"1 validation error detected: Value '{name}' at 'name' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: {_ALIAS_NAME.pattern}",
        )


def _unknown_alias() -> ServiceError:
    # Recorded AWS (UpdateStateMachineAlias of a deleted alias).
    return ServiceError(RESOURCE_NOT_FOUND, "Request references a resource that does not exist.")


def _alias_ref(arn: str) -> tuple[str, str]:
    ref = state_machine_ref(arn)
    if ref.alias is None:
        raise ServiceError(
            INVALID_ARN, f"Invalid Arn: 'Resource type not valid in this context: {arn}'"
        )
    return ref.state_machine_arn, ref.alias


def _routing(routing: Sequence[Mapping[str, Any]]) -> tuple[str, tuple[Route, ...]]:
    """The machine an alias's routingConfiguration points into, and its routes."""
    arns = [str(item["stateMachineVersionArn"]) for item in routing]
    weights = [int(item["weight"]) for item in routing]
    shown = f"[{', '.join(arns)}]"
    if not 1 <= len(arns) <= 2:
        raise ServiceError(
            VALIDATION,
            "1 validation error detected: Value at 'routingConfiguration' failed to satisfy "
            "constraint: Member must have length between 1 and 2",
        )
    refs = [state_machine_ref(arn) for arn in arns]
    # Recorded AWS messages, in the order AWS checks.
    if any(ref.version is None for ref in refs):
        raise ServiceError(
            VALIDATION,
            f"Routing configuration must contain state machine version ARNs. Received: {shown}",
        )
    if len(set(arns)) != len(arns):
        raise ServiceError(
            VALIDATION,
            "Routing configuration must contain distinct state machine version ARNs. "
            f"Received: {shown}",
        )
    if len({ref.state_machine_arn for ref in refs}) != 1:
        raise ServiceError(
            VALIDATION,
            "Routing configuration must contain versions of the same state machine. "
            f"Received: {shown}",
        )
    if sum(weights) != 100:
        raise ServiceError(
            VALIDATION,
            "Sum of routing configuration weights must equal 100. "
            f"Received: [{', '.join(str(w) for w in weights)}]",
        )
    routes = tuple(Route(ref.version or 0, weight) for ref, weight in zip(refs, weights))
    return refs[0].state_machine_arn, routes


def _routing_configuration(alias: AliasRecord) -> list[dict[str, Any]]:
    return [
        {"stateMachineVersionArn": f"{alias.state_machine_arn}:{r.version}", "weight": r.weight}
        for r in alias.routes
    ]


class Aliases(Resources):
    def create_state_machine_alias(self, request: Mapping[str, Any]) -> dict[str, Any]:
        name = request["name"]
        description = request.get("description")
        _check_alias_name(name)
        machine_arn, routes = _routing(request["routingConfiguration"])
        if self.store.get_state_machine(machine_arn) is None:
            raise not_found(f"{machine_arn}:{routes[0].version}")
        now = self._now()
        wanted = AliasRecord(machine_arn, name, routes, now, now, description)
        try:
            alias, created = self.store.create_alias(wanted, MAX_ALIASES)
        except VersionsMissing as exc:
            raise not_found(f"{machine_arn}:{exc.versions[0]}") from None
        except LimitExceeded as exc:
            raise ServiceError(
                SERVICE_QUOTA_EXCEEDED,
                f"Cannot create alias '{name}': '{machine_arn}' already has {exc.limit} "
                "aliases, the maximum.",
            ) from None
        # AWS: idempotent on the machine, name, description and routing configuration.
        if not created and (alias.routes, alias.description) != (routes, description):
            raise ServiceError(
                CONFLICT,
                "Failed to create alias because an alias with the same name and a different "
                "routing configuration already exists.",
            )
        return {"stateMachineAliasArn": alias.arn, "creationDate": alias.created_at}

    def describe_state_machine_alias(self, request: Mapping[str, Any]) -> dict[str, Any]:
        machine_arn, name = _alias_ref(request["stateMachineAliasArn"])
        alias = self.store.get_alias(machine_arn, name)
        if alias is None:
            raise _unknown_alias()
        described: dict[str, Any] = {"stateMachineAliasArn": alias.arn, "name": alias.name}
        if alias.description is not None:
            described["description"] = alias.description
        described["routingConfiguration"] = _routing_configuration(alias)
        described["creationDate"] = alias.created_at
        described["updateDate"] = alias.updated_at
        return described

    def update_state_machine_alias(self, request: Mapping[str, Any]) -> dict[str, Any]:
        machine_arn, name = _alias_ref(request["stateMachineAliasArn"])
        description = request.get("description")
        routing = request.get("routingConfiguration")
        if description is None and routing is None:
            raise ServiceError(
                VALIDATION,
                "Either the description or the routingConfiguration must be specified",
            )
        alias = self.store.get_alias(machine_arn, name)
        if alias is None:
            raise _unknown_alias()
        routes = alias.routes
        if routing is not None:
            target, routes = _routing(routing)
            if target != machine_arn:
                raise ServiceError(
                    VALIDATION,
                    f"Routing configuration must contain versions of '{machine_arn}', the "
                    f"state machine of alias '{name}'.",
                )
        if description is None:
            description = alias.description
        if (routes, description) == (alias.routes, alias.description):
            # AWS: UpdateStateMachineAlias is idempotent.
            return {"updateDate": alias.updated_at}
        changed = replace(alias, routes=routes, description=description, updated_at=self._now())
        try:
            if not self.store.update_alias(changed):
                raise _unknown_alias()
        except VersionsMissing as exc:
            raise not_found(f"{machine_arn}:{exc.versions[0]}") from None
        return {"updateDate": changed.updated_at}

    def delete_state_machine_alias(self, request: Mapping[str, Any]) -> dict[str, Any]:
        machine_arn, name = _alias_ref(request["stateMachineAliasArn"])
        # Recorded AWS: deleting an alias that does not exist is no error.
        self.store.delete_alias(machine_arn, name)
        return {}

    def list_state_machine_aliases(self, request: Mapping[str, Any]) -> dict[str, Any]:
        arn = request["stateMachineArn"]
        ref = state_machine_ref(arn)
        if ref.alias is not None:
            raise ServiceError(
                INVALID_ARN, f"Invalid Arn: 'Resource type not valid in this context: {arn}'"
            )
        if self.store.get_state_machine(ref.state_machine_arn) is None:
            raise does_not_exist(arn)
        # AWS: given a version ARN, the aliases that route to that version.
        if (
            ref.version is not None
            and self.store.get_version(ref.state_machine_arn, ref.version) is None
        ):
            raise not_found(arn)
        page = self._page(
            lambda: self.store.list_aliases(
                ref.state_machine_arn,
                ref.version,
                request.get("maxResults") or 0,
                request.get("nextToken"),
            )
        )
        response: dict[str, Any] = {
            "stateMachineAliases": [
                {"stateMachineAliasArn": a.arn, "creationDate": a.created_at} for a in page.items
            ]
        }
        if page.next_token is not None:
            response["nextToken"] = page.next_token
        return response
