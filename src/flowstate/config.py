"""Settings: command-line flags > environment variables > ``flowstate.toml`` > defaults.

The one place that reads ``FLOWSTATE_*`` variables and ``flowstate.toml``; everything else
receives a :class:`Settings`. Reference: ``docs/configuration.md``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "CONFIG_ENV",
    "CONFIG_FILE_NAME",
    "ENV_PREFIX",
    "SETTING_NAMES",
    "SFN_LOCAL_ENV",
    "ConfigError",
    "Settings",
    "env_names",
    "flag_name",
    "load_settings",
]

# AWS EventBridge's connection authorization types, plus flowstate's NONE (a local endpoint
# that wants no credentials; AWS has no such type).
AUTHORIZATION_TYPES = ("BASIC", "API_KEY", "OAUTH_CLIENT_CREDENTIALS", "NONE")

ENV_PREFIX = "FLOWSTATE_"
CONFIG_ENV = "FLOWSTATE_CONFIG"
CONFIG_FILE_NAME = "flowstate.toml"

# Step Functions Local's own variable names, read after FLOWSTATE_<NAME> so a migrated setup
# keeps working (AWS docs: sfn-local-config-options, sfn-local-test-sm-exec).
SFN_LOCAL_ENV: Mapping[str, str] = MappingProxyType(
    {
        "account_id": "AWS_ACCOUNT_ID",
        "region": "AWS_DEFAULT_REGION",
        "mock_config": "SFN_MOCK_CONFIG",
    }
)


class ConfigError(ValueError):
    """A setting is unknown or has a bad value; the message names it and where it came from."""


def _default_sources() -> Mapping[str, str]:
    return MappingProxyType(dict.fromkeys(SETTING_NAMES, "default"))


@dataclass(frozen=True)
class Settings:
    """Every flowstate setting, validated. Build it with :func:`load_settings`."""

    host: str = "127.0.0.1"
    port: int = 8083
    # None: ./.flowstate/flowstate.db. The URL forms (PATH.db, sqlite:///PATH, memory:,
    # postgresql://...) are checked by the storage layer, which knows them.
    db: str | None = None
    clock: str = "real"
    account_id: str = "123456789012"
    region: str = "us-east-1"
    functions: tuple[str, ...] = ()
    deploy: tuple[str, ...] = ()
    mock_config: str | None = None
    retention_days: int = 90
    max_payload_bytes: int = 262_144  # AWS quota: 256 KiB of UTF-8 per input/output
    max_history_events: int = 25_000  # AWS quota: 25,000 events per execution history
    express_timeout_seconds: int = 300  # AWS: an Express execution runs at most 5 minutes
    redrive_window_days: int = 14  # AWS: a Standard execution can be redriven for 14 days
    group_commit_max: int = 512
    sqlite_synchronous: str = "NORMAL"
    log_level: str = "info"
    task_threads: int = 32
    # [connections.NAME] tables of flowstate.toml, checked and with every ``*_env`` reference
    # replaced by its variable's value: name -> fields (see docs/configuration.md).
    connections: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType({}), repr=False
    )
    # PostgreSQL only: how long a node that stops renewing (killed, frozen, cut off) keeps
    # its executions before the other nodes take them over. Measured on the database's clock.
    lease_seconds: int = 10
    # Where each value came from: "default", "--port", "FLOWSTATE_PORT", or the config file.
    sources: Mapping[str, str] = field(default_factory=_default_sources, compare=False, repr=False)


SETTING_NAMES: tuple[str, ...] = tuple(
    f.name for f in fields(Settings) if f.name not in ("sources", "connections")
)


def flag_name(name: str) -> str:
    """The command-line flag for setting ``name``: ``retention_days`` → ``--retention-days``."""
    return "--" + name.replace("_", "-")


def env_names(name: str) -> tuple[str, ...]:
    """The environment variables read for ``name``, the one that wins first."""
    own = ENV_PREFIX + name.upper()
    alias = SFN_LOCAL_ENV.get(name)
    return (own, alias) if alias else (own,)


# -- converting one value --------------------------------------------------------------------


class _Invalid(Exception):
    """Why a value is refused; turned into a ConfigError that names the setting and source."""


# (value, is_text) -> the setting's value. is_text: a string from the command line or the
# environment, to be parsed; TOML values must already have the right type.
_Convert = Callable[[object, bool], object]

_INTEGER = re.compile(r"[+-]?[0-9]+")


def _integer(minimum: int, maximum: int | None = None) -> _Convert:
    def convert(value: object, is_text: bool) -> object:
        if is_text and isinstance(value, str):
            if not _INTEGER.fullmatch(value):
                raise _Invalid("expected an integer")
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):  # bool is an int subclass
            raise _Invalid("expected an integer")
        if maximum is not None and not minimum <= value <= maximum:
            raise _Invalid(f"must be between {minimum} and {maximum}")
        if value < minimum:
            raise _Invalid(f"must be at least {minimum}")
        return value

    return convert


def _string(pattern: str | None = None, expected: str = "") -> _Convert:
    compiled = re.compile(pattern) if pattern else None

    def convert(value: object, is_text: bool) -> object:
        if not isinstance(value, str):
            raise _Invalid("expected a string")
        if not value.strip():
            raise _Invalid("must not be empty")
        if compiled and not compiled.fullmatch(value):
            raise _Invalid(f"expected {expected}")
        return value

    return convert


def _choice(*choices: str) -> _Convert:
    upper = choices[0].isupper()

    def convert(value: object, is_text: bool) -> object:
        if not isinstance(value, str):
            raise _Invalid("expected a string")
        normal = value.upper() if upper else value.lower()
        if normal not in choices:
            raise _Invalid("expected one of: " + ", ".join(choices))
        return normal

    return convert


def _list(value: object, is_text: bool) -> object:
    if is_text and isinstance(value, str):
        # Comma-separated: the same on every OS (os.pathsep is ':' or ';'), and ':' is taken
        # by Windows drive letters. Empty items (a trailing comma) are dropped.
        return tuple(item.strip() for item in value.split(",") if item.strip())
    if not isinstance(value, list | tuple) or not all(isinstance(i, str) for i in value):
        raise _Invalid("expected a list of strings")
    if not all(item.strip() for item in value):
        raise _Invalid("items must not be empty")
    return tuple(value)


_CONVERT: Mapping[str, _Convert] = {
    "host": _string(),
    "port": _integer(0, 65535),  # 0: any free port (tests)
    "db": _string(),
    "clock": _choice("real", "virtual"),
    "account_id": _string(r"[0-9]{12}", "12 digits"),
    # What service/arns.py accepts in an ARN's region field.
    "region": _string(r"[a-z0-9-]+", "a region name such as us-east-1"),
    "functions": _list,
    "deploy": _list,
    "mock_config": _string(),
    "retention_days": _integer(1),
    "max_payload_bytes": _integer(1),
    "max_history_events": _integer(1),
    "express_timeout_seconds": _integer(1),
    "redrive_window_days": _integer(1),
    "group_commit_max": _integer(1),
    "sqlite_synchronous": _choice("NORMAL", "FULL"),
    "log_level": _choice("debug", "info", "warning", "error", "critical"),
    "task_threads": _integer(1),
    "lease_seconds": _integer(1, 3600),
}


def _toml_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | list | dict):
        return json.dumps(value)
    return str(value)


# -- connections ------------------------------------------------------------------------------

# Field -> what it must be. A secret may be given as ``<field>_env = "VARIABLE"`` instead, so
# that no credential has to sit in a file under version control.
_CONNECTION_TEXT = ("username", "api_key_name", "client_id", "authorization_endpoint")
_CONNECTION_SECRETS = ("password", "api_key_value", "client_secret")
_CONNECTION_TABLES = (
    "header_parameters",
    "query_string_parameters",
    "body_parameters",
    "oauth_header_parameters",
    "oauth_query_string_parameters",
    "oauth_body_parameters",
)
_CONNECTION_REQUIRED: Mapping[str, tuple[str, ...]] = {
    "BASIC": ("username", "password"),
    "API_KEY": ("api_key_name", "api_key_value"),
    "OAUTH_CLIENT_CREDENTIALS": ("authorization_endpoint", "client_id", "client_secret"),
    "NONE": (),
}
_CONNECTION_NAME = re.compile(r"[\.\-_A-Za-z0-9]{1,64}")  # EventBridge's connection names


def _secret(where: str, key: str, raw: object, environ: Mapping[str, str], *, env_key: bool) -> str:
    """A string value, or the value of the variable a ``*_env`` key (or ``{env = ...}``) names."""
    if env_key or isinstance(raw, dict):
        var = raw.get("env") if isinstance(raw, dict) else raw
        if isinstance(raw, dict) and set(raw) != {"env"}:
            raise ConfigError(f'{where}.{key}: expected a string or {{ env = "VARIABLE" }}')
        if not isinstance(var, str) or not var.strip():
            raise ConfigError(f"{where}.{key}: expected the name of an environment variable")
        value = environ.get(var.strip(), "")
        if not value:
            raise ConfigError(f"{where}.{key}: the environment variable {var} is not set")
        return value
    if not isinstance(raw, str):
        raise ConfigError(f"{where}.{key}: expected a string")
    return raw


def _connections(
    raw: object, label: str, environ: Mapping[str, str]
) -> dict[str, Mapping[str, Any]]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: connections: expected tables [connections.NAME]")
    out: dict[str, Mapping[str, Any]] = {}
    for name, table in raw.items():
        where = f"{label}: connections.{name}"
        if not _CONNECTION_NAME.fullmatch(name):
            raise ConfigError(f"{where}: a connection name has 1-64 of A-Z a-z 0-9 . - _")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table")
        out[name] = MappingProxyType(_connection(table, where, environ))
    return out


def _connection(table: dict[str, Any], where: str, environ: Mapping[str, str]) -> dict[str, Any]:
    kind = table.get("authorization_type")
    if not isinstance(kind, str) or kind.upper() not in AUTHORIZATION_TYPES:
        raise ConfigError(
            f"{where}.authorization_type: expected one of: " + ", ".join(AUTHORIZATION_TYPES)
        )
    fields_: dict[str, Any] = {"authorization_type": kind.upper()}
    for key, value in table.items():
        if key == "authorization_type":
            continue
        base = key.removesuffix("_env")
        if base in _CONNECTION_SECRETS or base in _CONNECTION_TEXT:
            if base in fields_:
                raise ConfigError(f"{where}: give {base} or {base}_env, not both")
            fields_[base] = _secret(where, key, value, environ, env_key=key != base)
        elif key == "http_method":
            if not isinstance(value, str) or value.upper() not in ("GET", "POST", "PUT"):
                raise ConfigError(f"{where}.http_method: expected GET, POST or PUT")
            fields_[key] = value.upper()
        elif key in _CONNECTION_TABLES:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.{key}: expected a table of strings")
            fields_[key] = MappingProxyType(
                {
                    k: _secret(f"{where}.{key}", k, v, environ, env_key=False)
                    for k, v in value.items()
                }
            )
        else:
            hint = difflib.get_close_matches(
                key,
                [*_CONNECTION_TEXT, *_CONNECTION_SECRETS, *_CONNECTION_TABLES, "http_method"],
                n=1,
            )
            why = f"did you mean {hint[0]!r}?" if hint else "see docs/configuration.md"
            raise ConfigError(f"{where}: unknown key {key!r} ({why})")
    missing = [k for k in _CONNECTION_REQUIRED[fields_["authorization_type"]] if k not in fields_]
    if missing:
        raise ConfigError(
            f"{where}: authorization_type {fields_['authorization_type']} needs "
            + ", ".join(missing)
        )
    return fields_


# -- the three sources -----------------------------------------------------------------------

_Layer = dict[str, tuple[object, str]]  # setting -> (value, source label)


def _from_flags(flags: Mapping[str, Any]) -> _Layer:
    layer: _Layer = {}
    for name, raw in flags.items():
        if name not in _CONVERT:
            raise ConfigError(f"{flag_name(name)}: unknown setting {name!r} (command line)")
        # click gives () for a repeatable option that was not used: "not given" too.
        if raw is None or (isinstance(raw, list | tuple) and not raw):
            continue
        label = flag_name(name)
        try:
            layer[name] = (_CONVERT[name](raw, True), label)
        except _Invalid as exc:
            raise ConfigError(f"{label}={raw!r}: {exc} (command line)") from None
    return layer


def _from_environment(environ: Mapping[str, str]) -> _Layer:
    layer: _Layer = {}
    for name in SETTING_NAMES:
        # Reversed: FLOWSTATE_<NAME> is read last so it wins over Step Functions Local's name.
        for var in reversed(env_names(name)):
            raw = environ.get(var, "").strip()
            if not raw:  # unset and set-but-empty are the same (compose files, CI matrices)
                continue
            try:
                layer[name] = (_CONVERT[name](raw, True), var)
            except _Invalid as exc:
                raise ConfigError(f"{var}={raw!r}: {exc} (environment)") from None
    return layer


def _from_file(
    path: Path, label: str, environ: Mapping[str, str]
) -> tuple[_Layer, dict[str, Mapping[str, Any]]]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{label}: invalid TOML: {exc}") from None
    layer: _Layer = {}
    connections: dict[str, Mapping[str, Any]] = {}
    for key, raw in data.items():
        if key == "connections":
            connections = _connections(raw, label, environ)
            continue
        if key not in _CONVERT:
            hint = difflib.get_close_matches(key, SETTING_NAMES, n=1)
            if isinstance(raw, dict):
                why = "settings are top-level keys, not tables"
            else:
                why = f"did you mean {hint[0]!r}?" if hint else "see docs/configuration.md"
            raise ConfigError(f"{label}: unknown setting {key!r} ({why})")
        try:
            layer[key] = (_CONVERT[key](raw, False), label)
        except _Invalid as exc:
            raise ConfigError(f"{label}: {key} = {_toml_text(raw)}: {exc}") from None
    return layer, connections


def _config_file(
    config_path: str | Path | None, environ: Mapping[str, str], cwd: Path
) -> tuple[Path, str] | None:
    """The file to read and how to name it in messages; None when there is none."""
    if config_path is not None:
        given, origin = str(config_path), "--config"
    elif environ.get(CONFIG_ENV, "").strip():
        given, origin = environ[CONFIG_ENV].strip(), CONFIG_ENV
    else:
        implicit = cwd / CONFIG_FILE_NAME
        return (implicit, CONFIG_FILE_NAME) if implicit.exists() else None
    path = cwd / Path(given).expanduser()  # an absolute path replaces cwd
    if not path.is_file():
        what = "no such file" if not path.exists() else "not a file"
        raise ConfigError(f"{given}: {what} (given by {origin})")
    return path, given


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_path: str | Path | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Merge flags > environment > config file > defaults into validated :class:`Settings`.

    ``flags`` maps setting names (snake_case) to values; None or an empty list means "not
    given". ``config_path`` is ``--config``; without it ``FLOWSTATE_CONFIG``, then an optional
    ``./flowstate.toml`` (relative to ``cwd``). Every value present is checked, also one a
    higher level overrides. Raises :class:`ConfigError`.
    """
    env = os.environ if environ is None else environ
    base = Path.cwd() if cwd is None else cwd
    found = _config_file(config_path, env, base)
    from_file, connections = _from_file(*found, env) if found else ({}, {})
    layers = [
        from_file,
        _from_environment(env),
        _from_flags(flags or {}),
    ]
    merged: _Layer = {}
    for layer in layers:  # lowest precedence first
        merged.update(layer)
    values = {name: value for name, (value, _) in merged.items()}
    sources = dict.fromkeys(SETTING_NAMES, "default")
    sources.update({name: label for name, (_, label) in merged.items()})
    return Settings(
        **values,  # type: ignore[arg-type]
        connections=MappingProxyType(connections),
        sources=MappingProxyType(sources),
    )
