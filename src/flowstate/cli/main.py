"""The ``flowstate`` command line.

Exit codes: 0 success; 1 an execution that FAILED, TIMED_OUT or ABORTED (or a conformance
case that failed); 2 an invalid definition or a usage error.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click

from flowstate import __version__
from flowstate.asl.errors import DefinitionError

__all__ = ["main"]

EXIT_FAILED = 1
EXIT_INVALID = 2


def _read_definition(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise click.UsageError(f"cannot read definition {path!r}: {exc.strerror}") from None


def _read_input(value: str | None) -> str:
    if value is None:
        return "{}"
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise click.UsageError(f"cannot read input {value[1:]!r}: {exc.strerror}") from None
    from flowstate.runtime.local import InvalidExecutionInput, parse_execution_input

    try:
        parse_execution_input(text)
    except InvalidExecutionInput as exc:
        raise click.UsageError(f"--input is not valid JSON: {exc}") from None
    return text


def _load_functions(specs: tuple[str, ...]) -> dict[str, Any]:
    from flowstate.cli.functions import load_functions

    try:
        return load_functions(specs)
    except (ImportError, OSError, SyntaxError) as exc:
        raise click.UsageError(f"cannot load --functions: {exc}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flowstate")
def main() -> None:
    """Run AWS Step Functions state machines (Amazon States Language) locally."""


@main.command()
@click.argument("definition", type=click.Path(dir_okay=False))
@click.option("--input", "input_value", help="Execution input: JSON text, or @FILE.")
@click.option(
    "--type",
    "machine_type",
    type=click.Choice(["STANDARD", "EXPRESS"], case_sensitive=False),
    default="STANDARD",
    show_default=True,
)
@click.option(
    "--clock",
    type=click.Choice(["real", "virtual"]),
    default="real",
    show_default=True,
    help="virtual: timers fire as soon as nothing else can run (a one-year Wait ends at once).",
)
@click.option(
    "--functions",
    "functions",
    multiple=True,
    metavar="FILE_OR_MODULE",
    help="Python file or module whose functions serve Lambda tasks (repeatable).",
)
@click.option("--name", "execution_name", help="Execution name (default: a UUID).")
@click.option("--history", is_flag=True, help="Print status, output/error and the history.")
@click.option(
    "--config",
    "config_path",
    default=None,
    help="A flowstate.toml whose [connections.NAME] serve HTTP Tasks [default: ./flowstate.toml].",
)
@click.option(
    "--mock-config",
    "mock_config",
    type=click.Path(dir_okay=False),
    envvar="SFN_MOCK_CONFIG",
    help="Step Functions Local mock configuration [env: SFN_MOCK_CONFIG].",
)
@click.option(
    "--test-case",
    "test_case",
    help="Run this test case of the mock configuration (the state machine's name is the "
    "definition file's name, or --state-machine-name).",
)
@click.option("--state-machine-name", "machine_name", help="[default: the file's name]")
@click.option(
    "--db",
    "db",
    default=None,
    help="Run durably in this database (PATH.db, sqlite:///PATH, postgresql://...): the "
    "execution and its history stay there, as with `flowstate serve` [default: in memory].",
)
def run(
    definition: str,
    input_value: str | None,
    machine_type: str,
    clock: str,
    functions: tuple[str, ...],
    execution_name: str | None,
    history: bool,
    config_path: str | None,
    mock_config: str | None,
    test_case: str | None,
    machine_name: str | None,
    db: str | None,
) -> None:
    """Run DEFINITION once and print its output."""
    from flowstate.cli.serve import load_mock_config
    from flowstate.config import ConfigError, load_settings
    from flowstate.integrations.connections import ConnectionRegistry
    from flowstate.runtime.local import UnknownTestCase, run_definition

    text = _read_definition(definition)
    input_json = _read_input(input_value)
    registry = _load_functions(functions)
    mocks = load_mock_config(mock_config)
    if test_case is not None and mocks is None:
        raise click.UsageError("--test-case needs --mock-config (or SFN_MOCK_CONFIG)")
    try:
        # Only the connections of HTTP Tasks are taken from the settings.
        settings = load_settings(config_path=config_path)
    except ConfigError as error:
        raise click.UsageError(str(error)) from None
    name = machine_name or Path(definition).stem
    if db is not None:
        from flowstate.cli.durable_run import run_in_database

        if test_case is not None:
            raise click.UsageError("--test-case is not available with --db")
        result = run_in_database(
            dataclasses.replace(
                settings,
                db=db,
                functions=tuple(functions),
                clock=clock,
                mock_config=mock_config,
            ),
            text,
            input_json,
            machine_name=name,
            machine_type=machine_type.upper(),
            execution_name=execution_name,
            history=history,
        )
        _print_result(result, history)
        return
    try:
        result = run_definition(
            text,
            input_json,
            state_machine_name=name,
            execution_name=execution_name,
            state_machine_type=machine_type.upper(),
            clock=clock,
            functions=registry,
            connections=ConnectionRegistry.from_config(settings.connections),
            mocks=mocks,
            test_case=test_case,
        )
    except UnknownTestCase as exc:
        raise click.UsageError(str(exc)) from None
    except DefinitionError as exc:
        click.echo(f"InvalidDefinition: {exc.message}", err=True)
        sys.exit(EXIT_INVALID)
    _print_result(result, history)


def _print_result(result: Any, history: bool) -> None:
    if history:
        click.echo(json.dumps(result.to_json(include_history=True), indent=2, default=str))
    elif result.status == "SUCCEEDED":
        click.echo(result.output)
    else:
        click.echo(
            json.dumps({"status": result.status, "error": result.error, "cause": result.cause}),
        )
    if result.status != "SUCCEEDED":
        sys.exit(EXIT_FAILED)


@main.command()
@click.argument("definition", type=click.Path(dir_okay=False))
@click.option(
    "--type",
    "machine_type",
    type=click.Choice(["STANDARD", "EXPRESS"], case_sensitive=False),
    default="STANDARD",
    show_default=True,
)
def validate(definition: str, machine_type: str) -> None:
    """Check DEFINITION as ValidateStateMachineDefinition does."""
    from flowstate.asl.validate import validate_definition

    diagnostics = validate_definition(
        _read_definition(definition), state_machine_type=machine_type.upper()
    )
    errors_found = any(d.severity == "ERROR" for d in diagnostics)
    click.echo(
        json.dumps(
            {
                "result": "FAIL" if errors_found else "OK",
                "diagnostics": [d.to_json() for d in diagnostics],
            },
            indent=2,
        )
    )
    if errors_found:
        sys.exit(EXIT_INVALID)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
@click.option("--filter", "filter_regex", help="Only cases whose case_id matches REGEX.")
@click.option(
    "--skip", "skip_file", type=click.Path(dir_okay=False), help="TOML skip table: id = reason."
)
@click.option(
    "--json-report", "json_report", type=click.Path(dir_okay=False), help="Write per-case JSON."
)
@click.option(
    "--endpoint",
    "endpoint_url",
    metavar="URL",
    help="Run the cases through the Step Functions API at URL instead of in process "
    "(e.g. `flowstate serve --clock virtual`).",
)
def conformance(
    directory: str,
    filter_regex: str | None,
    skip_file: str | None,
    json_report: str | None,
    endpoint_url: str | None,
) -> None:
    """Run a corpus of AWS-recorded cases and score flowstate against it."""
    from flowstate.conformance import run_conformance

    if endpoint_url is None:
        sys.exit(run_conformance(directory, filter_regex, skip_file, json_report))
    from flowstate.conformance.endpoint import EndpointError, run_endpoint_conformance

    try:
        code = run_endpoint_conformance(
            directory, filter_regex, skip_file, json_report, endpoint_url=endpoint_url
        )
    except EndpointError as error:
        raise click.ClickException(str(error)) from None
    sys.exit(code)


def _register_serve() -> None:
    from flowstate.cli.serve import serve
    from flowstate.cli.worker import worker

    main.add_command(serve)
    main.add_command(worker)


_register_serve()

if __name__ == "__main__":  # pragma: no cover
    main()
