"""Connections: ARNs resolved by name, built from the checked configuration."""

from __future__ import annotations

import pytest

from flowstate.asl.errors import StatesError
from flowstate.integrations.connections import Connection, ConnectionRegistry, connection_name


@pytest.mark.parametrize(
    ("arn", "name"),
    [
        ("arn:aws:events:us-east-2:123456789012:connection/Stripe/81210c42-8af1", "Stripe"),
        ("arn:aws:events:eu-west-1:000000000000:connection/a.b-c_d", "a.b-c_d"),
        ("arn:aws:lambda:us-east-1:123456789012:function:Stripe", None),
        ("arn:aws:events:us-east-1:123456789012:rule/Stripe", None),
        ("Stripe", None),
    ],
)
def test_connection_name(arn: str, name: str | None) -> None:
    assert connection_name(arn) == name


def test_registry_from_config_resolves_whatever_the_region_and_account() -> None:
    registry = ConnectionRegistry.from_config(
        {
            "Api": {
                "authorization_type": "BASIC",
                "username": "u",
                "password": "p",
                "query_string_parameters": {"v": "2"},
            }
        }
    )
    connection = registry.resolve("arn:aws:events:ap-south-1:999999999999:connection/Api/x")
    assert connection == Connection(
        "Api", "BASIC", username="u", password="p", query_string_parameters=(("v", "2"),)
    )
    with pytest.raises(StatesError) as raised:
        registry.resolve("arn:aws:events:us-east-1:1:connection/Other/x")
    assert raised.value.error == "Events.ConnectionResource.ResourceNotFound"
    assert "Other" in raised.value.cause and "[connections.NAME]" in raised.value.cause
