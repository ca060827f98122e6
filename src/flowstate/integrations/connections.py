"""EventBridge connections for HTTP Tasks, defined in configuration.

On AWS an HTTP Task names an EventBridge connection (``Authentication.ConnectionArn`` or
``InvocationConfig.ConnectionArn``) that holds the credentials and the extra header, query and
body parameters of every call, so that no secret sits in a definition. flowstate reads the
same thing from ``[connections.NAME]`` tables of ``flowstate.toml`` and resolves a connection
ARN ``arn:aws:events:<region>:<account>:connection/<NAME>/<id>`` by its name, whatever the
region, account and id (as Lambda ARNs resolve to local functions by name).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flowstate.asl.errors import StatesError

__all__ = [
    "CONNECTION_NOT_FOUND",
    "Connection",
    "ConnectionRegistry",
    "connection_name",
]

# AWS: "Connection errors are prefixed with Events.ConnectionResource." (call-https-apis)
CONNECTION_NOT_FOUND = "Events.ConnectionResource.ResourceNotFound"
INVALID_CONNECTION_STATE = "Events.ConnectionResource.InvalidConnectionState"

_Pairs = tuple[tuple[str, str], ...]


def _pairs(table: Any) -> _Pairs:
    return tuple((str(k), str(v)) for k, v in (table or {}).items())


@dataclass(frozen=True, slots=True)
class Connection:
    """One connection: how to authorize, and what to add to every request.

    Secrets are left out of ``repr`` so that a logged connection shows none.
    """

    name: str
    authorization_type: str  # BASIC | API_KEY | OAUTH_CLIENT_CREDENTIALS | NONE
    username: str = ""
    password: str = field(default="", repr=False)
    api_key_name: str = ""
    api_key_value: str = field(default="", repr=False)
    authorization_endpoint: str = ""
    http_method: str = "POST"
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    # EventBridge's InvocationHttpParameters: added to (and winning over) the task's own.
    header_parameters: _Pairs = field(default=(), repr=False)
    query_string_parameters: _Pairs = field(default=(), repr=False)
    body_parameters: _Pairs = field(default=(), repr=False)
    # OAuthHttpParameters: sent with the token request only.
    oauth_header_parameters: _Pairs = field(default=(), repr=False)
    oauth_query_string_parameters: _Pairs = field(default=(), repr=False)
    oauth_body_parameters: _Pairs = field(default=(), repr=False)

    @classmethod
    def from_config(cls, name: str, fields_: Mapping[str, Any]) -> Connection:
        """From one ``[connections.NAME]`` table as ``flowstate.config`` checked it."""
        return cls(
            name=name,
            authorization_type=str(fields_.get("authorization_type", "NONE")),
            username=str(fields_.get("username", "")),
            password=str(fields_.get("password", "")),
            api_key_name=str(fields_.get("api_key_name", "")),
            api_key_value=str(fields_.get("api_key_value", "")),
            authorization_endpoint=str(fields_.get("authorization_endpoint", "")),
            http_method=str(fields_.get("http_method", "POST")),
            client_id=str(fields_.get("client_id", "")),
            client_secret=str(fields_.get("client_secret", "")),
            header_parameters=_pairs(fields_.get("header_parameters")),
            query_string_parameters=_pairs(fields_.get("query_string_parameters")),
            body_parameters=_pairs(fields_.get("body_parameters")),
            oauth_header_parameters=_pairs(fields_.get("oauth_header_parameters")),
            oauth_query_string_parameters=_pairs(fields_.get("oauth_query_string_parameters")),
            oauth_body_parameters=_pairs(fields_.get("oauth_body_parameters")),
        )

    def auth_headers(self, access_token: str | None = None) -> list[tuple[str, str]]:
        """The headers that carry the credentials (OAuth: given the access token)."""
        if self.authorization_type == "BASIC":
            pair = f"{self.username}:{self.password}".encode()
            return [("Authorization", "Basic " + base64.b64encode(pair).decode("ascii"))]
        if self.authorization_type == "API_KEY":
            return [(self.api_key_name, self.api_key_value)]
        if self.authorization_type == "OAUTH_CLIENT_CREDENTIALS" and access_token is not None:
            return [("Authorization", f"Bearer {access_token}")]
        return []


def connection_name(arn: str) -> str | None:
    """``arn:aws:events:<region>:<account>:connection/<name>[/<id>]`` → ``<name>``."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "events":
        return None
    resource = parts[5].split("/")
    if len(resource) < 2 or resource[0] != "connection" or not resource[1]:
        return None
    return resource[1]


class ConnectionRegistry:
    """Name → connection."""

    def __init__(self, connections: Mapping[str, Connection] | None = None) -> None:
        self._connections = dict(connections or {})

    @classmethod
    def from_config(cls, tables: Mapping[str, Mapping[str, Any]]) -> ConnectionRegistry:
        """From ``Settings.connections``."""
        return cls({name: Connection.from_config(name, t) for name, t in tables.items()})

    def __len__(self) -> int:
        return len(self._connections)

    def __contains__(self, name: object) -> bool:
        return name in self._connections

    def resolve(self, arn: str) -> Connection:
        """The connection an ARN names; AWS's ResourceNotFound connection error otherwise."""
        name = connection_name(arn)
        connection = self._connections.get(name) if name is not None else None
        if connection is None:
            known = ", ".join(sorted(self._connections)) or "none"
            raise StatesError(
                CONNECTION_NOT_FOUND,
                f"Connection '{arn}' does not exist: flowstate resolves a connection ARN by "
                f"its name, defined as [connections.NAME] in flowstate.toml (defined: {known})",
            )
        return connection
